package oms_test

import (
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/services/oms"
	omssim "github.com/omnibus-dev/omnibus/services/sandbox/oms"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim/simtest"
)

// TestStartCheck: at start the connector asks the OMS for an order nobody has, signed with its
// key and secret. "No such order" accepts the configuration; a refused key, a signature that does
// not verify (the secret) or a base that is not the OMS stops the start naming the variable; an
// OMS that is down only warns, and the connector starts.
func TestStartCheck(t *testing.T) {
	t.Parallel()
	start := func(t *testing.T, env map[string]string, faults map[string]sim.Fault) (error, string) { //nolint:revive,staticcheck // as servicetest.Start
		t.Helper()
		senv, _, cfg := sandbox(t)
		return simtest.Start(t, oms.Service(), bustest.New(t, bus.WithLogger(quiet())).Client, nil, senv, cfg, env, faults)
	}
	t.Run("good configuration", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, nil, nil)
		connectortest.RequireAccepted(t, err, logs, "oms")
	})
	for name, tc := range map[string]struct {
		env  map[string]string
		want []string
	}{
		"wrong key":    {map[string]string{"OMS_APP_KEY": "someone-else"}, []string{"OMS_APP_KEY=someone-else refused", "40101"}},
		"wrong secret": {map[string]string{"OMS_APP_SECRET": "not-the-secret"}, []string{"OMS_APP_SECRET refused", "40102"}},
		"wrong base":   {map[string]string{"OMS_API_BASE": "http://127.0.0.1:1/x"}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if tc.want == nil { // nothing listens there: unreachable, not a refusal
				err, logs := start(t, tc.env, nil)
				connectortest.RequireUnchecked(t, err, logs, "oms")
				return
			}
			err, logs := start(t, tc.env, nil)
			connectortest.RequireRefused(t, err, logs, tc.want...)
		})
	}
	t.Run("base of something else", func(t *testing.T) {
		t.Parallel()
		_, _, cfg := sandbox(t)
		err, logs := start(t, map[string]string{"OMS_API_BASE": cfg["OMS_API_BASE"] + "/not-the-api"}, nil)
		connectortest.RequireRefused(t, err, logs, "OMS_API_BASE=", "does not answer as the OMS open API")
	})
	t.Run("oms down", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, map[string]string{"RESILIENCE_OMS_CHECK_MAX_ATTEMPTS": "1"},
			map[string]sim.Fault{"oms " + omssim.OpGet: {ErrorRatio: 1}})
		connectortest.RequireUnchecked(t, err, logs, "oms")
	})
}
