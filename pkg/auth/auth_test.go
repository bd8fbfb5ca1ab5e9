package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/omnibus-dev/omnibus/pkg/auth"
)

// IdP is a test OpenID Connect provider: discovery document and JWKS over HTTP, and a signer.
type IdP struct {
	URL     string
	Key     *rsa.PrivateKey
	KID     string
	Fetches atomic.Int32
}

func newIdP(t testing.TB) *IdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &IdP{Key: key, KID: "k1"}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	idp.URL = srv.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": idp.URL, "jwks_uri": idp.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		idp.Fetches.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &idp.Key.PublicKey, KeyID: idp.KID, Algorithm: "RS256", Use: "sig"}}})
	})
	return idp
}

// Token signs claims with key (the IdP's unless given) under kid.
func sign(t testing.TB, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func claims(idp *IdP, mod func(map[string]any)) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": idp.URL, "aud": []string{"omnibus-desk"}, "sub": "user-1", "agent_id": "agent-li",
		"roles": []string{"agent"}, "name": "Li Na", "iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix()}
	if mod != nil {
		mod(c)
	}
	return c
}

func TestVerify(t *testing.T) {
	t.Parallel()
	idp := newIdP(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Issuer: idp.URL, Audience: "omnibus-desk"})
	if err != nil {
		t.Fatal(err)
	}
	ok := sign(t, idp.Key, idp.KID, claims(idp, nil))
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"valid", ok, nil},
		{"no token", "", auth.ErrNoToken},
		{"garbage", "not.a.jwt", auth.ErrInvalidToken},
		{"wrong audience", sign(t, idp.Key, idp.KID, claims(idp, func(c map[string]any) { c["aud"] = "someone-else" })), auth.ErrInvalidToken},
		{"expired", sign(t, idp.Key, idp.KID, claims(idp, func(c map[string]any) { c["exp"] = time.Now().Add(-5 * time.Minute).Unix() })), auth.ErrInvalidToken},
		{"no expiry", sign(t, idp.Key, idp.KID, claims(idp, func(c map[string]any) { delete(c, "exp") })), auth.ErrInvalidToken},
		{"not yet valid", sign(t, idp.Key, idp.KID, claims(idp, func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), auth.ErrInvalidToken},
		{"wrong issuer", sign(t, idp.Key, idp.KID, claims(idp, func(c map[string]any) { c["iss"] = "https://evil.example" })), auth.ErrInvalidToken},
		{"bad signature (other key, same kid)", sign(t, other, idp.KID, claims(idp, nil)), auth.ErrInvalidToken},
		{"unknown kid", sign(t, other, "k-unknown", claims(idp, nil)), auth.ErrInvalidToken},
		{"tampered payload", tamper(ok), auth.ErrInvalidToken},
		{"no role", sign(t, idp.Key, idp.KID, claims(idp, func(c map[string]any) { c["roles"] = []string{"viewer"} })), auth.ErrInvalidToken},
		{"alg none", unsigned(claims(idp, nil)), auth.ErrInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tc.token)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if p.AgentID != "agent-li" || p.Subject != "user-1" || p.Name != "Li Na" || !p.HasRole(auth.RoleAgent) || p.HasRole(auth.RoleSupervisor) {
					t.Fatalf("principal %+v", p)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if n := idp.Fetches.Load(); n < 1 || n > 2 {
		t.Errorf("JWKS fetched %d times, want 1 (plus at most one refetch for the unknown kid)", n)
	}
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b := []byte(parts[1])
	b[len(b)/2] ^= 1
	return parts[0] + "." + string(b) + "." + parts[2]
}

func unsigned(c map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	p, _ := json.Marshal(c)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(p) + "."
}

func TestRotatedKeyIsFetched(t *testing.T) {
	t.Parallel()
	idp := newIdP(t)
	v, err := auth.NewVerifier(auth.Config{Issuer: idp.URL, Audience: "omnibus-desk", JWKSURL: idp.URL + "/keys"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), sign(t, idp.Key, idp.KID, claims(idp, nil))); err != nil {
		t.Fatal(err)
	}
	// The provider rotates its key: the new kid is unknown to the cache, so the verifier fetches again.
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	idp.Key, idp.KID = key, "k2"
	if _, err := v.Verify(context.Background(), sign(t, key, "k2", claims(idp, nil))); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
}

func TestKeysUnavailable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	v, err := auth.NewVerifier(auth.Config{Issuer: srv.URL, Audience: "a"})
	if err != nil {
		t.Fatal(err)
	}
	idp := &IdP{URL: srv.URL}
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	if _, err = v.Verify(context.Background(), sign(t, key, "k", claims(idp, nil))); !errors.Is(err, auth.ErrKeys) {
		t.Fatalf("Verify = %v, want ErrKeys", err)
	}
	rec := httptest.NewRecorder()
	auth.Deny(rec, err)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("Deny(ErrKeys) = %d, want 503", rec.Code)
	}
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	idp := newIdP(t)
	v, err := auth.NewVerifier(auth.Config{Issuer: idp.URL, Audience: "omnibus-desk"})
	if err != nil {
		t.Fatal(err)
	}
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		_, _ = w.Write([]byte(p.AgentID))
	}))
	tok := sign(t, idp.Key, idp.KID, claims(idp, nil))
	do := func(method string, set func(*http.Request)) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "/api/x", nil)
		set(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do("GET", func(*http.Request) {}); w.Code != 401 || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := do("GET", func(r *http.Request) { r.Header.Set("Authorization", "Basic dTpw") }); w.Code != 401 {
		t.Errorf("basic auth: %d", w.Code)
	}
	if w := do("GET", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok+"x") }); w.Code != 401 ||
		!strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("bad token: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := do("POST", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+tok) }); w.Code != 200 || w.Body.String() != "agent-li" {
		t.Errorf("bearer: %d %q", w.Code, w.Body)
	}
	cookie := func(r *http.Request) { r.AddCookie(&http.Cookie{Name: auth.CookieName, Value: tok}) }
	if w := do("GET", cookie); w.Code != 200 {
		t.Errorf("cookie GET: %d", w.Code)
	}
	if w := do("POST", cookie); w.Code != 403 {
		t.Errorf("cookie POST without CSRF header: %d, want 403", w.Code)
	}
	if w := do("POST", func(r *http.Request) { cookie(r); r.Header.Set(auth.CSRFHeader, "1") }); w.Code != 200 {
		t.Errorf("cookie POST with CSRF header: %d", w.Code)
	}
}

