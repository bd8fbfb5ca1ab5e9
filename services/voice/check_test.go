package voice_test

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/services/sandbox/nls"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim/simtest"
	speechsim "github.com/omnibus-dev/omnibus/services/sandbox/speech"
	"github.com/omnibus-dev/omnibus/services/voice"
)

// TestStartCheck: with Aliyun NLS configured the connector asks CreateToken at start, and with
// live transcription on iFlytek RTASR it opens (and closes) one signed RTASR stream. A key either
// vendor does not know, a secret or APIKey whose signature does not match, or a lang the iFlytek
// app has no licence for stops the start naming the variable; a vendor failing only warns, and
// the connector starts.
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
		connectortest.RequireAccepted(t, err, logs, "aliyun", "iflytek")
	})
	t.Run("iflytek: wrong API key", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, map[string]string{"VOICE_IFLYTEK_API_KEY": "not-the-api-key"}, nil)
		connectortest.RequireRefused(t, err, logs, "VOICE_IFLYTEK_API_KEY refused", "10110", "illegal signa")
	})
	t.Run("iflytek: unknown appid", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, map[string]string{"VOICE_IFLYTEK_APP_ID": "0badc0de"}, nil)
		connectortest.RequireRefused(t, err, logs, "VOICE_IFLYTEK_APP_ID=0badc0de", "10105")
	})
	t.Run("iflytek: lang not enabled", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, map[string]string{"VOICE_IFLYTEK_LANG": "cantonese"}, nil)
		connectortest.RequireRefused(t, err, logs, "VOICE_IFLYTEK_LANG=cantonese is not enabled", "10110")
	})
	t.Run("iflytek down", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, map[string]string{"RESILIENCE_IFLYTEK_CHECK_MAX_ATTEMPTS": "1"},
			map[string]sim.Fault{"iflytek rtasr": {ErrorRatio: 1, Code: speechsim.FaultDown}})
		connectortest.RequireUnchecked(t, err, logs, "iflytek", "503")
	})
	t.Run("iflytek not checked when live transcription does not use it", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, map[string]string{"VOICE_ASR": "none", "VOICE_IFLYTEK_API_KEY": "not-the-api-key"}, nil)
		connectortest.RequireAccepted(t, err, logs, "aliyun")
		if strings.Contains(logs, "iflytek") {
			t.Errorf("iflytek checked with VOICE_ASR=none:\n%s", logs)
		}
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
