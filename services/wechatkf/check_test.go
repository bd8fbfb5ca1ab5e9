package wechatkf_test

import (
	"strconv"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/service/servicetest"
	wire "github.com/omnibus-dev/omnibus/pkg/wire/wecom"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/wecom"
	"github.com/omnibus-dev/omnibus/services/wechatkf"
)

// startWith starts the connector against the world's sandbox with env over its configuration
// and faults injected first, until it serves (then stops it) or fails to start.
func startWith(t *testing.T, w *world, env map[string]string, faults map[string]sim.Fault) (error, string) { //nolint:revive,staticcheck // as servicetest.Start
	t.Helper()
	for k, f := range faults {
		if err := w.env.SetFault(k, f); err != nil {
			t.Fatal(err)
		}
	}
	cfg := map[string]string{}
	for k, v := range w.conf {
		cfg[k] = v
	}
	for k, v := range env {
		cfg[k] = v
	}
	return servicetest.Start(t, wechatkf.Service(), w.bus.Connect(t, bus.WithLogger(quiet())), nil, cfg)
}

// TestStartCheck: at start the connector asks WeCom for an access_token with WECHATKF_CORP_ID
// and WECHATKF_SECRET. WeCom's refusal stops the start with connector.ErrMisconfigured naming the
// variable (40013 the corp id, 40001 the secret, 60020 the trusted IPs); WeCom busy or a gateway
// failing only warns, and the connector starts. The token the check got is the one the first
// pull uses: a good start makes one gettoken call, on the check's route.
func TestStartCheck(t *testing.T) {
	t.Parallel()
	code := func(c int) map[string]sim.Fault {
		return map[string]sim.Fault{"wecom " + wecom.OpGetToken: {ErrorRatio: 1, Code: strconv.Itoa(c)}}
	}
	for _, tc := range []struct {
		name   string
		env    map[string]string
		faults map[string]sim.Fault
		want   []string
	}{
		{"wrong secret", map[string]string{"WECHATKF_SECRET": "not-the-secret"}, nil, []string{"WECHATKF_SECRET refused", "errcode 40001"}},
		{"wrong corp id", map[string]string{"WECHATKF_CORP_ID": "wwSomeOtherCorp"}, nil, []string{"WECHATKF_CORP_ID=wwSomeOtherCorp refused", "errcode 40013"}},
		{"IP not trusted", nil, code(wire.CodeIPNotAllowed), []string{"trusted IPs", "errcode 60020"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err, logs := startWith(t, newWorld(t, nil), tc.env, tc.faults)
			connectortest.RequireRefused(t, err, logs, tc.want...)
		})
	}
	t.Run("good configuration", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, nil)
		err, logs := startWith(t, w, nil, nil)
		connectortest.RequireAccepted(t, err, logs, "wecom")
		if n := stats(w, wecom.OpGetToken).Calls; n != 1 {
			t.Fatalf("%d gettoken calls, want 1 (the check's token reused)", n)
		}
	})
	for name, f := range map[string]sim.Fault{"busy": {ErrorRatio: 1}, "gateway 502": {ErrorRatio: 1, Code: "http_502"}} {
		t.Run("wecom "+name, func(t *testing.T) {
			t.Parallel()
			err, logs := startWith(t, newWorld(t, nil), map[string]string{"RESILIENCE_WECOM_CHECK_MAX_ATTEMPTS": "1"},
				map[string]sim.Fault{"wecom " + wecom.OpGetToken: f})
			connectortest.RequireUnchecked(t, err, logs, "wecom")
		})
	}
}
