package douyin_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	wire "github.com/omnibus-dev/omnibus/pkg/wire/douyin"
	"github.com/omnibus-dev/omnibus/services/douyin"
	douyinsim "github.com/omnibus-dev/omnibus/services/sandbox/douyin"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

const (
	clientKey    = "awOmnibusTestClient"
	clientSecret = "douyin-client-secret-for-tests"
	accessToken  = "act.douyinAccessTokenForTests"
)

func quiet() *slog.Logger { return connectortest.Logger("DOUYIN_TEST_LOG") }

// world is one test's JetStream, Douyin sandbox and hook endpoint, the connector behind it.
type world struct {
	bus   *bustest.Bundle
	env   *sim.Env
	sim   *douyinsim.Sim
	hooks *connectortest.Hooks
	conf  map[string]string
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{bus: bustest.New(t, bus.WithLogger(quiet())), hooks: connectortest.NewHooks(t)}
	mux := http.NewServeMux()
	sandbox := httptest.NewServer(mux)
	t.Cleanup(sandbox.Close)
	w.env = sim.NewEnv(mux, w.hooks.URL+"/hooks", nil, 0, quiet())
	s, err := douyinsim.New(w.env, douyinsim.Config{ClientKey: clientKey, ClientSecret: clientSecret, AccessToken: accessToken,
		RetryDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.sim = s
	w.conf = map[string]string{"DOUYIN_CLIENT_KEY": clientKey, "DOUYIN_CLIENT_SECRET": clientSecret,
		"DOUYIN_ACCESS_TOKEN": accessToken, "DOUYIN_API_BASE": sandbox.URL + "/sandbox/douyin"}
	return w
}

// start runs a connector instance behind the world's hook endpoint.
func (w *world) start(t testing.TB) {
	t.Helper()
	w.hooks.Start(t, connectortest.Instance{Service: douyin.Service(), Bus: w.bus.Connect(t, bus.WithLogger(quiet())),
		Env: w.conf, Probe: douyin.WebhookPath, Log: quiet()})
}

// signed is an event request as Douyin sends it: body signed with secret.
func signed(t testing.TB, base, secret string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+douyin.WebhookPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(wire.SignatureHeader, wire.Sign(secret, body))
	req.Header.Set(wire.MsgIDHeader, "test-delivery")
	return req
}

// envelope is the JSON of an im_receive_msg of m from user.
func (w *world) envelope(t testing.TB, user string, m wire.Message) []byte {
	t.Helper()
	e, err := w.sim.Envelope(wire.EventReceiveMsg, user, m)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (w *world) messages(t *testing.T) []event.Event {
	t.Helper()
	return w.bus.Events(t, bus.StreamIn, douyin.SubjectMessage+".>")
}

func (w *world) stored(t *testing.T) uint64 {
	t.Helper()
	return w.bus.StoredCount(t, bus.StreamIn, douyin.SubjectMessage+".>")
}

type received struct {
	Channel          string            `json:"channel"`
	ChannelMessageID string            `json:"channel_message_id"`
	From             map[string]string `json:"from"`
	DisplayName      string            `json:"display_name"`
	Account          string            `json:"account"`
	Message          map[string]any    `json:"message"`
	SentAt           time.Time         `json:"sent_at"`
}

type status struct {
	MessageID       string `json:"message_id"`
	VendorMessageID string `json:"vendor_message_id"`
	Status          string `json:"status"`
	ErrorCode       string `json:"error_code"`
	Error           string `json:"error"`
}

func (w *world) sendText(t *testing.T, openID, text string) event.Event {
	t.Helper()
	return connectortest.SendText(t, w.bus.Client, douyin.SubjectSend, douyin.Channel, connector.Identity{Kind: douyin.IdentityKind, Value: openID}, text)
}

func (w *world) waitStatus(t *testing.T, id string) status {
	t.Helper()
	e := connectortest.WaitEvent(t, w.bus, bus.StreamIn, douyin.SubjectStatus+".>", "douyin:status:"+id)
	return connectortest.Data[status](t, e)
}

func httpBody(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }
