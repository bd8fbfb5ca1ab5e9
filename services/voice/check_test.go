package voice_test

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/services/sandbox/nls"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim/simtest"
	"github.com/omnibus-dev/omnibus/services/voice"
)

// TestStartCheck: with Aliyun NLS configured the connector asks CreateToken at start. A key
// Aliyun does not know or a secret whose signature does not match stops the start naming the
// variable; Aliyun failing only warns, and the connector starts.
func TestStartCheck(t *testing.T) {
	t.Parallel()
	start := func(t *testing.T, env map[string]string, faults map[string]sim.Fault) (error, string) { //nolint:revive,staticcheck // as servicetest.Start
		t.Helper()
		senv, cfg := asrSandbox(t)
		dir := t.TempDir()
		cfg["VOICE_SIP_LISTEN"], cfg["VOICE_RTP_PORTS"] = "127.0.0.1:"+strconv.Itoa(freePort(t)), rtpRange(t)
		cfg["VOICE_SPOOL_DIR"], cfg["VOICE_RECORDING_BUCKET"] = filepath.Join(dir, "spool"), "file://"+filepath.Join(dir, "recordings")
		return simtest.Start(t, voice.Service(), bustest.New(t, bus.WithLogger(quiet())).Client, nil, senv, cfg, env, faults)
	}
	t.Run("good configuration", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, nil, nil)
		connectortest.RequireAccepted(t, err, logs, "aliyun")
	})
	t.Run("unknown access key", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, map[string]string{"VOICE_ALIYUN_ACCESS_KEY_ID": "LTAI5tSomeoneElse"}, nil)
		connectortest.RequireRefused(t, err, logs, "VOICE_ALIYUN_ACCESS_KEY_ID=LTAI5tSomeoneElse refused", "InvalidAccessKeyId.NotFound")
	})
	t.Run("wrong secret", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, map[string]string{"VOICE_ALIYUN_ACCESS_KEY_SECRET": "not-the-secret"}, nil)
		connectortest.RequireRefused(t, err, logs, "VOICE_ALIYUN_ACCESS_KEY_SECRET refused", "SignatureDoesNotMatch")
	})
	t.Run("aliyun down", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, map[string]string{"RESILIENCE_ALIYUN_CHECK_MAX_ATTEMPTS": "1"},
			map[string]sim.Fault{nls.Vendor + " " + nls.OpToken: {ErrorRatio: 1}})
		connectortest.RequireUnchecked(t, err, logs, "aliyun")
	})
}
