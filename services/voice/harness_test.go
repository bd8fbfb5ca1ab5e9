package voice_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/voice"
)

// testBundle is a running voice connector on an embedded JetStream.
type testBundle struct {
	bus     *bustest.Bundle
	sipAddr string // 127.0.0.1:port
	spool   string
	records string // the bucket directory
	env     map[string]string
	stop    func()
}

// freePort returns a port free for both UDP and TCP on 127.0.0.1 at the time of the call.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		_ = u.Close()
		if err == nil {
			_ = l.Close()
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// rtpRange returns a 20-port range unlikely to collide with parallel tests.
func rtpRange(t *testing.T) string {
	p := freePort(t)
	p = max(p-p%2, 10000)
	if p > 65000 {
		p = 30000
	}
	return strconv.Itoa(p) + "-" + strconv.Itoa(p+19)
}

func quiet() *slog.Logger {
	if os.Getenv("VOICE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// start runs the connector; extra overrides the test defaults. b may be nil (a new bus) or the
// bus of an earlier run (a restart).
func start(t *testing.T, b *bustest.Bundle, extra map[string]string) *testBundle {
	t.Helper()
	return startService(t, b, extra, voice.Service())
}

// startService is start with the connector svc (voice.ServiceWithClock).
func startService(t *testing.T, b *bustest.Bundle, extra map[string]string, svc service.Service) *testBundle {
	t.Helper()
	if b == nil {
		b = bustest.New(t, bus.WithLogger(quiet()))
	}
	dir := t.TempDir()
	tb := &testBundle{bus: b, spool: filepath.Join(dir, "spool"), records: filepath.Join(dir, "recordings")}
	tb.sipAddr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	tb.env = map[string]string{
		"VOICE_SIP_LISTEN": tb.sipAddr, "VOICE_RTP_PORTS": rtpRange(t),
		"VOICE_SPOOL_DIR": tb.spool, "VOICE_RECORDING_BUCKET": "file://" + tb.records, "VOICE_MEDIA_TIMEOUT": "10s",
	}
	for k, v := range extra {
		tb.env[k] = v
	}
	tb.spool, tb.records = tb.env["VOICE_SPOOL_DIR"], tb.env["VOICE_RECORDING_BUCKET"][len("file://"):]
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- svc.Run(ctx, service.Deps{Bus: b.Client, Mux: http.NewServeMux(), Log: quiet(),
			Health: service.NewHealth(), Started: func() { close(started) },
			Env: func(k string) (string, bool) { v, ok := tb.env[k]; return v, ok }})
	}()
	select {
	case <-started:
	case err := <-done:
		cancel()
		t.Fatalf("voice exited during setup: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("voice did not start in 10s")
	}
	stopped := false
	tb.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("voice stopped with %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("voice did not stop within 20s")
		}
	}
	t.Cleanup(tb.stop)
	return tb
}

// events returns the call events stored so far, by type.
func (tb *testBundle) events(t *testing.T) map[string][]event.Event {
	t.Helper()
	out := map[string][]event.Event{}
	for _, e := range tb.bus.Events(t, bus.StreamIn, voice.SubjectCall+".>") {
		out[e.Type()] = append(out[e.Type()], e)
	}
	return out
}

// waitEnded waits until n ended events are stored and returns all call events.
func (tb *testBundle) waitEnded(t *testing.T, n int, timeout time.Duration) map[string][]event.Event {
	t.Helper()
	var got map[string][]event.Event
	bustest.WaitFor(t, timeout, "call ended events", func() bool {
		got = tb.events(t)
		return len(got[voice.TypeCallEnded]) >= n
	})
	return got
}

type endedData struct {
	CallID     string `json:"call_id"`
	From       struct{ Kind, Value string }
	To         struct{ Kind, Value string }
	HangupSide string `json:"hangup_side"`
	Reason     string `json:"reason"`
	TalkMS     int64  `json:"talk_ms"`
	DTMF       string `json:"dtmf"`
	Media      *struct {
		Packets, Lost, Late, Invalid, Foreign int
	} `json:"media"`
	AnsweredAt string `json:"answered_at"`
	Transcript string `json:"transcript"`
	Recording  *struct {
		Legs []struct {
			Leg        string `json:"leg"`
			URL        string `json:"url"`
			DurationMS int64  `json:"duration_ms"`
			Bytes      int64  `json:"bytes"`
		} `json:"legs"`
	} `json:"recording"`
}

func ended(t *testing.T, e event.Event) endedData {
	t.Helper()
	var d endedData
	if err := event.DecodeData(e, &d); err != nil {
		t.Fatal(err)
	}
	return d
}