func TestDevIssuer(t *testing.T) {
	t.Parallel()
	d, err := auth.NewDevIssuer("http://127.0.0.1:8080/desk/dev", "omnibus-desk")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := d.Mint("supervisor-wang", "王强", []string{auth.RoleAgent, auth.RoleSupervisor}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v, err := d.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(context.Background(), tok)
	if err != nil || p.AgentID != "supervisor-wang" || !p.HasRole(auth.RoleSupervisor) {
		t.Fatalf("Verify = %+v, %v", p, err)
	}
	// Another dev issuer (another process start) has another key: its tokens do not pass.
	d2, _ := auth.NewDevIssuer("http://127.0.0.1:8080/desk/dev", "omnibus-desk")
	tok2, _ := d2.Mint("agent-li", "", []string{auth.RoleAgent}, time.Hour)
	if _, err := v.Verify(context.Background(), tok2); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("token of another dev key: %v", err)
	}
	// The JWKS and discovery documents let a real verifier use the dev issuer over HTTP.
	mux := http.NewServeMux()
	d.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + auth.DevPath + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) != 1 || !set.Keys[0].IsPublic() {
		t.Fatalf("jwks: %+v %v", set, err)
	}
	hv, err := auth.NewVerifier(auth.Config{Issuer: d.Issuer(), Audience: "omnibus-desk", JWKSURL: srv.URL + auth.DevPath + "/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hv.Verify(context.Background(), tok); err != nil {
		t.Fatalf("verify through the JWKS endpoint: %v", err)
	}
}

// FuzzVerify: whatever the bytes, Verify never panics and never accepts a token not signed by
// the issuer's key.
func FuzzVerify(f *testing.F) {
	idp := newIdP(f)
	v, err := auth.NewVerifier(auth.Config{Issuer: idp.URL, Audience: "omnibus-desk"})
	if err != nil {
		f.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	f.Add(sign(f, other, idp.KID, claims(idp, nil)))
	f.Add(unsigned(claims(idp, nil)))
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.ZmFrZQ")
	f.Add("a.b.c.d.e")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		if p, err := v.Verify(context.Background(), tok); err == nil {
			t.Fatalf("accepted a forged token %q as %+v", tok, p)
		}
	})
}
