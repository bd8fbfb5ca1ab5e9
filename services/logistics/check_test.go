package logistics_test

import (
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/services/logistics"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim/simtest"
)

// startWith starts the connector (both carriers configured) against the sandbox with extra over
// its configuration and faults injected first, until it serves (then stops it) or fails to
// start. It returns the start's error and the connector's log.
func startWith(t *testing.T, extra map[string]string, faults map[string]sim.Fault) (error, string) { //nolint:revive,staticcheck // as servicetest.Start
	t.Helper()
	env, _, cfg := sandbox(t)
	return simtest.Start(t, logistics.Service(), bustest.New(t, bus.WithLogger(quiet())).Client, nil, env, cfg, extra, faults)
}

// TestStartCheck: at start each configured carrier is asked about a waybill that does not exist.
// SF's platform refusals (A1006 bad msgDigest, A1004 unknown customer code) and Cainiao's S01
// (unknown provider id or bad data_digest) stop the start with connector.ErrMisconfigured naming
// the variables; a carrier failing (A1099, S99, a bare 503) only warns, and the connector starts.
func TestStartCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		extra map[string]string
		want  []string
	}{
		{"sf checkword", map[string]string{"SF_CHECKWORD": "wrong"}, []string{"SF_CHECKWORD does not make the msgDigest", "A1006"}},
		{"sf partner", map[string]string{"SF_PARTNER_ID": "SOMEONE_ELSE"}, []string{"SF_PARTNER_ID=SOMEONE_ELSE", "A1004"}},
		{"cainiao secret", map[string]string{"CAINIAO_SECRET_KEY": "wrong"}, []string{"CAINIAO_PROVIDER_ID=OMNIBUS_CN / CAINIAO_SECRET_KEY refused", "S01"}},
		{"cainiao provider", map[string]string{"CAINIAO_PROVIDER_ID": "SOMEONE_ELSE"}, []string{"CAINIAO_PROVIDER_ID=SOMEONE_ELSE", "S01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err, logs := startWith(t, tc.extra, nil)
			connectortest.RequireRefused(t, err, logs, tc.want...)
		})
	}
	t.Run("good configuration", func(t *testing.T) {
		t.Parallel()
		err, logs := startWith(t, nil, nil)
		connectortest.RequireAccepted(t, err, logs, "sfexpress", "cainiao")
	})
	for _, tc := range []struct{ vendor, code string }{{"sfexpress", ""}, {"cainiao", ""}, {"cainiao", "http_503"}} {
		t.Run(tc.vendor+" down "+tc.code, func(t *testing.T) {
			t.Parallel()
			err, logs := startWith(t, map[string]string{"RESILIENCE_" + strings.ToUpper(tc.vendor) + "_CHECK_MAX_ATTEMPTS": "1"},
				map[string]sim.Fault{tc.vendor + " *": {ErrorRatio: 1, Code: tc.code}})
			connectortest.RequireUnchecked(t, err, logs, tc.vendor)
		})
	}
}
