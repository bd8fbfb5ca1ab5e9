package kuaishou_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	wire "github.com/omnibus-dev/omnibus/pkg/wire/kuaishou"
	"github.com/omnibus-dev/omnibus/services/kuaishou"
	kuaishousim "github.com/omnibus-dev/omnibus/services/sandbox/kuaishou"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

const (
	appKey    = "ks_omnibus_test_app"
	appSecret = "kuaishou-app-secret-for-tests"
)

func quiet() *slog.Logger { return connectortest.Logger("KUAISHOU_TEST_LOG") }

// world is one test's JetStream, Kuaishou sandbox and hook endpoint, the connector behind it.
type world struct {
	bus   *bustest.Bundle
	sim   *kuaishousim.Sim
	hooks *connectortest.Hooks
	conf  map[string]string
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{bus: bustest.New(t, bus.WithLogger(quiet())), hooks: connectortest.NewHooks(t)}
	mux := http.NewServeMux()
	sandbox := httptest.NewServer(mux)
	t.Cleanup(sandbox.Close)
	env := sim.NewEnv(mux, w.hooks.URL+"/hooks", nil, 0, quiet())
	s, err := kuaishousim.New(env, kuaishousim.Config{AppKey: appKey, AppSecret: appSecret, RetryDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.sim = s
	w.conf = map[string]string{"KUAISHOU_APP_KEY": appKey, "KUAISHOU_APP_SECRET": appSecret}
	return w
}

// start runs a connector instance behind the world's hook endpoint.
func (w *world) start(t testing.TB) {
	t.Helper()
	w.hooks.Start(t, connectortest.Instance{Service: kuaishou.Service(), Bus: w.bus.Connect(t, bus.WithLogger(quiet())),
		Env: w.conf, Probe: kuaishou.WebhookPath, Log: quiet()})
}

// signed is an event request as Kuaishou sends it: body signed with secret.
func signed(t testing.TB, base, secret string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+kuaishou.WebhookPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(wire.SignHeader, wire.Sign(secret, body))
	return req
}

// body is the JSON of a message event carrying m.
func (w *world) body(t testing.TB, m any) []byte {
	t.Helper()
	e, err := w.sim.Envelope(kuaishousim.DefaultMessageEvent, m)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (w *world) stored(t *testing.T) uint64 {
	t.Helper()
	return w.bus.StoredCount(t, bus.StreamIn, kuaishou.SubjectMessage+".>")
}

type received struct {
	ChannelMessageID string            `json:"channel_message_id"`
	From             map[string]string `json:"from"`
	DisplayName      string            `json:"display_name"`
	Account          string            `json:"account"`
	Message          map[string]any    `json:"message"`
	SentAt           time.Time         `json:"sent_at"`
}

type status struct {
	Status    string `json:"status"`
	ErrorCode string `json:"error_code"`
	Error     string `json:"error"`
}

func (w *world) send(t *testing.T, openID, text string) event.Event {
	t.Helper()
	return connectortest.SendText(t, w.bus.Client, kuaishou.SubjectSend, kuaishou.Channel, connector.Identity{Kind: kuaishou.IdentityKind, Value: openID}, text)
}
