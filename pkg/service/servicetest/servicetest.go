// Package servicetest runs an omnibus service inside a test the way the all-in-one runs it: on a
// given bus client, with its routes on a mux, configured from a map instead of the environment.
package servicetest

import (
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, service.Deps{Bus: b, Mux: mux, Log: slog.New(slog.DiscardHandler), Health: service.NewHealth(),
			Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s stopped with %v", s.Name, err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("%s did not stop within 20s", s.Name)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
