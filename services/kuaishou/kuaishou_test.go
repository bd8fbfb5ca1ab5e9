package kuaishou_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	wire "github.com/omnibus-dev/omnibus/pkg/wire/kuaishou"
	"github.com/omnibus-dev/omnibus/services/kuaishou"
	kuaishousim "github.com/omnibus-dev/omnibus/services/sandbox/kuaishou"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	w := newWorld(t) // for its simulator's envelopes only
	createdAt := time.Now().Add(-time.Minute).UnixMilli()
	inbound := func(t *testing.T, n int, secret string) *http.Request {
		m := kuaishousim.Message{MsgID: "ks" + strconv.Itoa(9_000_000+n), FromUserID: fmt.Sprintf("%032x", n), ToUserID: "acct",
			MsgType: "text", Text: fmt.Sprintf("你好 %d", n), CreateTime: createdAt}
		return signed(t, "http://connector", secret, w.body(t, m))
	}
	connectortest.Run(t, connectortest.Harness{
		Spec:    kuaishou.Spec,
		Service: kuaishou.Service(),
		Env:     map[string]string{"KUAISHOU_APP_SECRET": appSecret},
		Inbound: func(t *testing.T, n int) *http.Request { return inbound(t, n, appSecret) },
		Forged:  func(t *testing.T, n int) *http.Request { return inbound(t, n, "not-the-secret") },
	})
}

// TestTestEventAcknowledged: the console's TEST event (and the authorisation events) get
// {"result":1} and publish nothing; vector A.8 (self-computed) is accepted end to end.
func TestTestEventAcknowledged(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.conf["KUAISHOU_APP_SECRET"] = "appsecret123"
	w.start(t)
	req, _ := http.NewRequest(http.MethodPost, w.hooks.URL+kuaishou.WebhookPath, strings.NewReader(`{"event":"TEST"}`))
	req.Header.Set(wire.SignHeader, "2ed610846ea4c3f9615866983ef2980a")
	if r := connectortest.Do(t, req); r.Status != http.StatusOK || strings.TrimSpace(r.Body) != `{"result":1}` {
		t.Errorf("vector A.8 answered %d %s, want 200 {\"result\":1}", r.Status, r.Body)
	}
	for _, ev := range []string{"AUTHORIZE", "UNAUTHORIZE", "SOMETHING_NEW"} {
		body := []byte(`{"event":"` + ev + `","taskId":"t-` + ev + `","data":{}}`)
		if r := connectortest.Do(t, signed(t, w.hooks.URL, "appsecret123", body)); r.Status != http.StatusOK || strings.TrimSpace(r.Body) != `{"result":1}` {
			t.Errorf("%s answered %d %s", ev, r.Status, r.Body)
		}
	}
	if n := w.bus.StoredCount(t, bus.StreamIn, ">"); n != 0 {
		t.Errorf("non-message events stored %d events", n)
	}
}

