package connectortest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Hooks is a connector test's vendor-facing endpoint: an HTTP server, at URL, that forwards every
// request to the connector instance currently running (Start) and answers 503 while none runs,
// as a stopped connector behind a load balancer does. Instances come and go behind the one URL,
// so a test can restart a connector, or hand its traffic to a second replica, while a simulated
// vendor keeps pushing to the same address.
type Hooks struct {
	// URL is the server's base URL: a vendor pushes to URL + "/hooks/<connector>/...".
	URL     string
	current atomic.Pointer[http.ServeMux]
}

// NewHooks starts the endpoint; it closes when the test ends.
func NewHooks(t testing.TB) *Hooks {
	t.Helper()
	h := &Hooks{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux := h.current.Load()
		if mux == nil {
			http.Error(w, `{"error":"connector down"}`, http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// Instance is one connector instance for Hooks.Start.
type Instance struct {
	// Service is the connector (connector.Define).
	Service service.Service
	// Bus is the instance's own connection (bustest.Bundle.Connect: another process, as far
	// as the bus is concerned).
	Bus *bus.Client
	// Env configures it.
	Env map[string]string
	// Probe is a webhook path the connector mounts (e.g. "/hooks/weibo/callback"): the instance
	// takes the traffic once an empty POST there is no longer 404.
	Probe string
	// Log, default discarding.
	Log *slog.Logger
}

// Start runs in behind h and returns its stop function, also run when the test ends. The test
// fails if the connector exits during setup, returns an error once cancelled, or does not stop
// within 15s.
func (h *Hooks) Start(t testing.TB, in Instance) (stop func()) {
	t.Helper()
	log := in.Log
	if log == nil {
		log = quiet()
	}
	env := make(map[string]string, len(in.Env))
	for k, v := range in.Env {
		env[k] = v
	}
	mux := http.NewServeMux()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- in.Service.Run(ctx, service.Deps{Bus: in.Bus, Mux: mux, Log: log, Health: service.NewHealth(),
			Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	}()
	bustest.WaitFor(t, 10*time.Second, in.Probe+" mounted", func() bool {
		select {
		case err := <-done:
			t.Fatalf("connector exited during setup: %v", err)
		default:
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, in.Probe, strings.NewReader("")))
		return rec.Code != http.StatusNotFound
	})
	h.current.Store(mux)
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		h.current.CompareAndSwap(mux, nil)
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("connector Run returned %v after cancellation", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("connector did not stop within 15s")
		}
	}
	t.Cleanup(stop)
	return stop
}

// Client bounds every test request: a handler that hangs fails the test instead.
var Client = &http.Client{Timeout: 20 * time.Second}

// Answer is a webhook's answer as Do read it.
type Answer struct {
	Status int
	Body   string
}

// Do sends req with Client and reads the answer; a transport error fails the test.
func Do(t testing.TB, req *http.Request) Answer {
	t.Helper()
	resp, err := Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Answer{resp.StatusCode, string(b)}
}

// Data decodes e's data into a T; an undecodable event fails the test.
func Data[T any](t testing.TB, e event.Event) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(e.Data(), &v); err != nil {
		t.Fatalf("event %s: %v", e.ID(), err)
	}
	return v
}

// WaitEvent waits (up to 30s) for the event with id on stream under filter and returns it.
func WaitEvent(t testing.TB, b *bustest.Bundle, stream, filter, id string) event.Event {
	t.Helper()
	var found event.Event
	bustest.WaitFor(t, 30*time.Second, "event "+id, func() bool {
		if b.StoredCount(t, stream, filter) == 0 {
			return false
		}
		for _, e := range b.Events(t, stream, filter) {
			if e.ID() == id {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// Measure runs one(n) b.N times from workers goroutines, n counting up from 1 across the run,
// and reports name_msgs/s, name_p50_ms and name_p99_ms: the webhook benchmarks' measure of a
// connector's pushes against the bare publish of the same events in the same run. An error
// fails the benchmark.
func Measure(b *testing.B, workers int, name string, one func(n int64) error) {
	b.Helper()
	lat := make([]time.Duration, b.N)
	var next, seq atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := one(seq.Add(1)); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/el.Seconds(), name+"_msgs/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, name+"_p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, name+"_p99_ms")
}

// Logger is a connector test's logger: discarding, or debug to stderr when the environment
// variable env (e.g. "DOUYIN_TEST_LOG") is set.
func Logger(env string) *slog.Logger {
	if os.Getenv(env) != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return quiet()
}

// SendText publishes, on subject, a send command (omni.channel.message.send.requested from
// /desk) of text to the customer identity to on channel, and returns it.
func SendText(t testing.TB, p bus.Publisher, subject, channel string, to connector.Identity, text string) event.Event {
	t.Helper()
	e, err := event.New(schemas.TypeChannelMessageSendRequested, "/desk", map[string]any{"channel": channel,
		"to": to, "message": map[string]any{"type": "text", "text": text}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), subject, e); err != nil {
		t.Fatal(err)
	}
	return e
}

// AddSeeds adds every file matching glob (e.g. "testdata/*.json", real-shaped vendor bodies) to
// f's seed corpus; no match fails the fuzz test.
func AddSeeds(f *testing.F, glob string) {
	f.Helper()
	seeds, err := filepath.Glob(glob)
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in %s: %v", glob, err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// BarePublish is the reference leg of a webhook benchmark (Measure): it publishes, on subject, a
// minimal omni.channel.message.received of channel from a kind identity, id bench:<n>, straight
// to JetStream, as the connector's push leg would after decoding.
func BarePublish(p bus.Publisher, subject, channel, kind string) func(n int64) error {
	return func(n int64) error {
		id := strconv.FormatInt(n, 10)
		e, err := event.New(schemas.TypeChannelMessageReceived, "/connectors/"+channel, map[string]any{"channel": channel, "channel_message_id": id,
			"from": map[string]string{"kind": kind, "value": "bare" + id}, "message": map[string]any{"type": "text", "text": "x"},
			"sent_at": time.Now().UTC()}, event.WithID("bench:"+id), event.WithPartitionKey(kind+":bare"+strconv.FormatInt(n%5000, 10)))
		if err != nil {
			return err
		}
		return p.Publish(context.Background(), subject, e)
	}
}

// PostOK sends req with Client and wants a 200: the push leg of a webhook benchmark.
func PostOK(req *http.Request) error {
	resp, err := Client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", req.URL.Path, resp.StatusCode)
	}
	return nil
}
