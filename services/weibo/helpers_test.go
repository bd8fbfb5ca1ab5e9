package weibo_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	wire "github.com/omnibus-dev/omnibus/pkg/wire/weibo"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	weibosim "github.com/omnibus-dev/omnibus/services/sandbox/weibo"
	"github.com/omnibus-dev/omnibus/services/weibo"
)

const (
	appSecret   = "weibo-app-secret-for-tests"
	accessToken = "2.00weiboAccessTokenForTests"
	account     = 1902538057
)

func quiet() *slog.Logger { return connectortest.Logger("WEIBO_TEST_LOG") }

// world is one test's JetStream, Weibo sandbox and hook endpoint, the connector behind it.
type world struct {
	bus     *bustest.Bundle
	env     *sim.Env
	sim     *weibosim.Sim
	apiBase string
	hooks   *connectortest.Hooks
	conf    map[string]string
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{bus: bustest.New(t, bus.WithLogger(quiet())), hooks: connectortest.NewHooks(t)}
	mux := http.NewServeMux()
	sandbox := httptest.NewServer(mux)
	t.Cleanup(sandbox.Close)
	w.env = sim.NewEnv(mux, w.hooks.URL+"/hooks", nil, 0, quiet())
	s, err := weibosim.New(w.env, weibosim.Config{AppSecret: appSecret, AccessToken: accessToken, AccountUID: account,
		RetryDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.sim = s
	w.apiBase = sandbox.URL + "/sandbox/weibo"
	w.conf = map[string]string{"WEIBO_APP_SECRET": appSecret, "WEIBO_ACCESS_TOKEN": accessToken, "WEIBO_API_BASE": w.apiBase}
	return w
}

// start runs a connector instance behind the world's hook server.
func (w *world) start(t testing.TB) {
	t.Helper()
	w.hooks.Start(t, connectortest.Instance{Service: weibo.Service(), Bus: w.bus.Connect(t, bus.WithLogger(quiet())),
		Env: w.conf, Probe: weibo.CallbackPath, Log: quiet()})
}

// signedPush is a push request as Weibo sends it: body, signed query at at with nonce.
func signedPush(t testing.TB, base, secret string, at time.Time, nonce string, body []byte) *http.Request {
	t.Helper()
	q := wire.SignQuery(secret, at, nonce, "")
	req, err := http.NewRequest(http.MethodPost, base+weibo.CallbackPath+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

type response = connectortest.Answer

func do(t *testing.T, req *http.Request) response { t.Helper(); return connectortest.Do(t, req) }

func pushBody(t testing.TB, p wire.Push) []byte {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (w *world) messages(t *testing.T) []event.Event {
	t.Helper()
	return w.bus.Events(t, bus.StreamIn, weibo.SubjectMessage+".>")
}

func (w *world) stored(t *testing.T) uint64 {
	t.Helper()
	return w.bus.StoredCount(t, bus.StreamIn, weibo.SubjectMessage+".>")
}

type received struct {
	Channel          string            `json:"channel"`
	ChannelMessageID string            `json:"channel_message_id"`
	From             map[string]string `json:"from"`
	Account          string            `json:"account"`
	Message          map[string]any    `json:"message"`
	SentAt           time.Time         `json:"sent_at"`
}

func decode[T any](t *testing.T, e event.Event) T { t.Helper(); return connectortest.Data[T](t, e) }

type status struct {
	MessageID       string `json:"message_id"`
	VendorMessageID string `json:"vendor_message_id"`
	Status          string `json:"status"`
	ErrorCode       string `json:"error_code"`
	Error           string `json:"error"`
}

func (w *world) sendText(t *testing.T, uid int64, text string) event.Event {
	t.Helper()
	return connectortest.SendText(t, w.bus.Client, weibo.SubjectSend, weibo.Channel, connector.Identity{Kind: weibo.IdentityKind, Value: strconv.FormatInt(uid, 10)}, text)
}

func (w *world) waitStatus(t *testing.T, id string) status {
	t.Helper()
	return decode[status](t, connectortest.WaitEvent(t, w.bus, bus.StreamIn, weibo.SubjectStatus+".>", "weibo:status:"+id))
}
