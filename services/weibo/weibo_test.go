package weibo_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	wire "github.com/omnibus-dev/omnibus/pkg/wire/weibo"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	weibosim "github.com/omnibus-dev/omnibus/services/sandbox/weibo"
	"github.com/omnibus-dev/omnibus/services/weibo"
)

// createdAt dates the conformance pushes: the same vendor message n has the same body each time.
var createdAt = time.Now().Add(-time.Minute).Format(wire.CreatedAtLayout)

var nonceSeq atomicCounter

func TestConformance(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	sandbox := httptest.NewServer(mux)
	t.Cleanup(sandbox.Close)
	env := sim.NewEnv(mux, "", nil, 0, quiet())
	s, err := weibosim.New(env, weibosim.Config{AppSecret: appSecret, AccessToken: accessToken, AccountUID: account})
	if err != nil {
		t.Fatal(err)
	}
	push := func(t *testing.T, n int, secret string) *http.Request {
		body := pushBody(t, wire.Push{Type: wire.TypeText, ReceiverID: account, SenderID: 5_000_000_000 + int64(n),
			CreatedAt: createdAt, Text: fmt.Sprintf("你好 %d", n)})
		return signedPush(t, "http://connector", secret, time.Now(), strconv.FormatInt(nonceSeq.next(), 10), body)
	}
	const fan = 5_000_000_042
	connectortest.Run(t, connectortest.Harness{
		Spec:    weibo.Spec,
		Service: weibo.Service(),
		Env:     map[string]string{"WEIBO_APP_SECRET": appSecret, "WEIBO_ACCESS_TOKEN": accessToken, "WEIBO_API_BASE": sandbox.URL + "/sandbox/weibo"},
		Inbound: func(t *testing.T, n int) *http.Request { return push(t, n, appSecret) },
		Forged:  func(t *testing.T, n int) *http.Request { return push(t, n, "not-the-secret") },
		Outbound: func(t *testing.T) (string, event.Event) {
			s.Saw(fan, time.Now()) // the fan wrote before this connector ran
			e, err := event.New(weibo.TypeSend, "/desk", map[string]any{"channel": "weibo",
				"to": map[string]string{"kind": "weibo_uid", "value": strconv.Itoa(fan)}, "message": map[string]any{"type": "text", "text": "您的包裹已发出"}})
			if err != nil {
				t.Fatal(err)
			}
			return weibo.SubjectSend, e
		},
		Delivered: func(t *testing.T, _ event.Event) bool {
			for _, r := range s.Replies() {
				if r.To == strconv.Itoa(fan) && r.Error == "" && strings.Contains(string(r.Data), "您的包裹已发出") {
					return true
				}
			}
			return false
		},
	})
}

func TestURLVerification(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	if err := w.sim.VerifyURL(context.Background()); err != nil {
		t.Fatal(err)
	}
	get := func(q url.Values) response {
		req, _ := http.NewRequest(http.MethodGet, w.hooks.URL+weibo.CallbackPath+"?"+q.Encode(), nil)
		return do(t, req)
	}
	// The documented request (vector A.5) is signed right but dated 2014: stale.
	doc := url.Values{"nonce": {"57155157"}, "timestamp": {"1397022061823"}, "echostr": {"dnPdpTZz85"},
		"signature": {"90e4c22c90a58f26526c2dd5b6c56c8822edeaa1"}}
	if r := get(doc); r.Status != http.StatusUnauthorized || strings.Contains(r.Body, "dnPdpTZz85") {
		t.Errorf("stale verification answered %d %q, want 401 without echostr", r.Status, r.Body)
	}
	forged := wire.SignQuery("xyz123xyz", time.Now(), "57155157", "dnPdpTZz85")
	if r := get(forged); r.Status != http.StatusUnauthorized {
		t.Errorf("verification signed with another secret answered %d, want 401", r.Status)
	}
	fresh := wire.SignQuery(appSecret, time.Now(), "57155157", "dnPdpTZz85")
	if r := get(fresh); r.Status != http.StatusOK || r.Body != "dnPdpTZz85" {
		t.Errorf("verification answered %d %q, want 200 dnPdpTZz85", r.Status, r.Body)
	}
}

func TestBadPushesRejectedWithNothingPublished(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	now := time.Now()
	good := pushBody(t, w.sim.Text(5_000_000_001, "第一条"))
	// A valid push whose nonce the replay below reuses.
	if r := do(t, signedPush(t, w.hooks.URL, appSecret, now, "11111111", good)); r.Status != http.StatusOK || r.Body != "" {
		t.Fatalf("valid push answered %d %q, want 200 and an empty body", r.Status, r.Body)
	}
	bustest.WaitFor(t, 5*time.Second, "the valid push", func() bool { return w.stored(t) == 1 })
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
	}{
		{"forged signature", func() *http.Request {
			return signedPush(t, w.hooks.URL, "wrong", now, "22222222", good)
		}, http.StatusUnauthorized},
		{"stale timestamp", func() *http.Request {
			return signedPush(t, w.hooks.URL, appSecret, now.Add(-10*time.Minute), "33333333", good)
		}, http.StatusUnauthorized},
		{"future timestamp", func() *http.Request {
			return signedPush(t, w.hooks.URL, appSecret, now.Add(10*time.Minute), "44444444", good)
		}, http.StatusUnauthorized},
		{"replayed nonce, another body", func() *http.Request {
			return signedPush(t, w.hooks.URL, appSecret, now, "11111111", pushBody(t, w.sim.Text(5_000_000_002, "冒充")))
		}, http.StatusUnauthorized},
		{"seconds, not milliseconds", func() *http.Request {
			req := signedPush(t, w.hooks.URL, appSecret, now, "55555555", good)
			q := req.URL.Query()
			ts := strconv.FormatInt(now.Unix(), 10)
			q.Set("timestamp", ts)
			q.Set("signature", wire.Sign(appSecret, ts, "55555555"))
			req.URL.RawQuery = q.Encode()
			return req
		}, http.StatusUnauthorized},
		{"no signature", func() *http.Request {
			req := signedPush(t, w.hooks.URL, appSecret, now, "66666666", good)
			q := req.URL.Query()
			q.Del("signature")
			req.URL.RawQuery = q.Encode()
			return req
		}, http.StatusUnauthorized},
		{"malformed timestamp", func() *http.Request {
			req := signedPush(t, w.hooks.URL, appSecret, now, "77777777", good)
			q := req.URL.Query()
			q.Set("timestamp", "yesterday")
			req.URL.RawQuery = q.Encode()
			return req
		}, http.StatusBadRequest},
		{"not JSON", func() *http.Request {
			return signedPush(t, w.hooks.URL, appSecret, now, "88888888", []byte(`<xml><ToUserName/></xml>`))
		}, http.StatusBadRequest},
		{"no sender", func() *http.Request {
			return signedPush(t, w.hooks.URL, appSecret, now, "99999999", []byte(`{"type":"text","receiver_id":1,"created_at":"`+createdAt+`","text":"x"}`))
		}, http.StatusBadRequest},
		{"uid as a string", func() *http.Request {
			return signedPush(t, w.hooks.URL, appSecret, now, "12121212", []byte(`{"type":"text","receiver_id":1,"sender_id":"2","created_at":"`+createdAt+`","text":"x"}`))
		}, http.StatusBadRequest},
		{"oversized", func() *http.Request {
			big := fmt.Sprintf(`{"type":"text","receiver_id":1,"sender_id":2,"created_at":%q,"text":%q}`, createdAt, strings.Repeat("长", 30000))
			return signedPush(t, w.hooks.URL, appSecret, now, "13131313", []byte(big))
		}, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := do(t, tc.req()); r.Status != tc.status {
				t.Errorf("answered %d %s, want %d", r.Status, r.Body, tc.status)
			}
		})
	}
	if n := w.bus.StoredCount(t, bus.StreamIn, ">"); n != 1 {
		t.Errorf("%d events stored, want only the valid push's", n)
	}
}

func TestRedeliveredPushStoredOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	p := w.sim.Text(5_000_000_003, "我的订单呢")
	body := pushBody(t, p)
	now := time.Now()
	// Weibo retries (a fresh signed query each time), and the same request arrives twice.
	for i, nonce := range []string{"10000001", "10000002", "10000002"} {
		if r := do(t, signedPush(t, w.hooks.URL, appSecret, now, nonce, body)); r.Status != http.StatusOK {
			t.Fatalf("attempt %d answered %d %s", i, r.Status, r.Body)
		}
	}
	if n := w.stored(t); n != 1 {
		t.Fatalf("one push delivered 3 times stored %d times", n)
	}
	e := w.messages(t)[0]
	got := decode[received](t, e)
	if got.From["kind"] != "weibo_uid" || got.From["value"] != "5000000003" || got.Account != strconv.Itoa(account) ||
		got.Message["text"] != "我的订单呢" || event.PartitionKey(e) != "weibo_uid:5000000003" || !strings.HasPrefix(e.ID(), "weibo:5000000003:") {
		t.Errorf("event %s: %+v, partition key %s", e.ID(), got, event.PartitionKey(e))
	}
	// Another message in the same second is another event.
	p.Text = "还有一个问题"
	if r := do(t, signedPush(t, w.hooks.URL, appSecret, now, "10000003", pushBody(t, p))); r.Status != http.StatusOK {
		t.Fatalf("second message answered %d", r.Status)
	}
	if n := w.stored(t); n != 2 {
		t.Errorf("two messages stored as %d events", n)
	}
}

func TestEveryPushTypeNormalised(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	const uid = 5_000_000_004
	at := time.Now().Add(-time.Second).Format(wire.CreatedAtLayout)
	pushes := []wire.Push{
		{Type: wire.TypeText, Text: "你好"},
		{Type: wire.TypeImage, Data: wire.Data{Vfid: 821804459, Tovfid: 821804469}},
		{Type: wire.TypeVoice, Data: wire.Data{Vfid: 821804460}},
		{Type: wire.TypePosition, Text: "北京市海淀区", Data: wire.Data{Longitude: "116.308586", Latitude: "39.982672"}},
		{Type: wire.TypeEvent, Data: wire.Data{Subtype: wire.EventClick, Key: "ORDER_STATUS"}},
		{Type: wire.TypeEvent, Data: wire.Data{Subtype: "brand_new_subtype"}}, // ignored
		{Type: "sticker"}, // ignored
	}
	for i, p := range pushes {
		p.ReceiverID, p.SenderID, p.CreatedAt = account, uid, at
		if err := w.sim.Push(context.Background(), p); err != nil {
			t.Fatalf("push %d (%s): %v", i, p.Type, err)
		}
	}
	want := map[string]func(m map[string]any) bool{
		"text":     func(m map[string]any) bool { return m["text"] == "你好" },
		"image":    func(m map[string]any) bool { return m["media_id"] == "821804459" },
		"voice":    func(m map[string]any) bool { return m["media_id"] == "821804460" },
		"location": func(m map[string]any) bool { l, _ := m["location"].(map[string]any); return l["latitude"] == 39.982672 },
		"event": func(m map[string]any) bool {
			e, _ := m["event"].(map[string]any)
			d, _ := e["detail"].(map[string]any)
			return e["name"] == "weibo.click" && d["key"] == "ORDER_STATUS"
		},
	}
	events := w.messages(t)
	if len(events) != len(want) {
		t.Fatalf("%d events, want %d", len(events), len(want))
	}
	for _, e := range events {
		m := decode[received](t, e).Message
		check, ok := want[fmt.Sprint(m["type"])]
		if !ok || !check(m) {
			t.Errorf("event %s: message %v", e.ID(), m)
		}
	}
}

