package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/omnibus-dev/omnibus/pkg/webhook"
)

// CookieName is the cookie the workbench keeps its token in (set by the dev login or the token
// login page), so that EventSource and page loads carry it. API clients send Authorization:
// Bearer instead.
const CookieName = "desk_token"

// CSRFHeader must accompany every state-changing request authenticated by the cookie: a page on
// another origin cannot set it without a CORS preflight the desk never grants.
const CSRFHeader = "X-Desk-Csrf"

type ctxKey struct{}

// FromContext returns the principal the middleware put in ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// TokenFromRequest returns the bearer token of r (Authorization header first, then the cookie)
// and whether it came from the cookie.
func TokenFromRequest(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok), false
		}
		return "", false
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value, true
	}
	return "", false
}

// Middleware lets through requests with a valid token (the principal in their context) and
// answers the others 401 with a WWW-Authenticate challenge (RFC 6750), 403 for a cookie-
// authenticated state change without the CSRF header, and 503 when the keys cannot be fetched.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, cookie := TokenFromRequest(r)
		p, err := v.Verify(r.Context(), raw)
		if err != nil {
			Deny(w, err)
			return
		}
		if cookie && r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get(CSRFHeader) == "" {
			refuse(w, http.StatusForbidden, "forbidden", "cookie-authenticated requests that change state need the "+CSRFHeader+" header")
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// Deny writes the answer for a Verify error, in the realm omnibus-desk.
func Deny(w http.ResponseWriter, err error) { DenyIn(w, "omnibus-desk", err) }

// DenyIn writes the answer for a Verify error with a WWW-Authenticate challenge of realm. The
// reason names what was wrong with the token, never the JWT library's words (webhook.ClientReason).
func DenyIn(w http.ResponseWriter, realm string, err error) {
	reason := webhook.ClientReason(err)
	switch {
	case errors.Is(err, ErrKeys):
		refuse(w, http.StatusServiceUnavailable, "unavailable", reason)
	case errors.Is(err, ErrNoToken):
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
		refuse(w, http.StatusUnauthorized, "unauthorized", reason)
	default:
		desc := strings.NewReplacer(`"`, "'", "\\", "/").Replace(reason)
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`", error="invalid_token", error_description="`+desc+`"`)
		refuse(w, http.StatusUnauthorized, "unauthorized", reason)
	}
}

// refuse answers code with the desk API's error body {"error": errCode, "reason": reason}.
func refuse(w http.ResponseWriter, code int, errCode, reason string) {
	webhook.WriteJSON(w, code, map[string]string{"error": errCode, "reason": reason})
}
