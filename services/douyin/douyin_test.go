package douyin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
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

func TestConformance(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	sandbox := httptest.NewServer(mux)
	t.Cleanup(sandbox.Close)
	env := sim.NewEnv(mux, "", nil, 0, quiet())
	s, err := douyinsim.New(env, douyinsim.Config{ClientKey: clientKey, ClientSecret: clientSecret, AccessToken: accessToken})
	if err != nil {
		t.Fatal(err)
	}
	const user = "_000conformanceUser"
	createdAt := time.Now().Add(-time.Minute).UnixMilli()
	inbound := func(t *testing.T, n int, secret string) *http.Request {
		m := wire.Message{ConversationShortID: "@conv" + strconv.Itoa(n), ServerMessageID: wire.ID(strconv.Itoa(7_100_000_000 + n)),
			ConversationType: 1, CreateTime: createdAt, MessageType: wire.TypeText, Text: fmt.Sprintf("你好 %d", n)}
		e, err := s.Envelope(wire.EventReceiveMsg, "_000user"+strconv.Itoa(n), m)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(e)
		return signed(t, "http://connector", secret, body)
	}
	connectortest.Run(t, connectortest.Harness{
		Spec:    douyin.Spec,
		Service: douyin.Service(),
		Env: map[string]string{"DOUYIN_CLIENT_KEY": clientKey, "DOUYIN_CLIENT_SECRET": clientSecret, "DOUYIN_ACCESS_TOKEN": accessToken,
			"DOUYIN_API_BASE": sandbox.URL + "/sandbox/douyin"},
		Inbound: func(t *testing.T, n int) *http.Request { return inbound(t, n, clientSecret) },
		Forged:  func(t *testing.T, n int) *http.Request { return inbound(t, n, "not-the-secret") },
		Conversation: func(t *testing.T) *http.Request {
			// The user writes first: a Douyin reply names the message it answers.
			m := s.Text(user, "在吗")
			s.Saw(user, m)
			e, err := s.Envelope(wire.EventReceiveMsg, user, m)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(e)
			return signed(t, "http://connector", clientSecret, body)
		},
		Outbound: func(t *testing.T) (string, event.Event) {
			e, err := event.New(douyin.TypeSend, "/desk", map[string]any{"channel": "douyin",
				"to": map[string]string{"kind": "douyin_openid", "value": user}, "message": map[string]any{"type": "text", "text": "您的包裹已发出"}})
			if err != nil {
				t.Fatal(err)
			}
			return douyin.SubjectSend, e
		},
		Delivered: func(t *testing.T, _ event.Event) bool {
			for _, r := range s.Replies() {
				if r.To == user && r.Error == "" && strings.Contains(string(r.Data), "您的包裹已发出") {
					return true
				}
			}
			return false
		},
	})
}

// TestWebhookVerification: the console's check is answered with its challenge, with vector 3.1
// (self-computed: client_secret secret123, client_key abc) end to end.
func TestWebhookVerification(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.conf["DOUYIN_CLIENT_KEY"], w.conf["DOUYIN_CLIENT_SECRET"] = "abc", "secret123"
	w.start(t)
	body := []byte(`{"event":"verify_webhook","client_key":"abc","content":{"challenge":12345}}`)
	post := func(sig string, body []byte) connectortest.Answer {
		req, _ := http.NewRequest(http.MethodPost, w.hooks.URL+douyin.WebhookPath, strings.NewReader(string(body)))
		req.Header.Set(wire.SignatureHeader, sig)
		return connectortest.Do(t, req)
	}
	if r := post("21197fbce64707d3a90a3230f5ae33d4c4cd1eac", body); r.Status != http.StatusOK || strings.TrimSpace(r.Body) != `{"challenge":12345}` {
		t.Errorf("vector 3.1 answered %d %s, want 200 {\"challenge\":12345}", r.Status, r.Body)
	}
	if r := post(wire.Sign("another-secret", body), body); r.Status != http.StatusUnauthorized || strings.Contains(r.Body, "12345") {
		t.Errorf("check signed with another secret answered %d %s, want 401 without the challenge", r.Status, r.Body)
	}
	bad := []byte(`{"event":"verify_webhook","client_key":"abc","content":{"challenge":"x"}}`)
	if r := post(wire.Sign("secret123", bad), bad); r.Status != http.StatusBadRequest {
		t.Errorf("a challenge that is not a number answered %d %s, want 400", r.Status, r.Body)
	}
	if n := w.bus.StoredCount(t, bus.StreamIn, ">"); n != 0 {
		t.Errorf("checks stored %d events", n)
	}
}

