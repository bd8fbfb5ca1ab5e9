package audit

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

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
// with {"error": "..."}; with a token set, a request without "Authorization: Bearer <token>" is
// a 401.
func NewHandler(st *store.Store, token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="omnibus audit"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a bearer token is required (AUDIT_API_TOKEN)"})
				return
			}
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
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "query failed"})
		default:
			writeJSON(w, http.StatusOK, page)
		}
	})
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
