package connector_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

// TestResilience: the registry is built once, reads route overrides from the service's Env (not
// the process environment), and its audit records are flushed when the connector stops.
func TestResilience(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	spec := connector.Spec{Name: "t", Produces: connector.ResilienceRoutes("t")}
	env := map[string]string{"RESILIENCE_VENDOR_LOOKUP_MAX_ATTEMPTS": "7"}
	ready := make(chan *resilience.Route, 1)
	svc := connector.Define(spec, func(ctx context.Context, rt *connector.Runtime, _ *cfg) error {
		reg, err := rt.Resilience()
		if err != nil {
			return err
		}
		if again, err := rt.Resilience(); err != nil || again != reg {
			t.Errorf("second Resilience() = %p, %v; want the same registry %p", again, err, reg)
		}
		route, err := reg.Route(resilience.RouteSpec{Vendor: "vendor", Op: "lookup", Idempotent: true})
		if err != nil {
			return err
		}
		if _, err := resilience.Do(ctx, route, resilience.Call{Key: "k1"}, func(context.Context, *resilience.Attempt) (string, error) {
			return "ok", nil
		}); err != nil {
			return err
		}
		ready <- route
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- svc.Run(ctx, service.Deps{Bus: b.Client, Mux: http.NewServeMux(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	}()
	var route *resilience.Route
	select {
	case route = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	}
	if got := route.Settings().MaxAttempts; got != 7 {
		t.Errorf("MaxAttempts = %d, want 7 from the service's Env", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Run has returned: the record must already be stored, flushed by the shutdown.
	if n := b.StoredCount(t, bus.StreamAudit, audit.Subject("t")); n != 1 {
		t.Fatalf("%d audit records stored after shutdown, want 1", n)
	}
}

func TestResilienceNeedsDeclaredRoutes(t *testing.T) {
	t.Parallel()
	rt := &connector.Runtime{Spec: spec, Log: slog.New(slog.DiscardHandler)}
	if _, err := rt.Resilience(); !errors.Is(err, connector.ErrUndeclared) {
		t.Fatalf("Resilience() with audit and alert routes undeclared: %v", err)
	}
}
