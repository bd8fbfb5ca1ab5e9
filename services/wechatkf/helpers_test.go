package wechatkf_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/wecom"
	"github.com/omnibus-dev/omnibus/services/wechatkf"
)

const (
	corpID   = "wwOmnibusTestCorp01"
	secret   = "kf-app-secret-for-tests"
	cbToken  = "OmnibusCallbackToken1"
	aesKey   = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	sceneKey = "scene-key-shared-with-the-app"
)

func quiet() *slog.Logger {
	if os.Getenv("WECHATKF_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// world is one test's JetStream, WeCom sandbox and hook endpoint. Connector instances come and
// go (start/stop) behind the one hook URL, which answers 503 while no instance runs, as a
// stopped connector behind a load balancer does.
type world struct {
	bus     *bustest.Bundle
	env     *sim.Env
	sim     *wecom.Sim
	apiBase string
	hooks   *httptest.Server
	current atomic.Pointer[http.ServeMux]
	conf    map[string]string
}

func newWorld(t *testing.T, mod func(*wecom.Config)) *world {
	t.Helper()
	w := &world{bus: bustest.New(t, bus.WithLogger(quiet()))}
	w.hooks = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mux := w.current.Load()
		if mux == nil {
			http.Error(rw, `{"error":"connector down"}`, http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(rw, r)
	}))
	t.Cleanup(w.hooks.Close)
	mux := http.NewServeMux()
	sandbox := httptest.NewServer(mux)
	t.Cleanup(sandbox.Close)
	w.env = sim.NewEnv(mux, w.hooks.URL+"/hooks", nil, 0, quiet())
	cfg := wecom.Config{CorpID: corpID, Secret: secret, Token: cbToken, EncodingAESKey: aesKey, SceneKey: sceneKey,
		RetryDelay: 5 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	s, err := wecom.New(w.env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.sim = s
	w.apiBase = sandbox.URL + "/sandbox/wecom"
	w.conf = map[string]string{
		"WECHATKF_CORP_ID": corpID, "WECHATKF_SECRET": secret, "WECHATKF_TOKEN": cbToken,
		"WECHATKF_AES_KEY": aesKey, "WECHATKF_SCENE_KEY": sceneKey, "WECHATKF_API_BASE": w.apiBase,
	}
	return w
}

// start runs a connector instance on its own NATS connection (another process, as far as the
// bus is concerned) and returns its stop function.
func (w *world) start(t *testing.T, extra map[string]string) (stop func()) {
	t.Helper()
	env := map[string]string{}
	for k, v := range w.conf {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	client := w.bus.Connect(t, bus.WithLogger(quiet()))
	mux := http.NewServeMux()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- wechatkf.Service().Run(ctx, service.Deps{Bus: client, Mux: mux, Log: quiet(), Health: service.NewHealth(),
			Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	}()
	bustest.WaitFor(t, 10*time.Second, "callback route mounted", func() bool {
		select {
		case err := <-done:
			t.Fatalf("connector exited during setup: %v", err)
		default:
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, wechatkf.CallbackPath, strings.NewReader("")))
		return rec.Code != http.StatusNotFound
	})
	w.current.Store(mux)
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		w.current.CompareAndSwap(mux, nil)
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

// testClient bounds every test request: a handler that hangs fails the test instead.
var testClient = &http.Client{Timeout: 20 * time.Second}

type response struct {
	Status int
	Body   string
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, string(b)}
}

// callback is the simulator's next signed callback, aimed at the world's hook server.
func (w *world) callback(t *testing.T) *http.Request {
	t.Helper()
	req, err := w.sim.CallbackRequest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func (w *world) messages(t *testing.T) []event.Event {
	t.Helper()
	return w.bus.Events(t, bus.StreamIn, wechatkf.SubjectMessage+".>")
}

func (w *world) statuses(t *testing.T) []event.Event {
	t.Helper()
	return w.bus.Events(t, bus.StreamIn, wechatkf.SubjectStatus+".>")
}

func (w *world) waitMessages(t *testing.T, n int) []event.Event {
	t.Helper()
	bustest.WaitFor(t, 20*time.Second, "inbound events", func() bool {
		return w.bus.StoredCount(t, bus.StreamIn, wechatkf.SubjectMessage+".>") >= uint64(n)
	})
	return w.messages(t)
}

type received struct {
	Channel          string              `json:"channel"`
	ChannelMessageID string              `json:"channel_message_id"`
	From             map[string]string   `json:"from"`
	Identities       []map[string]string `json:"identities"`
	Account          string              `json:"account"`
	Message          map[string]any      `json:"message"`
	SentAt           time.Time           `json:"sent_at"`
}

func decodeReceived(t *testing.T, e event.Event) received {
	t.Helper()
	var r received
	if err := json.Unmarshal(e.Data(), &r); err != nil {
		t.Fatalf("event %s: %v", e.ID(), err)
	}
	return r
}

type status struct {
	MessageID       string            `json:"message_id"`
	VendorMessageID string            `json:"vendor_message_id"`
	Status          string            `json:"status"`
	ErrorCode       string            `json:"error_code"`
	Error           string            `json:"error"`
	To              map[string]string `json:"to"`
	Message         map[string]any    `json:"message"`
	ConversationID  string            `json:"conversation_id"`
}

func decodeStatus(t *testing.T, e event.Event) status {
	t.Helper()
	var s status
	if err := json.Unmarshal(e.Data(), &s); err != nil {
		t.Fatalf("event %s: %v", e.ID(), err)
	}
	return s
}

// sendCommand publishes an outbound command and returns it.
func (w *world) sendCommand(t *testing.T, to map[string]string, message map[string]any, extra map[string]any) event.Event {
	t.Helper()
	data := map[string]any{"channel": "wechatkf", "to": to, "message": message}
	for k, v := range extra {
		data[k] = v
	}
	e, err := event.New(wechatkf.TypeSend, "/desk", data)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.bus.Client.Publish(context.Background(), wechatkf.SubjectSend, e); err != nil {
		t.Fatal(err)
	}
	return e
}

// waitStatus waits for the status event of command id.
func (w *world) waitStatus(t *testing.T, id string) (event.Event, status) {
	t.Helper()
	var found event.Event
	bustest.WaitFor(t, 30*time.Second, "status of "+id, func() bool {
		if w.bus.StoredCount(t, bus.StreamIn, wechatkf.SubjectStatus+".>") == 0 {
			return false
		}
		for _, e := range w.statuses(t) {
			if e.ID() == "wechatkf:status:"+id {
				found = e
				return true
			}
		}
		return false
	})
	return found, decodeStatus(t, found)
}

func stats(w *world, op string) sim.Stats { return w.env.Stats()["wecom "+op] }

func serviceDeps(c *bus.Client, mux *http.ServeMux, env map[string]string) service.Deps {
	return service.Deps{Bus: c, Mux: mux, Log: quiet(), Health: service.NewHealth(),
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
}
