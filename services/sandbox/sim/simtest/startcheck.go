package simtest

import (
	"net/http"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/service/servicetest"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Start is a connector's start-check test's start: faults are injected into the simulated
// vendor env first, extra is laid over the connector's configuration cfg (which is changed),
// then svc runs until it serves (and is stopped) or fails to start; it returns the start's
// error and the connector's log, as servicetest.Start. mux may be nil.
func Start(t testing.TB, svc service.Service, b bus.Bus, mux *http.ServeMux, env *sim.Env, cfg, extra map[string]string, faults map[string]sim.Fault) (error, string) { //nolint:revive,staticcheck // as servicetest.Start
	t.Helper()
	for k, f := range faults {
		if err := env.SetFault(k, f); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range extra {
		cfg[k] = v
	}
	return servicetest.Start(t, svc, b, mux, cfg)
}
