package weibo_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/weibo"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/weibo"
)

const (
	secret = "sandbox-test-secret"
	token  = "2.00sandboxTestToken"
)

type bundle struct {
	sim    *weibo.Sim
	env    *sim.Env
	api    string
	mu     sync.Mutex
	pushes []url.Values
	bodies []wire.Push
	answer int // what the fake connector answers
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{answer: http.StatusOK}
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if !wire.Verify(secret, q.Get("timestamp"), q.Get("nonce"), q.Get("signature")) || r.URL.Path != "/hooks/weibo/callback" {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, q.Get("echostr"))
			return
		}
		body, _ := io.ReadAll(r.Body)
		p, _, err := wire.ParsePush(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		b.pushes = append(b.pushes, q)
		b.bodies = append(b.bodies, p)
		w.WriteHeader(b.answer)
	}))
	t.Cleanup(hooks.Close)
	mux := http.NewServeMux()
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close)
	b.env = sim.NewEnv(mux, hooks.URL+"/hooks", nil, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s, err := weibo.New(b.env, weibo.Config{AppSecret: secret, AccessToken: token, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.sim, b.api = s, api.URL+"/sandbox/weibo"+wire.ReplyPath
	return b
}

func (b *bundle) reply(t *testing.T, form url.Values) (int, wire.Error) {
	t.Helper()
	resp, err := http.PostForm(b.api, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e wire.Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e
}

func TestPushSignedAndRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := sim.Population(1, 7)[0]
	if err := b.sim.VerifyURL(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.sim.Write(context.Background(), c, "你好"); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	got := b.bodies[0]
	ts := b.pushes[0].Get("timestamp")
	b.answer = http.StatusServiceUnavailable
	b.mu.Unlock()
	if got.SenderID != weibo.UID(c) || got.Text != "你好" || got.Type != wire.TypeText || len(ts) != 13 {
		t.Errorf("push %+v at %s: want a text from %d, timestamp in ms", got, ts, weibo.UID(c))
	}
	if err := b.sim.Write(context.Background(), c, "在吗"); err == nil {
		t.Error("a push the connector refused reported success")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pushes) != 4 || b.pushes[1].Get("nonce") == b.pushes[2].Get("nonce") && b.pushes[2].Get("timestamp") == b.pushes[1].Get("timestamp") {
		t.Errorf("%d pushes, want 1 + 3 attempts each signed afresh", len(b.pushes))
	}
}

func TestReplyChecksTokenFormAndWindow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := sim.Population(2, 7)[1]
	uid := weibo.UID(c)
	form := func(tok, text string, to int64) url.Values {
		data, _ := json.Marshal(wire.TextData{Text: text})
		return wire.Reply{AccessToken: tok, ReceiverID: to, Type: wire.TypeText, Data: data}.Form()
	}
	if st, e := b.reply(t, form(token, "您好", uid)); st != http.StatusBadRequest || e.ErrorCode != wire.CodeOutsideWindow {
		t.Errorf("reply before the fan wrote: %d %+v", st, e)
	}
	if err := b.sim.Write(context.Background(), c, "你好"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		code   int
	}{
		{"other token", form("2.00other", "您好", uid), http.StatusUnauthorized, wire.CodeInvalidToken},
		{"too long", form(token, strings.Repeat("好", 300), uid), http.StatusBadRequest, wire.CodeParam},
		{"no receiver", url.Values{"access_token": {token}, "type": {"text"}, "data": {`{"text":"x"}`}}, http.StatusBadRequest, wire.CodeParam},
		{"within the window", form(token, "您好", uid), http.StatusOK, 0},
	}
	for _, tc := range tests {
		if st, e := b.reply(t, tc.form); st != tc.status || e.ErrorCode != tc.code {
			t.Errorf("%s: %d %+v, want %d %d", tc.name, st, e, tc.status, tc.code)
		}
	}
	if r := b.sim.Replies(); len(r) == 0 || r[len(r)-1].To != strconv.FormatInt(uid, 10) || r[len(r)-1].Error != "" {
		t.Errorf("records %+v", r)
	}
	// An unfollow closes the window.
	if err := b.sim.Push(context.Background(), wire.Push{Type: wire.TypeEvent, ReceiverID: 1902538057, SenderID: uid,
		CreatedAt: time.Now().Format(wire.CreatedAtLayout), Data: wire.Data{Subtype: wire.EventUnfollow}}); err != nil {
		t.Fatal(err)
	}
	if st, e := b.reply(t, form(token, "您好", uid)); e.ErrorCode != wire.CodeOutsideWindow {
		t.Errorf("reply after an unfollow: %d %+v", st, e)
	}
}

func TestInjectedFaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if err := b.env.SetFault(weibo.Vendor+" "+weibo.OpReply, sim.Fault{ErrorRatio: 1, Code: "429:2"}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(b.api, url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e wire.Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" || e.ErrorCode != wire.CodeRateLimit {
		t.Errorf("injected 429: %d %s %+v", resp.StatusCode, resp.Header.Get("Retry-After"), e)
	}
}