func TestReplyWindow(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	const stale, fresh, gone = 5_000_000_005, 5_000_000_006, 5_000_000_007
	old := w.sim.Text(stale, "两天前的消息")
	old.CreatedAt = time.Now().Add(-49 * time.Hour).Format(wire.CreatedAtLayout)
	for _, p := range []wire.Push{old, w.sim.Text(fresh, "在吗"), w.sim.Text(gone, "再见"),
		{Type: wire.TypeEvent, ReceiverID: account, SenderID: gone, CreatedAt: time.Now().Format(wire.CreatedAtLayout), Data: wire.Data{Subtype: wire.EventUnfollow}}} {
		if err := w.sim.Push(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	for _, uid := range []int64{stale, gone} {
		cmd := w.sendText(t, uid, "您好")
		st := w.waitStatus(t, cmd.ID())
		if st.Status != "failed" || st.ErrorCode != "outside_window" || !strings.Contains(st.Error, "48 h") {
			t.Errorf("reply to %d: %+v, want failed outside_window", uid, st)
		}
	}
	cmd := w.sendText(t, fresh, "在的，请问有什么可以帮您？")
	if st := w.waitStatus(t, cmd.ID()); st.Status != "sent" || st.VendorMessageID == "" {
		t.Errorf("reply within the window: %+v", st)
	}
	if got := w.sim.Replies(); len(got) != 1 || got[0].To != strconv.Itoa(fresh) {
		t.Errorf("Weibo received %v, want the one reply within the window", got)
	}
	// Too long, and not text: refused without a call.
	for text, code := range map[string]string{strings.Repeat("好", 300): "text_too_long"} {
		if st := w.waitStatus(t, w.sendText(t, fresh, text).ID()); st.Status != "failed" || st.ErrorCode != code {
			t.Errorf("status %+v, want failed %s", st, code)
		}
	}
}

func TestWeiboRefusalAndFaults(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.conf["WEIBO_ACCESS_TOKEN"] = "2.00expired"
	w.start(t)
	const fan = 5_000_000_008
	if err := w.sim.Push(context.Background(), w.sim.Text(fan, "你好")); err != nil {
		t.Fatal(err)
	}
	st := w.waitStatus(t, w.sendText(t, fan, "您好").ID())
	if st.Status != "failed" || st.ErrorCode != strconv.Itoa(wire.CodeInvalidToken) {
		t.Errorf("reply with a wrong token: %+v, want failed %d", st, wire.CodeInvalidToken)
	}
}

func TestPushDuringOutageIsRetried(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// No connector yet: Weibo's attempts get 503 and the push fails after three.
	if err := w.sim.Push(context.Background(), w.sim.Text(5_000_000_009, "有人吗")); err == nil {
		t.Fatal("push accepted with no connector running")
	}
	w.start(t)
	if err := w.sim.Push(context.Background(), w.sim.Text(5_000_000_009, "有人吗")); err != nil {
		t.Fatal(err)
	}
	if n := w.stored(t); n != 1 {
		t.Errorf("%d stored", n)
	}
}

// TestReplayOnAnotherReplicaRefused: the nonce of a push stored by one replica is bound to its body
// for every replica (the shared nonce bucket).
func TestReplayOnAnotherReplicaRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t) // replica A serves the hook
	now := time.Now()
	body := pushBody(t, w.sim.Text(5_000_000_010, "原消息"))
	if r := do(t, signedPush(t, w.hooks.URL, appSecret, now, "20202020", body)); r.Status != http.StatusOK {
		t.Fatalf("push answered %d %s", r.Status, r.Body)
	}
	w.start(t) // replica B now serves the hook
	forged := pushBody(t, w.sim.Text(5_000_000_011, "冒充的消息"))
	if r := do(t, signedPush(t, w.hooks.URL, appSecret, now, "20202020", forged)); r.Status != http.StatusUnauthorized {
		t.Errorf("replayed query with another body on replica B answered %d %s, want 401", r.Status, r.Body)
	}
	// Weibo's retry of the same push reaching replica B is accepted and stored once.
	if r := do(t, signedPush(t, w.hooks.URL, appSecret, now, "20202020", body)); r.Status != http.StatusOK {
		t.Errorf("retry on replica B answered %d %s", r.Status, r.Body)
	}
	if n := w.stored(t); n != 1 {
		t.Errorf("%d stored, want 1", n)
	}
}
