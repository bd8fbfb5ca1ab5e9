package service

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/schema"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
)

// Health holds readiness checks. /healthz answers 200 while the process serves; /readyz runs every
// check and answers 503 with the failing ones.
type Health struct {
	mu       sync.RWMutex
	checks   map[string]func(context.Context) error
	disabled []Disabled
}

// SetDisabled records the optional services the process left out (Select); /readyz lists them
// under "disabled" and they do not make the process unready.
func (h *Health) SetDisabled(d []Disabled) {
	h.mu.Lock()
	h.disabled = append([]Disabled(nil), d...)
	h.mu.Unlock()
}

// Disabled returns the services recorded by SetDisabled (nil for none). The desk shows them on
// /ops.
func (h *Health) Disabled() []Disabled {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return append([]Disabled(nil), h.disabled...)
}

// NewHealth returns an empty Health.
func NewHealth() *Health { return &Health{checks: map[string]func(context.Context) error{}} }

// AddCheck registers a readiness check under name (replacing one of the same name).
func (h *Health) AddCheck(name string, check func(context.Context) error) {
	h.mu.Lock()
	h.checks[name] = check
	h.mu.Unlock()
}

// Check runs every check with a 2 s budget and returns the failures by name.
func (h *Health) Check(ctx context.Context) map[string]string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h.mu.RLock()
	defer h.mu.RUnlock()
	fail := map[string]string{}
	for name, c := range h.checks {
		if err := c(ctx); err != nil {
			fail[name] = err.Error()
		}
	}
	return fail
}

// NewProcessHealth returns a Health checking the process's NATS connection and, when pool is
// not nil, its Postgres pool — the checks every omnibus process has.
func NewProcessHealth(nc *nats.Conn, pool *pgxpool.Pool) *Health {
	h := NewHealth()
	if nc != nil {
		h.AddCheck("nats", func(context.Context) error {
			if !nc.IsConnected() {
				return errors.New("nats: " + nc.Status().String())
			}
			return nil
		})
	}
	if pool != nil {
		h.AddCheck("postgres", func(ctx context.Context) error { return pool.Ping(ctx) })
	}
	return h
}

// Mount registers /healthz, /readyz and, when metrics is non-nil, /metrics on mux. /readyz answers
// {"ready", "checks", "failing", "disabled"}: disabled lists the services left out (SetDisabled).
func (h *Health) Mount(mux *http.ServeMux, metrics http.Handler) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		fail := h.Check(r.Context())
		h.mu.RLock()
		names := make([]string, 0, len(h.checks))
		for n := range h.checks {
			names = append(names, n)
		}
		h.mu.RUnlock()
		sort.Strings(names)
		disabled := h.Disabled()
		if disabled == nil {
			disabled = []Disabled{}
		}
		w.Header().Set("Content-Type", "application/json")
		if len(fail) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": len(fail) == 0, "checks": names, "failing": fail, "disabled": disabled})
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	// The events' schemas, where a dataschema under SCHEMA_BASE_URL points.
	mux.Handle("GET "+schema.Path, schema.Default().Handler())
}