func TestSandboxTestEvent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	if err := w.sim.Test(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestBadEventsRejectedWithNothingPublished(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	const user = "0123456789abcdef0123456789abcdef"
	good := w.body(t, w.sim.Text(user, "第一条"))
	if r := connectortest.Do(t, signed(t, w.hooks.URL, appSecret, good)); r.Status != http.StatusOK {
		t.Fatalf("valid event answered %d %s", r.Status, r.Body)
	}
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
	}{
		{"forged kwaisign", func() *http.Request { return signed(t, w.hooks.URL, "wrong", w.body(t, w.sim.Text(user, "x"))) }, http.StatusUnauthorized},
		{"no kwaisign", func() *http.Request {
			req := signed(t, w.hooks.URL, appSecret, w.body(t, w.sim.Text(user, "x")))
			req.Header.Del(wire.SignHeader)
			return req
		}, http.StatusUnauthorized},
		{"secret before the body", func() *http.Request {
			body := w.body(t, w.sim.Text(user, "x"))
			req := signed(t, w.hooks.URL, appSecret, body)
			req.Header.Set(wire.SignHeader, wire.Sign("", append([]byte(appSecret), body...)))
			return req
		}, http.StatusUnauthorized},
		{"not JSON", func() *http.Request { return signed(t, w.hooks.URL, appSecret, []byte(`result=1`)) }, http.StatusBadRequest},
		{"another app", func() *http.Request {
			return signed(t, w.hooks.URL, appSecret, []byte(strings.Replace(string(good), appKey, "ks_other_app", 1)))
		}, http.StatusBadRequest},
		{"message without msg_id", func() *http.Request {
			return signed(t, w.hooks.URL, appSecret, w.body(t, map[string]string{"from_user_id": user, "msg_type": "text", "text": "x"}))
		}, http.StatusBadRequest},
		{"message without data", func() *http.Request {
			return signed(t, w.hooks.URL, appSecret, []byte(`{"event":"`+kuaishousim.DefaultMessageEvent+`","taskId":"t1"}`))
		}, http.StatusBadRequest},
		{"oversized", func() *http.Request {
			return signed(t, w.hooks.URL, appSecret, w.body(t, w.sim.Text(user, strings.Repeat("长", 30000))))
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
	const user = "fedcba9876543210fedcba9876543210"
	m := w.sim.Text(user, "我的订单呢")
	m.NickName = "小红"
	for i := range 3 { // Kuaishou's retries (a new task id each time here) of one message
		if r := connectortest.Do(t, signed(t, w.hooks.URL, appSecret, w.body(t, m))); r.Status != http.StatusOK || strings.TrimSpace(r.Body) != `{"result":1}` {
			t.Fatalf("attempt %d answered %d %s", i, r.Status, r.Body)
		}
	}
	if n := w.stored(t); n != 1 {
		t.Fatalf("one message delivered 3 times stored %d times", n)
	}
	e := w.bus.Events(t, bus.StreamIn, kuaishou.SubjectMessage+".>")[0]
	got := connectortest.Data[received](t, e)
	if got.From["kind"] != "kuaishou_openid" || got.From["value"] != user || got.DisplayName != "小红" || got.Message["text"] != "我的订单呢" ||
		e.ID() != "kuaishou:"+m.MsgID || event.PartitionKey(e) != "kuaishou_openid:"+user || got.SentAt.UnixMilli() != m.CreateTime {
		t.Errorf("event %s: %+v", e.ID(), got)
	}
	// A retry found in the seen bucket (as one past JetStream's duplicate window) is not stored.
	late := w.sim.Text(user, "迟到的重试")
	kv, err := w.bus.Client.JetStream().KeyValue(context.Background(), "kuaishou_seen")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), connector.SeenKey("kuaishou:"+late.MsgID), nil); err != nil {
		t.Fatal(err)
	}
	if r := connectortest.Do(t, signed(t, w.hooks.URL, appSecret, w.body(t, late))); r.Status != http.StatusOK {
		t.Fatalf("late retry answered %d %s", r.Status, r.Body)
	}
	if n := w.stored(t); n != 1 {
		t.Errorf("%d stored after a late retry, want 1", n)
	}
}

func TestMessageMapping(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	const user = "00112233445566778899aabbccddeeff"
	msgs := []kuaishousim.Message{
		w.sim.Text(user, "你好"),
		{MsgType: "image", MediaURL: "https://p1.a.yximgs.com/photo.jpg"},
		{MsgType: "video", MediaURL: "https://v1.kwaicdn.com/video.mp4"},
		{MsgType: "image", MediaURL: "ftp://example.com/x.jpg"},
		{MsgType: "sticker"},
	}
	want := []func(m map[string]any) bool{
		func(m map[string]any) bool { return m["type"] == "text" && m["text"] == "你好" },
		func(m map[string]any) bool {
			return m["type"] == "image" && m["media_url"] == "https://p1.a.yximgs.com/photo.jpg"
		},
		func(m map[string]any) bool {
			return m["type"] == "video" && m["media_url"] == "https://v1.kwaicdn.com/video.mp4"
		},
		func(m map[string]any) bool { return m["type"] == "unsupported" },
		func(m map[string]any) bool {
			r, _ := m["raw"].(map[string]any)
			return m["type"] == "unsupported" && r["msg_type"] == "sticker"
		},
	}
	for i := range msgs {
		if msgs[i].MsgID == "" {
			base := w.sim.Text(user, "")
			base.MsgType, base.Text, base.MediaURL = msgs[i].MsgType, "", msgs[i].MediaURL
			msgs[i] = base
		}
		if err := w.sim.Send(context.Background(), msgs[i]); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	byID := map[string]event.Event{}
	for _, e := range w.bus.Events(t, bus.StreamIn, kuaishou.SubjectMessage+".>") {
		byID[e.ID()] = e
	}
	if len(byID) != len(msgs) {
		t.Fatalf("%d events, want %d", len(byID), len(msgs))
	}
	for i, m := range msgs {
		e, ok := byID["kuaishou:"+m.MsgID]
		if !ok {
			t.Errorf("message %d not stored", i)
			continue
		}
		if got := connectortest.Data[received](t, e).Message; !want[i](got) {
			t.Errorf("message %d (%s): %v", i, m.MsgType, got)
		}
	}
}

// TestSendFailsClearly: with no send API, a reply is a failed status naming why, at once.
func TestSendFailsClearly(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	cmd := w.send(t, "00112233445566778899aabbccddeeff", "您好")
	e := connectortest.WaitEvent(t, w.bus, bus.StreamIn, kuaishou.SubjectStatus+".>", "kuaishou:status:"+cmd.ID())
	st := connectortest.Data[status](t, e)
	if st.Status != "failed" || st.ErrorCode != "not_supported" || !strings.Contains(st.Error, "another channel") {
		t.Errorf("status %+v, want failed not_supported", st)
	}
}

func TestEventDuringOutageIsRetried(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	m := w.sim.Text("aabbccddeeff00112233445566778899", "有人吗")
	if err := w.sim.Send(context.Background(), m); err == nil {
		t.Fatal("event acknowledged with no connector running")
	}
	w.start(t)
	if err := w.sim.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if n := w.stored(t); n != 1 {
		t.Errorf("%d stored", n)
	}
}
