// Package servicetest runs an omnibus service inside a test the way the all-in-one runs it: on a
// given bus client, with its routes on a mux, configured from a map instead of the environment.
package servicetest

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

// Run starts s on b (a *bus.Client, or nil for a NoBus service) with its routes on mux (a fresh one when nil), reading its
// configuration from env (read at each lookup, so a test may change it before the service reads
// it). It returns stop, which cancels the service and fails t when the service returns an error or
// does not stop within 20 s; stop also runs when the test ends, and only once.
func Run(t testing.TB, s service.Service, b bus.Bus, mux *http.ServeMux, env map[string]string) (stop func()) {
	t.Helper()
	if mux == nil {
		mux = http.NewServeMux()
	}
	stop, _, _ = run(t, s, b, mux, env, nil)
	return stop
}

// RunStarted is Run, returning once s has started (Deps.MarkStarted: its start checks made, its
// routes and consumers up). s returning first fails t at once.
func RunStarted(t testing.TB, s service.Service, b bus.Bus, mux *http.ServeMux, env map[string]string) (stop func()) {
	t.Helper()
	if mux == nil {
		mux = http.NewServeMux()
	}
	started := make(chan struct{})
	stop, exited, result := run(t, s, b, mux, env, func() { close(started) })
	select {
	case <-started:
	case <-exited:
		t.Fatalf("%s returned before it started: %v", s.Name, *result)
	}
	return stop
}

// run runs s until stop; exited is closed when s.Run returned, with its error in *result.
func run(t testing.TB, s service.Service, b bus.Bus, mux *http.ServeMux, env map[string]string, onStarted func()) (stop func(), exited <-chan struct{}, result *error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = s.Run(ctx, service.Deps{Bus: b, Mux: mux, Log: slog.New(slog.DiscardHandler), Health: service.NewHealth(),
			Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, Started: onStarted})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
				if err != nil {
					t.Errorf("%s stopped with %v", s.Name, err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("%s did not stop within 20s", s.Name)
			}
		})
	}
	t.Cleanup(stop)
	return stop, done, &err
}

// Start runs s as Run does, with what it logs kept, until it has started (Deps.MarkStarted) or
// returned, then stops it. It returns the error of a failed start (nil when s started and then
// stopped cleanly) and s's log (text handler, debug level and up). A service that returns nil
// without starting, or fails to stop within 20 s, fails t.
func Start(t testing.TB, s service.Service, b bus.Bus, mux *http.ServeMux, env map[string]string) (error, string) { //nolint:revive,staticcheck // the start's error and the log read best in this order
	t.Helper()
	if mux == nil {
		mux = http.NewServeMux()
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.Run(ctx, service.Deps{Bus: b, Mux: mux, Health: service.NewHealth(),
			Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, Started: func() { close(started) }})
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("%s returned nil before it started", s.Name)
		}
		return err, logs.String()
	case <-started:
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s stopped with %v", s.Name, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop within 20s", s.Name)
	}
	return nil, logs.String()
}

// syncBuffer is a log sink safe for the service's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
