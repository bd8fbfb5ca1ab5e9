package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DevIssuer is a development OpenID Connect issuer: an RSA key generated at start, its JWKS and
// discovery document, and tokens minted on request. It exists so the all-in-one demo needs no
// identity provider; never enable it in production (anyone who can reach the login page can
// become any agent).
type DevIssuer struct {
	issuer   string
	audience string
	key      *rsa.PrivateKey
	kid      string
	signer   jose.Signer
}

// DevPath is where the dev issuer's endpoints are mounted; its issuer URL is <public URL>/desk/dev.
const DevPath = "/desk/dev"

// NewDevIssuer generates a key and returns an issuer whose iss is issuer (e.g.
// http://127.0.0.1:8080/desk/dev) and whose tokens are for audience.
func NewDevIssuer(issuer, audience string) (*DevIssuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	sum := sha256.Sum256(key.N.Bytes())
	kid := "dev-" + base64.RawURLEncoding.EncodeToString(sum[:8])
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(jose.RS256)}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	return &DevIssuer{issuer: issuer, audience: audience, key: key, kid: kid, signer: signer}, nil
}

// Issuer returns the iss of the tokens it mints.
func (d *DevIssuer) Issuer() string { return d.issuer }

// Audience returns the aud of the tokens it mints.
func (d *DevIssuer) Audience() string { return d.audience }

// JWKS returns the public keys.
func (d *DevIssuer) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &d.key.PublicKey, KeyID: d.kid, Algorithm: string(jose.RS256), Use: "sig"}}}
}

// Verifier returns a verifier that trusts this issuer's key directly.
func (d *DevIssuer) Verifier() (*Verifier, error) {
	return NewStaticVerifier(Config{Issuer: d.issuer, Audience: d.audience}, d.JWKS())
}

// Mint returns a token for agentID with roles, valid for ttl.
func (d *DevIssuer) Mint(agentID, name string, roles []string, ttl time.Duration) (string, error) {
	now := time.Now()
	std := jwt.Claims{Issuer: d.issuer, Subject: agentID, Audience: jwt.Audience{d.audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)), Expiry: jwt.NewNumericDate(now.Add(ttl))}
	extra := map[string]any{"agent_id": agentID, "roles": roles, "name": name}
	return jwt.Signed(d.signer).Claims(std).Claims(extra).Serialize()
}

// Mount registers the discovery document and the JWKS under DevPath on mux.
func (d *DevIssuer) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET "+DevPath+"/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": d.issuer, "jwks_uri": d.issuer + "/jwks.json",
			"id_token_signing_alg_values_supported": []string{"RS256"}, "response_types_supported": []string{"token"},
			"subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("GET "+DevPath+"/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d.JWKS())
	})
}
