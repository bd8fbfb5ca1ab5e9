package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/service"
)

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := service.NewRegistry()
	run := func(context.Context, service.Deps) error { return nil }
	if err := r.Register(service.Service{Name: "b", Run: run}); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(service.Service{Name: "a", Run: run}); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(service.Service{Name: "a", Run: run}); !errors.Is(err, service.ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := r.Register(service.Service{Name: "c"}); err == nil {
		t.Fatal("a service without Run registered")
	}
	if got := r.Services(); len(got) != 2 || got[0].Name != "a" {
		t.Fatalf("services: %v", got)
	}
}

func TestRunAll(t *testing.T) {
	t.Parallel()
	deps := func(service.Service) service.Deps { return service.Deps{} }
	t.Run("a failure stops the others", func(t *testing.T) {
		t.Parallel()
		stopped := make(chan struct{})
		err := service.RunAll(context.Background(), []service.Service{
			{Name: "bad", Run: func(context.Context, service.Deps) error { return errors.New("boom") }},
			{Name: "good", Run: func(ctx context.Context, _ service.Deps) error { <-ctx.Done(); close(stopped); return nil }},
		}, deps)
		if err == nil || !strings.Contains(err.Error(), "bad: boom") {
			t.Fatalf("err %v", err)
		}
		<-stopped
	})
	t.Run("cancelled while starting is a clean stop", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := service.RunAll(ctx, []service.Service{
			{Name: "starting", Run: func(ctx context.Context, _ service.Deps) error { return ctx.Err() }},
		}, deps)
		if err != nil {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("First services start before the others", func(t *testing.T) {
		t.Parallel()
		var sandboxUp atomic.Bool
		sawUp := make(chan bool, 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		err := service.RunAll(ctx, []service.Service{
			{Name: "connector", Run: func(context.Context, service.Deps) error { sawUp <- sandboxUp.Load(); cancel(); return nil }},
			{Name: "sandbox", First: true, Run: func(ctx context.Context, d service.Deps) error {
				sandboxUp.Store(true)
				d.MarkStarted()
				<-ctx.Done()
				return nil
			}},
		}, deps)
		if err != nil || !<-sawUp {
			t.Fatalf("err %v; the connector started before the First service had", err)
		}
	})
	t.Run("a First service that fails does not hold the others back", func(t *testing.T) {
		t.Parallel()
		err := service.RunAll(context.Background(), []service.Service{
			{Name: "connector", Run: func(ctx context.Context, _ service.Deps) error { <-ctx.Done(); return nil }},
			{Name: "sandbox", First: true, Run: func(context.Context, service.Deps) error { return errors.New("boom") }},
		}, deps)
		if err == nil || !strings.Contains(err.Error(), "sandbox: boom") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	h := service.NewHealth()
	var down atomic.Bool
	h.AddCheck("db", func(context.Context) error {
		if down.Load() {
			return errors.New("db down")
		}
		return nil
	})
	mux := http.NewServeMux()
	h.Mount(mux, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("m 1\n")) }))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, string) {
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("/readyz %d %s", code, body)
	}
	down.Store(true)
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "db down") {
		t.Fatalf("/readyz with a failing check: %d %s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || body != "m 1\n" {
		t.Fatalf("/metrics %d %q", code, body)
	}
	addr := strings.TrimPrefix(srv.URL, "http://")
	if service.HealthCheck(addr) != 0 || service.HealthCheck("127.0.0.1:1") != 1 {
		t.Fatal("HealthCheck exit codes")
	}
}

// TestStartup: readiness fails naming the services still starting until each has called
// MarkStarted; marks of unknown names and repeated marks change nothing.
func TestStartup(t *testing.T) {
	t.Parallel()
	st := service.NewStartup("unifier", "desk")
	h := service.NewHealth()
	st.Watch(h)
	if fail := h.Check(context.Background()); fail["services"] != "starting: desk, unifier" {
		t.Fatalf("checks %v", fail)
	}
	d := st.For("desk", service.Deps{})
	d.MarkStarted()
	d.MarkStarted()
	st.Started("nobody")
	if fail := h.Check(context.Background()); fail["services"] != "starting: unifier" {
		t.Fatalf("checks %v", fail)
	}
	select {
	case <-st.Done():
		t.Fatal("done with unifier still starting")
	default:
	}
	st.For("unifier", service.Deps{}).MarkStarted()
	<-st.Done()
	if fail := h.Check(context.Background()); len(fail) != 0 {
		t.Fatalf("checks %v", fail)
	}
	service.Deps{}.MarkStarted() // no hook: nothing happens
}

func TestStoppedWhileStarting(t *testing.T) {
	t.Parallel()
	live := context.Background()
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	wrapped := fmt.Errorf("open bucket: %w", context.Canceled)
	for name, tc := range map[string]struct {
		ctx  context.Context
		err  error
		want bool
	}{
		"nil error":              {stopped, nil, false},
		"cancelled start":        {stopped, wrapped, true},
		"other error after stop": {stopped, errors.New("bind: address in use"), false},
		"canceled without stop":  {live, wrapped, false},
		"deadline is not a stop": {stopped, context.DeadlineExceeded, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := service.StoppedWhileStarting(tc.ctx, tc.err); got != tc.want {
				t.Fatalf("StoppedWhileStarting(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
