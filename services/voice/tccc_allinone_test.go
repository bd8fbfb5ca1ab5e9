package voice_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/sandbox"
	"github.com/omnibus-dev/omnibus/services/voice"
)

// The all-in-one's wiring: the sandbox and the voice connector on one server, configured only
// by sandbox.ConnectorEnv (what `go run ./services/omnibus` overlays). The simulated TCCC takes
// calls and the voice connector publishes them, lost pushes included, with their transcripts.
func TestTCCCAllInOneWiring(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	env := sandbox.ConnectorEnv(srv.URL)
	for k, v := range map[string]string{
		"SANDBOX_TCCC_CALL_INTERVAL": "1s", "SANDBOX_CALL_INTERVAL": "0", "SANDBOX_SCENARIO_INTERVAL": "0", "SANDBOX_CUSTOMERS": "5",
		"VOICE_TCCC_RECONCILE_INTERVAL": "1s", "VOICE_TCCC_WORK_INTERVAL": "200ms", "VOICE_ASR": "none",
		"VOICE_SIP_LISTEN": "127.0.0.1:" + strconv.Itoa(freePort(t)), "VOICE_RTP_PORTS": rtpRange(t),
		"VOICE_SPOOL_DIR": filepath.Join(dir, "spool"), "VOICE_RECORDING_BUCKET": "file://" + filepath.Join(dir, "rec"),
	} {
		env[k] = v
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	b := bustest.New(t, bus.WithLogger(quiet()))
	ctx, cancel := context.WithCancel(context.Background())
	var done []chan error
	for _, s := range []service.Service{sandbox.Service(), voice.Service()} {
		started, ch := make(chan struct{}), make(chan error, 1)
		done = append(done, ch)
		go func() {
			ch <- s.Run(ctx, service.Deps{Bus: b.Client, Mux: mux, Log: quiet(), Health: service.NewHealth(), Env: lookup,
				Started: func() { close(started) }})
		}()
		select {
		case <-started:
		case err := <-ch:
			cancel()
			t.Fatalf("%s exited during setup: %v", s.Name, err)
		case <-time.After(15 * time.Second):
			cancel()
			t.Fatalf("%s did not start", s.Name)
		}
	}
	t.Cleanup(func() {
		cancel()
		for _, ch := range done {
			select {
			case err := <-ch:
				if err != nil {
					t.Errorf("a service stopped with %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("a service did not stop within 20s")
			}
		}
	})
	// Calls 1-3 are pushed, call 4's CDR push is lost (found by reconciliation).
	bustest.WaitFor(t, 40*time.Second, "four TCCC calls ended and a transcript", func() bool {
		ended := 0
		for _, e := range b.Events(t, bus.StreamIn, voice.SubjectCall+".>") {
			var d struct{ Provider string }
			if e.Type() == voice.TypeCallEnded && event.DecodeData(e, &d) == nil && d.Provider == "tccc" {
				ended++
			}
		}
		return ended >= 4 && b.StoredCount(t, bus.StreamIn, voice.SubjectTranscript+".>") > 0
	})
}
