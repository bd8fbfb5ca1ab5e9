package weibo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/service"
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

func quiet() *slog.Logger {
	if os.Getenv("WEIBO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// world is one test's JetStream, Weibo sandbox and hook endpoint, the connector behind it.
type world struct {
	bus     *bustest.Bundle
	env     *sim.Env
	sim     *weibosim.Sim
	apiBase string
	hooks   *httptest.Server
	current atomic.Pointer[http.ServeMux]
	conf    map[string]string
}

func newWorld(t testing.TB) *world {
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
	client := w.bus.Connect(t, bus.WithLogger(quiet()))
	mux := http.NewServeMux()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- weibo.Service().Run(ctx, service.Deps{Bus: client, Mux: mux, Log: quiet(), Health: service.NewHealth(),
			Env: func(k string) (string, bool) { v, ok := w.conf[k]; return v, ok }})
	}()
	bustest.WaitFor(t, 10*time.Second, "callback route mounted", func() bool {
		select {
		case err := <-done:
			t.Fatalf("connector exited during setup: %v", err)
		default:
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, weibo.CallbackPath, strings.NewReader("")))
		return rec.Code != http.StatusNotFound
	})
	w.current.Store(mux)
	t.Cleanup(func() {
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
	})
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

func decode[T any](t *testing.T, e event.Event) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(e.Data(), &v); err != nil {
		t.Fatalf("event %s: %v", e.ID(), err)
	}
	return v
}

type status struct {
	MessageID       string `json:"message_id"`
	VendorMessageID string `json:"vendor_message_id"`
	Status          string `json:"status"`
	ErrorCode       string `json:"error_code"`
	Error           string `json:"error"`
}

func (w *world) sendText(t *testing.T, uid int64, text string) event.Event {
	t.Helper()
	e, err := event.New(weibo.TypeSend, "/desk", map[string]any{"channel": "weibo",
		"to": map[string]string{"kind": "weibo_uid", "value": strconv.FormatInt(uid, 10)}, "message": map[string]any{"type": "text", "text": text}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.bus.Client.Publish(context.Background(), weibo.SubjectSend, e); err != nil {
		t.Fatal(err)
	}
	return e
}

func (w *world) waitStatus(t *testing.T, id string) status {
	t.Helper()
	var found event.Event
	bustest.WaitFor(t, 30*time.Second, "status of "+id, func() bool {
		if w.bus.StoredCount(t, bus.StreamIn, weibo.SubjectStatus+".>") == 0 {
			return false
		}
		for _, e := range w.bus.Events(t, bus.StreamIn, weibo.SubjectStatus+".>") {
			if e.ID() == "weibo:status:"+id {
				found = e
				return true
			}
		}
		return false
	})
	return decode[status](t, found)
}
