package douyin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/douyin"
	"github.com/omnibus-dev/omnibus/services/sandbox/douyin"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

const (
	clientKey = "awSandboxTestKey"
	secret    = "sandbox-test-client-secret"
	token     = "act.sandboxTestToken"
)

type bundle struct {
	sim    *douyin.Sim
	env    *sim.Env
	api    string
	mu     sync.Mutex
	msgIDs []string
	bodies []wire.Envelope
	answer int // what the fake connector answers
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{answer: http.StatusOK}
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !wire.Verify(secret, body, r.Header.Get(wire.SignatureHeader)) || r.URL.Path != "/hooks/douyin/webhook" {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		e, err := wire.ParseEnvelope(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if e.Event == wire.EventVerifyWebhook {
			ch, _ := wire.ParseChallenge(e)
			_ = json.NewEncoder(w).Encode(ch)
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		b.msgIDs = append(b.msgIDs, r.Header.Get(wire.MsgIDHeader))
		b.bodies = append(b.bodies, e)
		w.WriteHeader(b.answer)
	}))
	t.Cleanup(hooks.Close)
	mux := http.NewServeMux()
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close)
	b.env = sim.NewEnv(mux, hooks.URL+"/hooks", nil, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s, err := douyin.New(b.env, douyin.Config{ClientKey: clientKey, ClientSecret: secret, AccessToken: token, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.sim, b.api = s, api.URL+"/sandbox/douyin"+wire.SendPath
	return b
}

func (b *bundle) send(t *testing.T, tok, openID string, req wire.SendRequest) (int, wire.Response) {
	t.Helper()
	body, _ := json.Marshal(req)
	r, _ := http.NewRequest(http.MethodPost, b.api+"?open_id="+openID, bytes.NewReader(body))
	r.Header.Set(wire.TokenHeader, tok)
	r.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out wire.Response
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestEventsSignedAndRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := sim.Population(1, 7)[0]
	if err := b.sim.VerifyWebhook(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.sim.Write(context.Background(), c, "你好"); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	got := b.bodies[0]
	b.answer = http.StatusServiceUnavailable
	b.mu.Unlock()
	m, err := wire.ParseMessage(got)
	if err != nil || got.Event != wire.EventReceiveMsg || got.FromUserID != douyin.OpenID(c) || got.ToUserID != b.sim.Account() ||
		got.ClientKey != clientKey || m.Text != "你好" || got.Content[0] != '"' {
		t.Errorf("event %+v (%+v, %v): want a text from %s, content a JSON string", got, m, err, douyin.OpenID(c))
	}
	if err := b.sim.Write(context.Background(), c, "在吗"); err == nil {
		t.Error("an event the connector refused reported success")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.msgIDs) != 5 || b.msgIDs[1] != b.msgIDs[4] || b.msgIDs[0] == b.msgIDs[1] {
		t.Errorf("Msg-Ids %v, want 1 + 4 attempts of the second event under one Msg-Id", b.msgIDs)
	}
}

func TestReplyChecksTokenMessageWindowAndQuota(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := sim.Population(2, 7)[1]
	user := douyin.OpenID(c)
	m := b.sim.Text(user, "你好")
	if err := b.sim.Receive(context.Background(), user, m); err != nil {
		t.Fatal(err)
	}
	reply := func(text string) wire.SendRequest {
		return wire.SendRequest{MsgID: string(m.ServerMessageID), ConversationID: m.ConversationShortID, ToUserID: user,
			Scene: wire.SceneReply, Content: wire.SendContent{MsgType: wire.MsgTypeText, Text: &wire.TextBody{Text: text}}}
	}
	other := reply("您好")
	other.ConversationID = "@other=="
	stranger := reply("您好")
	stranger.ToUserID = "_000someoneelse"
	tests := []struct {
		name, tok, account string
		req                wire.SendRequest
		code               int
	}{
		{"other token", "act.other", b.sim.Account(), reply("您好"), wire.CodeInvalidToken},
		{"other account", token, "_000other", reply("您好"), wire.CodeParam},
		{"other conversation", token, b.sim.Account(), other, wire.CodeParam},
		{"not the sender", token, b.sim.Account(), stranger, wire.CodeParam},
		{"too long", token, b.sim.Account(), reply(strings.Repeat("好", 1001)), wire.CodeParam},
	}
	for _, tc := range tests {
		if st, r := b.send(t, tc.tok, tc.account, tc.req); st != http.StatusOK || r.Data.ErrorCode != tc.code {
			t.Errorf("%s: %d %+v, want 200 with error_code %d", tc.name, st, r, tc.code)
		}
	}
	for i := range wire.ReplyQuota {
		if _, r := b.send(t, token, b.sim.Account(), reply("您好")); r.Data.ErrorCode != 0 || r.Data.MsgID == "" {
			t.Fatalf("reply %d within the quota: %+v", i+1, r)
		}
	}
	if _, r := b.send(t, token, b.sim.Account(), reply("您好")); r.Data.ErrorCode != wire.CodeQuota {
		t.Errorf("reply %d: %+v, want %d", wire.ReplyQuota+1, r, wire.CodeQuota)
	}
	// The user writes again: the quota starts over, on the new message.
	m = b.sim.Text(user, "还在吗")
	if err := b.sim.Receive(context.Background(), user, m); err != nil {
		t.Fatal(err)
	}
	if _, r := b.send(t, token, b.sim.Account(), reply("在的")); r.Data.ErrorCode != 0 {
		t.Errorf("reply after the user wrote again: %+v", r)
	}
	// A message older than the window.
	old := b.sim.Text("_000olduser", "上个月的消息")
	old.CreateTime = time.Now().Add(-25 * time.Hour).UnixMilli()
	if err := b.sim.Receive(context.Background(), "_000olduser", old); err != nil {
		t.Fatal(err)
	}
	late := wire.SendRequest{MsgID: string(old.ServerMessageID), ConversationID: old.ConversationShortID, ToUserID: "_000olduser",
		Scene: wire.SceneReply, Content: wire.SendContent{MsgType: wire.MsgTypeText, Text: &wire.TextBody{Text: "抱歉"}}}
	if _, r := b.send(t, token, b.sim.Account(), late); r.Data.ErrorCode != wire.CodeOutsideWindow {
		t.Errorf("reply after 25 h: %+v, want %d", r, wire.CodeOutsideWindow)
	}
}

func TestInjectedFaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if err := b.env.SetFault(douyin.Vendor+" "+douyin.OpSend, sim.Fault{ErrorRatio: 1, Code: "429:2"}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(b.api, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r wire.Response
	_ = json.NewDecoder(resp.Body).Decode(&r)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" || r.Data.ErrorCode != wire.CodeRateLimit {
		t.Errorf("injected 429: %d %s %+v", resp.StatusCode, resp.Header.Get("Retry-After"), r)
	}
}