func TestSandboxVerifiesTheConnector(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	if err := w.sim.VerifyWebhook(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestBadEventsRejectedWithNothingPublished(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	const user = "_000badEventsUser"
	good := w.envelope(t, user, w.sim.Text(user, "第一条"))
	if r := connectortest.Do(t, signed(t, w.hooks.URL, clientSecret, good)); r.Status != http.StatusOK {
		t.Fatalf("valid event answered %d %s", r.Status, r.Body)
	}
	content := func(c string) []byte {
		return []byte(`{"event":"im_receive_msg","client_key":"` + clientKey + `","from_user_id":"u1","to_user_id":"a1","content":` + c + `}`)
	}
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
	}{
		{"forged signature", func() *http.Request {
			return signed(t, w.hooks.URL, "wrong", w.envelope(t, user, w.sim.Text(user, "x")))
		}, http.StatusUnauthorized},
		{"no signature", func() *http.Request {
			req := signed(t, w.hooks.URL, clientSecret, w.envelope(t, user, w.sim.Text(user, "x")))
			req.Header.Del(wire.SignatureHeader)
			return req
		}, http.StatusUnauthorized},
		{"signed body altered", func() *http.Request {
			req := signed(t, w.hooks.URL, clientSecret, good)
			altered := strings.Replace(string(good), "第一条", "第二条", 1)
			req.Body = httpBody(altered)
			req.ContentLength = int64(len(altered))
			return req
		}, http.StatusUnauthorized},
		{"not JSON", func() *http.Request { return signed(t, w.hooks.URL, clientSecret, []byte(`<xml/>`)) }, http.StatusBadRequest},
		{"another app", func() *http.Request {
			return signed(t, w.hooks.URL, clientSecret, []byte(strings.Replace(string(good), clientKey, "awSomeoneElse", 1)))
		}, http.StatusBadRequest},
		{"no message id", func() *http.Request {
			return signed(t, w.hooks.URL, clientSecret, content(`{"conversation_short_id":"c","message_type":"text","text":"x"}`))
		}, http.StatusBadRequest},
		{"content not JSON", func() *http.Request { return signed(t, w.hooks.URL, clientSecret, content(`"{oops"`)) }, http.StatusBadRequest},
		{"oversized", func() *http.Request {
			return signed(t, w.hooks.URL, clientSecret, w.envelope(t, user, w.sim.Text(user, strings.Repeat("长", 30000))))
		}, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := connectortest.Do(t, tc.req()); r.Status != tc.status {
				t.Errorf("answered %d %s, want %d", r.Status, r.Body, tc.status)
			}
		})
	}
	if n := w.bus.StoredCount(t, bus.StreamIn, ">"); n != 1 {
		t.Errorf("%d events stored, want only the valid event's", n)
	}
}

func TestRetriedMessageStoredOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	const user = "_000retriedUser"
	m := w.sim.Text(user, "我的订单呢")
	m.UserInfos = []wire.UserInfo{{OpenID: user, NickName: "小明"}}
	for i := range 3 { // Douyin's retries: the same message, a new log_id each time
		if r := connectortest.Do(t, signed(t, w.hooks.URL, clientSecret, w.envelope(t, user, m))); r.Status != http.StatusOK {
			t.Fatalf("attempt %d answered %d %s", i, r.Status, r.Body)
		}
	}
	if n := w.stored(t); n != 1 {
		t.Fatalf("one message delivered 3 times stored %d times", n)
	}
	e := w.messages(t)[0]
	got := connectortest.Data[received](t, e)
	if got.From["kind"] != "douyin_openid" || got.From["value"] != user || got.Account != w.sim.Account() || got.DisplayName != "小明" ||
		got.Message["text"] != "我的订单呢" || event.PartitionKey(e) != "douyin_openid:"+user || e.ID() != "douyin:"+string(m.ServerMessageID) ||
		got.ChannelMessageID != string(m.ServerMessageID) || !got.SentAt.Equal(m.CreatedAt()) {
		t.Errorf("event %s: %+v, partition key %s", e.ID(), got, event.PartitionKey(e))
	}
	// Another message is another event.
	if r := connectortest.Do(t, signed(t, w.hooks.URL, clientSecret, w.envelope(t, user, w.sim.Text(user, "还有一个问题")))); r.Status != http.StatusOK {
		t.Fatalf("second message answered %d", r.Status)
	}
	if n := w.stored(t); n != 2 {
		t.Errorf("two messages stored as %d events", n)
	}
}

