package wechatkf_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
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
	hooks   *connectortest.Hooks
	conf    map[string]string
}

func newWorld(t *testing.T, mod func(*wecom.Config)) *world {
	t.Helper()
	w := &world{bus: bustest.New(t, bus.WithLogger(quiet())), hooks: connectortest.NewHooks(t)}
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
	return w.hooks.Start(t, connectortest.Instance{Service: wechatkf.Service(), Bus: w.bus.Connect(t, bus.WithLogger(quiet())),
		Env: env, Probe: wechatkf.CallbackPath, Log: quiet()})
}

type response = connectortest.Answer

func do(t *testing.T, req *http.Request) response { t.Helper(); return connectortest.Do(t, req) }

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
	return connectortest.Data[received](t, e)
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
	return connectortest.Data[status](t, e)
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
	found := connectortest.WaitEvent(t, w.bus, bus.StreamIn, wechatkf.SubjectStatus+".>", "wechatkf:status:"+id)
	return found, decodeStatus(t, found)
}

func stats(w *world, op string) sim.Stats { return w.env.Stats()["wecom "+op] }

func serviceDeps(c *bus.Client, mux *http.ServeMux, env map[string]string) service.Deps {
	return service.Deps{Bus: c, Mux: mux, Log: quiet(), Health: service.NewHealth(),
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
}
