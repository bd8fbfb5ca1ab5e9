// Package web serves the workbench: the embedded pages and assets (plain HTML, CSS and
// JavaScript, no build step), the login page, and the development login.
package web

import (
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/auth"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

//go:embed assets
var assets embed.FS

//go:embed login.html
var loginHTML string

var loginTmpl = template.Must(template.New("login").Parse(loginHTML))

// Web serves the pages.
type Web struct {
	Store        *store.Store
	Verifier     *auth.Verifier
	Dev          *auth.DevIssuer // nil unless DESK_DEV_LOGIN=true
	DevTTL       time.Duration
	CookieSecure bool
	Log          *slog.Logger
}

// Mount registers the pages on mux.
func (w *Web) Mount(mux *http.ServeMux) {
	sub, _ := fs.Sub(assets, "assets")
	static := http.StripPrefix("/desk/assets/", http.FileServerFS(sub))
	mux.Handle("GET /desk/assets/", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Cache-Control", "no-cache")
		static.ServeHTTP(rw, r)
	}))
	// Browsers ask for /favicon.ico on every page that names no icon (the web chat's too).
	mux.HandleFunc("GET /favicon.ico", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "image/svg+xml")
		rw.Header().Set("Cache-Control", "public, max-age=86400")
		http.ServeFileFS(rw, r, sub, "favicon.svg")
	})
	mux.HandleFunc("GET /{$}", w.page("index.html"))
	mux.HandleFunc("GET /ops", w.page("ops.html"))
	mux.HandleFunc("GET /kb", w.page("kb.html"))
	mux.HandleFunc("GET /analytics", w.page("analytics.html"))
	mux.HandleFunc("GET /desk/login", w.login)
	mux.HandleFunc("POST /desk/session", w.session)
	mux.HandleFunc("POST /desk/logout", w.logout)
	if w.Dev != nil {
		w.Dev.Mount(mux)
		mux.HandleFunc("GET /desk/dev/login", w.devLogin)
		mux.HandleFunc("POST /desk/dev/login", w.devLogin)
	}
}

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}

// page serves an embedded page to a signed-in browser and sends others to the login page.
func (w *Web) page(name string) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		tok, _ := auth.TokenFromRequest(r)
		if _, err := w.Verifier.Verify(r.Context(), tok); err != nil {
			http.Redirect(rw, r, "/desk/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		b, err := fs.ReadFile(assets, "assets/"+name)
		if err != nil {
			http.NotFound(rw, r)
			return
		}
		securityHeaders(rw.Header())
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-store")
		_, _ = rw.Write(b)
	}
}

func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/"
	}
	return next
}

func (w *Web) setCookie(rw http.ResponseWriter, r *http.Request, token string, exp time.Time) {
	http.SetCookie(rw, &http.Cookie{Name: auth.CookieName, Value: token, Path: "/", Expires: exp, HttpOnly: true,
		Secure: w.CookieSecure || r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

type loginData struct {
	Dev    bool
	Agents []store.AgentLoad
	Next   string
	Error  string
}

func (w *Web) login(rw http.ResponseWriter, r *http.Request) {
	data := loginData{Dev: w.Dev != nil, Next: safeNext(r.URL.Query().Get("next")), Error: r.URL.Query().Get("error")}
	if data.Dev {
		agents, err := w.Store.Agents(r.Context())
		if err != nil {
			w.Log.Error("login page", "err", err)
		}
		data.Agents = agents
	}
	securityHeaders(rw.Header())
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	_ = loginTmpl.Execute(rw, data)
}

// session signs a browser in with a token from the organisation's identity provider (pasted,
// or posted by an auth proxy): it is verified like any bearer token, then kept in the cookie.
func (w *Web) session(rw http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(rw, r.Body, 16<<10)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	p, err := w.Verifier.Verify(r.Context(), tok)
	if err != nil {
		w.Log.Warn("desk sign-in refused", "reason", err.Error(), "remote", r.RemoteAddr)
		http.Redirect(rw, r, "/desk/login?error="+url.QueryEscape(webhook.ClientReason(err))+"&next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	w.setCookie(rw, r, tok, p.ExpiresAt)
	http.Redirect(rw, r, next, http.StatusSeeOther)
}

func (w *Web) logout(rw http.ResponseWriter, r *http.Request) {
	http.SetCookie(rw, &http.Cookie{Name: auth.CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(rw, r, "/desk/login", http.StatusSeeOther)
}

// devLogin mints a token of the development issuer for a desk agent: ?agent=<id> (or the form
// field), role agent, or supervisor with role=supervisor. With format=token it answers the token
// as JSON (for curl); otherwise it sets the cookie and redirects to next.
func (w *Web) devLogin(rw http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(rw, r.Body, 16<<10)
	agentID := r.FormValue("agent")
	ag, err := w.Store.GetAgent(r.Context(), agentID)
	if err != nil {
		http.Error(rw, "unknown agent "+agentID+": choose one on /desk/login", http.StatusBadRequest)
		return
	}
	roles := []string{auth.RoleAgent}
	switch r.FormValue("role") {
	case auth.RoleSupervisor:
		roles = append(roles, auth.RoleSupervisor)
	case auth.RoleAuditor: // reads the audit API (format=token), not the workbench
		roles = []string{auth.RoleAuditor}
	}
	tok, err := w.Dev.Mint(ag.ID, ag.Name, roles, w.DevTTL)
	if err != nil {
		w.Log.Error("dev login: minting a token failed", "agent", ag.ID, "err", err)
		http.Error(rw, "the development issuer could not sign a token; see the desk's log", http.StatusInternalServerError)
		return
	}
	w.Log.Warn("dev login: token issued by the development issuer", "agent", ag.ID, "roles", roles)
	if r.FormValue("format") == "token" {
		rw.Header().Set("Content-Type", "application/json")
		rw.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(rw).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(w.DevTTL.Seconds())})
		return
	}
	w.setCookie(rw, r, tok, time.Now().Add(w.DevTTL))
	http.Redirect(rw, r, safeNext(r.FormValue("next")), http.StatusSeeOther)
}