// TestRetryAfterDuplicateWindowStoredOnce: a stored message's event id is kept in <bucket>_seen
// (key connector.SeenKey("douyin:<server_message_id>")), and a retry of a message found there —
// as one coming after JetStream's 2-minute duplicate window would be — is acknowledged, not
// stored.
func TestRetryAfterDuplicateWindowStoredOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	const user = "_000lateRetryUser"
	key := func(id wire.ID) string { return connector.SeenKey("douyin:" + string(id)) }
	seen, err := w.bus.Client.JetStream().KeyValue(context.Background(), "douyin_seen")
	if err != nil {
		t.Fatal(err)
	}
	first := w.sim.Text(user, "第一条")
	if r := connectortest.Do(t, signed(t, w.hooks.URL, clientSecret, w.envelope(t, user, first))); r.Status != http.StatusOK {
		t.Fatalf("answered %d %s", r.Status, r.Body)
	}
	if _, err := seen.Get(context.Background(), key(first.ServerMessageID)); err != nil {
		t.Errorf("stored message not in the seen bucket: %v", err)
	}
	// A message stored long ago (beyond the stream's duplicate window), retried now.
	late := w.sim.Text(user, "迟到的重试")
	if _, err := seen.Put(context.Background(), key(late.ServerMessageID), nil); err != nil {
		t.Fatal(err)
	}
	if r := connectortest.Do(t, signed(t, w.hooks.URL, clientSecret, w.envelope(t, user, late))); r.Status != http.StatusOK {
		t.Fatalf("late retry answered %d %s", r.Status, r.Body)
	}
	if n := w.stored(t); n != 1 {
		t.Errorf("%d events stored, want only the first message's (the late retry acknowledged, not stored)", n)
	}
}

func TestEveryMessageTypeNormalised(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	const user = "_000typesUser"
	msg := func(typ string, mod func(*wire.Message)) wire.Message {
		m := w.sim.Message(user, typ)
		mod(&m)
		return m
	}
	pushes := []wire.Message{
		w.sim.Text(user, "你好"),
		msg(wire.TypeImage, func(m *wire.Message) { m.Image = &wire.Image{URL: "https://p3.douyinpic.com/img/abc.jpeg", Width: 640} }),
		msg(wire.TypeImage, func(m *wire.Message) { m.Image = &wire.Image{MediaID: "@9VwNxuKKBZ8"} }),
		msg(wire.TypeVideo, func(m *wire.Message) { m.Video = &wire.Video{ItemID: "@9VxS1/qCUc80K2etd8wkU"} }),
		msg(wire.TypeVideo, func(m *wire.Message) { m.Video = &wire.Video{URL: "https://v26.douyinvod.com/v.mp4"} }),
		msg(wire.TypeCard, func(m *wire.Message) {
			m.Card = &wire.Card{Title: "退货服务卡", URL: "https://www.example.com/returns", Description: "7 天无理由"}
		}),
		msg(wire.TypeCard, func(m *wire.Message) { m.Card = &wire.Card{CardID: "card-42", Title: "留资卡片"} }),
		msg(wire.TypeEmoji, func(*wire.Message) {}),
		msg(wire.TypeImage, func(m *wire.Message) { m.Image = &wire.Image{URL: "javascript:alert(1)"} }),
	}
	for i, m := range pushes {
		if err := w.sim.Receive(context.Background(), user, m); err != nil {
			t.Fatalf("push %d (%s): %v", i, m.MessageType, err)
		}
	}
	// Events that are not a customer's message: acknowledged, not published.
	for _, ev := range []string{wire.EventSendMsg, wire.EventEnterDirect} {
		e, err := w.sim.Envelope(ev, user, w.sim.Text(user, "echo"))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.sim.Push(context.Background(), e); err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
	}
	want := []func(m map[string]any) bool{
		func(m map[string]any) bool { return m["type"] == "text" && m["text"] == "你好" },
		func(m map[string]any) bool {
			return m["type"] == "image" && m["media_url"] == "https://p3.douyinpic.com/img/abc.jpeg"
		},
		func(m map[string]any) bool { return m["type"] == "image" && m["media_id"] == "@9VwNxuKKBZ8" },
		func(m map[string]any) bool { return m["type"] == "video" && m["media_id"] == "@9VxS1/qCUc80K2etd8wkU" },
		func(m map[string]any) bool {
			return m["type"] == "video" && m["media_url"] == "https://v26.douyinvod.com/v.mp4"
		},
		func(m map[string]any) bool {
			l, _ := m["link"].(map[string]any)
			return m["type"] == "link" && l["url"] == "https://www.example.com/returns" && l["title"] == "退货服务卡"
		},
		func(m map[string]any) bool {
			e, _ := m["event"].(map[string]any)
			d, _ := e["detail"].(map[string]any)
			return m["type"] == "event" && e["name"] == "douyin.card" && d["card_id"] == "card-42"
		},
		func(m map[string]any) bool {
			r, _ := m["raw"].(map[string]any)
			return m["type"] == "unsupported" && r["message_type"] == "emoji"
		},
		func(m map[string]any) bool { return m["type"] == "unsupported" }, // not an http(s) URL
	}
	events := w.messages(t)
	if len(events) != len(want) {
		t.Fatalf("%d events, want %d", len(events), len(want))
	}
	byID := map[string]event.Event{}
	for _, e := range events {
		byID[e.ID()] = e
	}
	for i, m := range pushes {
		e, ok := byID["douyin:"+string(m.ServerMessageID)]
		if !ok {
			t.Errorf("push %d (%s) not stored", i, m.MessageType)
			continue
		}
		if got := connectortest.Data[received](t, e).Message; !want[i](got) {
			t.Errorf("push %d (%s): message %v", i, m.MessageType, got)
		}
	}
}

