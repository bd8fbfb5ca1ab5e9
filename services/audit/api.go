package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omnibus-dev/omnibus/pkg/auth"
	"github.com/omnibus-dev/omnibus/pkg/httpguard"

	"github.com/omnibus-dev/omnibus/services/audit/internal/store"
)

// Filter selects records (zero fields do not filter); Page is one page of them, newest first,
// with the cursor of the next page. Record is a stored record: the event id and the data of its
// omni.audit.call.recorded event.
type (
	Filter = store.Filter
	Page   = store.Page
	Record = store.Row
)

// Query reads records from the audit database (for tools with database access; the API and
// Command go through the HTTP API).
func Query(ctx context.Context, db *pgxpool.Pool, f Filter) (Page, error) {
	return store.New(db).Query(ctx, f)
}

// NewHandler serves GET /api/audit:
//
//	GET /api/audit?from=&to=&service=&vendor=&op=&outcome=&customer_id=&trace_id=&limit=&cursor=
//
// from and to are RFC 3339 times or dates (to is exclusive); limit defaults to 100 and is at most
// 1000; cursor is the next_cursor of the previous page. The answer is
// {"records": [...], "next_cursor": "..."} with records newest first. A bad parameter is a 400
// with {"error": "..."}. The records name customers and carry what they wrote, so every request
// needs "Authorization: Bearer <token>" (or the desk's cookie) that v accepts — a token of the
// desk's issuer with one of AUDIT_API_ROLES: 401 without one, 503 when v is nil (no issuer
// configured). limit (RATE_API_TOKEN) bounds the requests per token subject: 429 past it.
func NewHandler(st *store.Store, v *auth.Verifier, limit *httpguard.Limiter, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v == nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable",
				"reason": "the audit API has no token issuer configured (DESK_OIDC_ISSUER, or DESK_DEV_LOGIN=true for development)"})
			return
		}
		raw, _ := auth.TokenFromRequest(r)
		p, err := v.Verify(r.Context(), raw)
		if err != nil {
			log.WarnContext(r.Context(), "audit API request refused", "reason", err.Error(), "remote", r.RemoteAddr)
			auth.DenyIn(w, "omnibus audit", err)
			return
		}
		if ok, retry := limit.Allow(p.Subject + "\x00" + p.AgentID); !ok {
			limit.Refuse(w, r, retry, "too many audit API requests with this token; retry after the time in Retry-After")
			return
		}
		f, err := ParseFilter(r.URL.Query())
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		page, err := st.Query(r.Context(), f)
		switch {
		case errors.Is(err, store.ErrBadCursor):
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "cursor: not a cursor this API returned"})
		case err != nil:
			log.ErrorContext(r.Context(), "audit query failed", "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "query failed"})
		default:
			writeJSON(w, http.StatusOK, page)
		}
	})
}

// apiVerifier returns the verifier of the API's tokens: the desk's OpenID Connect issuer, or
// with DESK_DEV_LOGIN the desk's development issuer at DESK_PUBLIC_URL (its keys fetched from
// there on first use, so the desk may start after the audit service); nil when neither is
// configured.
func apiVerifier(cfg Config) (*auth.Verifier, error) {
	ac := auth.Config{Issuer: cfg.OIDCIssuer, Audience: cfg.OIDCAudience, JWKSURL: cfg.JWKSURL, RolesClaim: cfg.RolesClaim, Roles: cfg.APIRoles}
	if cfg.DevLogin {
		ac.Issuer = strings.TrimSuffix(cfg.PublicURL, "/") + auth.DevPath
		if ac.JWKSURL == "" { // else where this service reaches the desk (compose: http://desk:8080/desk/dev/jwks.json)
			ac.JWKSURL = ac.Issuer + "/jwks.json"
		}
	}
	if ac.Issuer == "" {
		return nil, nil
	}
	return auth.NewVerifier(ac)
}

// ParseFilter reads the query parameters of GET /api/audit.
func ParseFilter(q url.Values) (Filter, error) {
	known := map[string]bool{"from": true, "to": true, "service": true, "vendor": true, "op": true, "outcome": true,
		"customer_id": true, "trace_id": true, "limit": true, "cursor": true}
	for k := range q {
		if !known[k] {
			return Filter{}, fmt.Errorf("unknown parameter %q (known: from, to, service, vendor, op, outcome, customer_id, trace_id, limit, cursor)", k)
		}
	}
	f := Filter{Service: q.Get("service"), Vendor: q.Get("vendor"), Op: q.Get("op"), Outcome: q.Get("outcome"),
		CustomerID: q.Get("customer_id"), TraceID: q.Get("trace_id"), Cursor: q.Get("cursor")}
	var err error
	if f.From, err = parseTime("from", q.Get("from")); err != nil {
		return f, err
	}
	if f.To, err = parseTime("to", q.Get("to")); err != nil {
		return f, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, fmt.Errorf("from (%s) must be before to (%s)", f.From.Format(time.RFC3339), f.To.Format(time.RFC3339))
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxLimit {
			return f, fmt.Errorf("limit must be between 1 and %d, got %q", store.MaxLimit, s)
		}
		f.Limit = n
	}
	return f, nil
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s: %q is not an RFC 3339 time or a date (2026-03-01T08:00:00Z, 2026-03-01)", name, s)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