func TestReplyWindowAndQuota(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	const stale, fresh, unknown = "_000staleUser", "_000freshUser", "_000unknownUser"
	old := w.sim.Text(stale, "昨天的消息")
	old.CreateTime = time.Now().Add(-25 * time.Hour).UnixMilli()
	for user, m := range map[string]wire.Message{stale: old, fresh: w.sim.Text(fresh, "在吗")} {
		if err := w.sim.Receive(context.Background(), user, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, user := range []string{stale, unknown} {
		st := w.waitStatus(t, w.sendText(t, user, "您好").ID())
		if st.Status != "failed" || st.ErrorCode != "outside_window" {
			t.Errorf("reply to %s: %+v, want failed outside_window", user, st)
		}
	}
	for i := range wire.ReplyQuota { // one at a time: each is counted before the next
		if st := w.waitStatus(t, w.sendText(t, fresh, "回复 "+strconv.Itoa(i+1)).ID()); st.Status != "sent" || st.VendorMessageID == "" {
			t.Fatalf("reply %d within the window: %+v", i+1, st)
		}
	}
	st := w.waitStatus(t, w.sendText(t, fresh, "第七条").ID())
	if st.Status != "failed" || st.ErrorCode != "quota_exceeded" {
		t.Errorf("reply %d: %+v, want failed quota_exceeded", wire.ReplyQuota+1, st)
	}
	if got := len(w.sim.Replies()); got != wire.ReplyQuota {
		t.Errorf("Douyin received %d replies, want the %d within the quota (none for the refused)", got, wire.ReplyQuota)
	}
	// The user writes again: the quota starts over, and the reply names the new message.
	again := w.sim.Text(fresh, "还有个问题")
	if err := w.sim.Receive(context.Background(), fresh, again); err != nil {
		t.Fatal(err)
	}
	if st := w.waitStatus(t, w.sendText(t, fresh, "请说").ID()); st.Status != "sent" {
		t.Errorf("reply after the user wrote again: %+v", st)
	}
	// Not text, too long: refused without a call.
	if st := w.waitStatus(t, w.sendText(t, fresh, strings.Repeat("好", wire.MaxTextRunes+1)).ID()); st.Status != "failed" || st.ErrorCode != "text_too_long" {
		t.Errorf("long text: %+v", st)
	}
}

// TestDouyinRefusals: what only Douyin knows (its token, its own window) comes back as a clear
// failed status.
func TestDouyinRefusals(t *testing.T) {
	t.Parallel()
	t.Run("token", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.conf["DOUYIN_ACCESS_TOKEN"] = "act.expired"
		w.start(t)
		const user = "_000tokenUser"
		if err := w.sim.Receive(context.Background(), user, w.sim.Text(user, "你好")); err != nil {
			t.Fatal(err)
		}
		st := w.waitStatus(t, w.sendText(t, user, "您好").ID())
		if st.Status != "failed" || st.ErrorCode != strconv.Itoa(wire.CodeInvalidToken) {
			t.Errorf("reply with a wrong token: %+v, want failed %d", st, wire.CodeInvalidToken)
		}
	})
	t.Run("window", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.conf["DOUYIN_REPLY_WINDOW"] = "48h" // configured wider than Douyin's: Douyin refuses
		w.start(t)
		const user = "_000windowUser"
		old := w.sim.Text(user, "昨天的消息")
		old.CreateTime = time.Now().Add(-25 * time.Hour).UnixMilli()
		if err := w.sim.Receive(context.Background(), user, old); err != nil {
			t.Fatal(err)
		}
		st := w.waitStatus(t, w.sendText(t, user, "您好").ID())
		if st.Status != "failed" || st.ErrorCode != "outside_window" || !strings.Contains(st.Error, strconv.Itoa(wire.CodeOutsideWindow)) {
			t.Errorf("reply Douyin refused for its window: %+v, want failed outside_window", st)
		}
	})
}

func TestEventDuringOutageIsRetried(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const user = "_000outageUser"
	m := w.sim.Text(user, "有人吗")
	// No connector yet: Douyin's attempts get 503 and the event fails after four.
	if err := w.sim.Receive(context.Background(), user, m); err == nil {
		t.Fatal("event accepted with no connector running")
	}
	w.start(t)
	if err := w.sim.Receive(context.Background(), user, m); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 5*time.Second, "the message", func() bool { return w.stored(t) == 1 })
}
