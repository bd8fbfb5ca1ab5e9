package webchat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/webchat"
)

const apiVisitor = "v_00000000000000a1"

func apiRequest(n int, token string) *http.Request {
	body := fmt.Sprintf(`{"type":"message","cid":"conf-%d","text":"你好 %d"}`, n, n)
	req := httptest.NewRequest(http.MethodPost, "/webchat/api/messages", strings.NewReader(body))
	req.Header.Set(webchat.HeaderVisitor, apiVisitor)
	req.Header.Set(webchat.HeaderToken, token)
	return req
}

// The conformance suite runs on the HTTP form of the protocol (POST /webchat/api/messages with
// the visitor's id and token), which shares the inbound path with the WebSocket.
func TestConformance(t *testing.T) {
	t.Parallel()
	connectortest.Run(t, connectortest.Harness{
		Spec:    webchat.Spec,
		Service: webchat.Service(),
		Env:     baseEnv(),
		Inbound: func(t *testing.T, n int) *http.Request {
			return apiRequest(n, webchat.VisitorToken(secret, apiVisitor))
		},
		Forged: func(t *testing.T, n int) *http.Request {
			return apiRequest(n, webchat.VisitorToken("another-secret-0123456789", apiVisitor))
		},
	})
}

func TestVisitorMessage(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	in := startInstance(t, b, baseEnv())
	c, w := dial(t, in, webchat.ClientFrame{})
	if !webchat.ValidVisitorID(w.Visitor) || w.Token != webchat.VisitorToken(secret, w.Visitor) {
		t.Fatalf("welcome %+v: want a new visitor id and its token", w)
	}
	if w.Title != "测试客服" {
		t.Errorf("welcome title %q, want WEBCHAT_TITLE", w.Title)
	}
	ack := c.message(t, "c1", "  我的快递到哪了？\n")
	if ack.Type != webchat.FrameAck || ack.Seq == 0 {
		t.Fatalf("got %+v, want an ack with a seq", ack)
	}
	// The message comes back as an entry of the visitor's log (other tabs see it too).
	echo := c.until(t, func(f webchat.ServerFrame) bool { return f.Type == webchat.FrameMsg })
	if e := echo[len(echo)-1]; e.Seq != ack.Seq || e.From != "visitor" || e.CID != "c1" || text(e) != "  我的快递到哪了？" {
		t.Fatalf("log entry %+v, want seq %d from the visitor with cid c1", e, ack.Seq)
	}
	events := b.Events(t, bus.StreamIn, inFilter)
	if len(events) != 1 {
		t.Fatalf("%d events, want 1", len(events))
	}
	e := events[0]
	mustValid(t, e)
	if want := "webchat:" + w.Visitor + ":c1"; e.ID() != want {
		t.Errorf("event id %q, want %q", e.ID(), want)
	}
	if got, want := event.PartitionKey(e), "web_visitor:"+w.Visitor; got != want {
		t.Errorf("partitionkey %q, want %q", got, want)
	}
	if e.Source() != "/connectors/webchat" || e.Type() != webchat.TypeReceived {
		t.Errorf("source %q type %q", e.Source(), e.Type())
	}
	d := data(t, e)
	from := d["from"].(map[string]any)
	if from["kind"] != "web_visitor" || from["value"] != w.Visitor {
		t.Errorf("from %v, want the visitor", from)
	}
	if d["channel"] != "webchat" || d["channel_message_id"] != w.Visitor+":c1" || d["identities"] != nil {
		t.Errorf("data %v", d)
	}
	if m := d["message"].(map[string]any); m["type"] != "text" || m["text"] != "  我的快递到哪了？" {
		t.Errorf("message %v: want the text, trailing white space trimmed", m)
	}
}

func TestContactIdentities(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	in := startInstance(t, b, baseEnv())
	c, w := dial(t, in, webchat.ClientFrame{})
	tests := []struct {
		name  string
		frame webchat.ClientFrame
		want  []webchat.Identity // nil: refused
	}{
		{"national mobile with spaces", webchat.ClientFrame{Type: "message", Text: "hi", Phone: "138 0013 8000"},
			[]webchat.Identity{{Kind: "phone", Value: "+8613800138000"}}},
		{"0086 prefix", webchat.ClientFrame{Type: "message", Text: "hi", Phone: "0086-139-0013-9000"},
			[]webchat.Identity{{Kind: "phone", Value: "+8613900139000"}}},
		{"foreign number", webchat.ClientFrame{Type: "message", Text: "hi", Phone: "+1 650-253-0000"},
			[]webchat.Identity{{Kind: "phone", Value: "+16502530000"}}},
		{"email lower-cased", webchat.ClientFrame{Type: "message", Text: "hi", Email: " Wang.Fang@Example.COM "},
			[]webchat.Identity{{Kind: "email", Value: "wang.fang@example.com"}}},
		{"contact frame with both", webchat.ClientFrame{Type: "contact", Phone: "15012345678", Email: "a@b.cn"},
			[]webchat.Identity{{Kind: "phone", Value: "+8615012345678"}, {Kind: "email", Value: "a@b.cn"}}},
		{"/phone typed as a message", webchat.ClientFrame{Type: "message", Text: "/phone 186 1234 5678"},
			[]webchat.Identity{{Kind: "phone", Value: "+8618612345678"}}},
		{"/邮箱 typed as a message", webchat.ClientFrame{Type: "message", Text: "/邮箱 li@example.cn"},
			[]webchat.Identity{{Kind: "email", Value: "li@example.cn"}}},
		{"too short a phone", webchat.ClientFrame{Type: "message", Text: "hi", Phone: "12345"}, nil},
		{"letters for a phone", webchat.ClientFrame{Type: "contact", Phone: "call me"}, nil},
		{"bad email", webchat.ClientFrame{Type: "contact", Email: "wang@"}, nil},
	}
	for i, tt := range tests {
		cid := "k" + strconv.Itoa(i)
		f := tt.frame
		f.CID = cid
		c.send(t, f)
		got := c.until(t, func(f webchat.ServerFrame) bool {
			return (f.Type == webchat.FrameAck || f.Type == webchat.FrameError) && f.CID == cid
		})
		res := got[len(got)-1]
		id := "webchat:" + w.Visitor + ":" + cid
		if tt.want == nil {
			if res.Type != webchat.FrameError || res.Code != webchat.CodeInvalid || res.Reason == "" {
				t.Errorf("%s: got %+v, want an invalid error with a reason", tt.name, res)
			}
			for _, e := range b.Events(t, bus.StreamIn, inFilter) {
				if e.ID() == id {
					t.Errorf("%s: refused contact was published", tt.name)
				}
			}
			continue
		}
		if res.Type != webchat.FrameAck {
			t.Errorf("%s: got %+v, want ack", tt.name, res)
			continue
		}
		var e event.Event
		for _, x := range b.Events(t, bus.StreamIn, inFilter) {
			if x.ID() == id {
				e = x
			}
		}
		if e.ID() == "" {
			t.Errorf("%s: no event %s", tt.name, id)
			continue
		}
		mustValid(t, e)
		var d struct {
			Identities []webchat.Identity
			Message    struct{ Type string }
		}
		_ = json.Unmarshal(e.Data(), &d)
		if fmt.Sprint(d.Identities) != fmt.Sprint(tt.want) {
			t.Errorf("%s: identities %v, want %v", tt.name, d.Identities, tt.want)
		}
		if tt.frame.Type == "contact" || strings.HasPrefix(tt.frame.Text, "/") {
			if d.Message.Type != "event" {
				t.Errorf("%s: message type %q, want event (contact_shared)", tt.name, d.Message.Type)
			}
		}
		if tt.want[0].Kind == "phone" && res.Phone != tt.want[0].Value {
			t.Errorf("%s: ack phone %q, want %q", tt.name, res.Phone, tt.want[0].Value)
		}
	}
}

func TestForgedVisitorRejected(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	in := startInstance(t, b, baseEnv())
	victim := "v_0123456789abcdef"
	for _, tt := range []struct {
		name  string
		hello string
		code  websocket.StatusCode
	}{
		{"token of another secret", fmt.Sprintf(`{"type":"hello","visitor":%q,"token":%q}`, victim, webchat.VisitorToken("not-the-secret-0123456789", victim)), webchat.CloseUnauthorized},
		{"token of another visitor", fmt.Sprintf(`{"type":"hello","visitor":%q,"token":%q}`, victim, webchat.VisitorToken(secret, "v_fedcba9876543210")), webchat.CloseUnauthorized},
		{"visitor without token", fmt.Sprintf(`{"type":"hello","visitor":%q}`, victim), websocket.StatusPolicyViolation},
		{"first frame not hello", `{"type":"message","cid":"x","text":"hi"}`, websocket.StatusPolicyViolation},
		{"garbage", `hello?`, websocket.StatusPolicyViolation},
	} {
		c, err := dialRaw(t, in.wsURL(), "")
		if err != nil {
			t.Fatal(err)
		}
		c.sendRaw(t, []byte(tt.hello))
		// Whatever the client sends next is never published.
		_ = c.conn.Write(context.Background(), websocket.MessageText, []byte(`{"type":"message","cid":"after","text":"hi"}`))
		err = c.closeErr(t)
		if got := websocket.CloseStatus(err); got != tt.code {
			t.Errorf("%s: closed with %d (%v), want %d", tt.name, got, err, tt.code)
		}
		var ce websocket.CloseError
		if ok := asCloseError(err, &ce); !ok || ce.Reason == "" {
			t.Errorf("%s: close without a reason: %v", tt.name, err)
		}
	}
	if n := b.StoredCount(t, bus.StreamIn, ">"); n != 0 {
		t.Fatalf("rejected sockets published %d events", n)
	}
}

func TestOversizeFrameClosesSocket(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	env := baseEnv()
	env["WEBCHAT_MAX_FRAME"] = "2048"
	in := startInstance(t, b, env)
	c, _ := dial(t, in, webchat.ClientFrame{})
	big, _ := json.Marshal(webchat.ClientFrame{Type: "message", CID: "big", Text: strings.Repeat("长", 1000)}) // 3000+ bytes
	c.sendRaw(t, big)
	err := c.closeErr(t)
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("closed with %v, want 1009", err)
	}
	var ce websocket.CloseError
	if !asCloseError(err, &ce) || !strings.Contains(ce.Reason, "larger than 2048 bytes") {
		t.Fatalf("close reason %q, want the limit", ce.Reason)
	}
	if n := b.StoredCount(t, bus.StreamIn, ">"); n != 0 {
		t.Fatalf("oversize frame published %d events", n)
	}
	// Over the HTTP API: 413 with the reason.
	req, _ := http.NewRequest(http.MethodPost, in.URL+"/webchat/api/messages", bytes.NewReader(big))
	req.Header.Set(webchat.HeaderVisitor, apiVisitor)
	req.Header.Set(webchat.HeaderToken, webchat.VisitorToken(secret, apiVisitor))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "reason") {
		t.Fatalf("API answered %d %s, want 413 with a reason", resp.StatusCode, body)
	}
}

func TestInvalidFramesAnswered(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	env := baseEnv()
	env["WEBCHAT_MAX_TEXT"] = "10"
	in := startInstance(t, b, env)
	c, _ := dial(t, in, webchat.ClientFrame{})
	for _, raw := range []string{
		`{"type":"message","cid":"a","text":"` + strings.Repeat("字", 11) + `"}`,
		`{"type":"message","cid":"bad cid!","text":"hi"}`,
		`{"type":"message","cid":"b","text":"   "}`,
		`{"type":"poke"}`,
		`{"type":"hello"}`,
		`not json`,
	} {
		c.sendRaw(t, []byte(raw))
		f := c.next(t)
		if f.Type != webchat.FrameError || f.Code != webchat.CodeInvalid || f.Reason == "" {
			t.Errorf("%s: got %+v, want an invalid error with a reason", raw, f)
		}
	}
	// The socket stays usable.
	if ack := c.message(t, "ok", "hi"); ack.Type != webchat.FrameAck {
		t.Fatalf("got %+v after invalid frames, want ack", ack)
	}
	if n := b.StoredCount(t, bus.StreamIn, ">"); n != 1 {
		t.Fatalf("%d events, want only the valid message", n)
	}
}

func TestAgentReplyLiveAndStatuses(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	in := startInstance(t, b, baseEnv())
	c, w := dial(t, in, webchat.ClientFrame{})
	// A second tab of the same visitor gets the reply too.
	c2, _ := dial(t, in, webchat.ClientFrame{Visitor: w.Visitor, Token: w.Token})

	cmd := reply(t, b, w.Visitor, "您的包裹已发出")
	isReply := func(f webchat.ServerFrame) bool { return f.Type == webchat.FrameMsg && f.From == "agent" }
	got := c.until(t, isReply)
	msg := got[len(got)-1]
	if text(msg) != "您的包裹已发出" || msg.Seq == 0 || msg.At == nil {
		t.Fatalf("reply frame %+v", msg)
	}
	if got2 := c2.until(t, isReply); got2[len(got2)-1].Seq != msg.Seq {
		t.Fatalf("second tab got %+v, want seq %d", got2[len(got2)-1], msg.Seq)
	}

	sent := waitStatus(t, b, "webchat:status:"+cmd.ID()+":sent")
	mustValid(t, sent)
	d := data(t, sent)
	if d["status"] != "sent" || d["message_id"] != cmd.ID() || d["conversation_id"] != "0193a4c2-7d7e-7a1b-9c3d-2e4f5a6b7c8d" ||
		d["to"].(map[string]any)["value"] != w.Visitor || d["message"].(map[string]any)["text"] != "您的包裹已发出" {
		t.Errorf("sent status data %v", d)
	}
	if event.CorrelationID(sent) != cmd.ID() || event.PartitionKey(sent) != "web_visitor:"+w.Visitor {
		t.Errorf("sent status correlationid %q partitionkey %q", event.CorrelationID(sent), event.PartitionKey(sent))
	}

	c.send(t, webchat.ClientFrame{Type: webchat.FrameReceipt, Seq: msg.Seq, Status: "delivered"})
	mustValid(t, waitStatus(t, b, "webchat:status:"+cmd.ID()+":delivered"))
	// The visitor reads it after a reconnect: a socket resumed after seq may receipt up to it.
	_ = c.conn.Close(websocket.StatusNormalClosure, "")
	c3, _ := dial(t, in, webchat.ClientFrame{Visitor: w.Visitor, Token: w.Token, Since: msg.Seq})
	c3.send(t, webchat.ClientFrame{Type: webchat.FrameReceipt, Seq: msg.Seq, Status: "read"})
	read := waitStatus(t, b, "webchat:status:"+cmd.ID()+":read")
	if data(t, read)["status"] != "read" {
		t.Errorf("read status %v", data(t, read))
	}
	// Receipts repeated by both tabs add nothing: the cursors already cover them. A receipt
	// beyond what a socket delivered is clamped.
	c2.send(t, webchat.ClientFrame{Type: webchat.FrameReceipt, Seq: msg.Seq, Status: "delivered"})
	c2.send(t, webchat.ClientFrame{Type: webchat.FrameReceipt, Seq: msg.Seq + 1000, Status: "read"})
	c3.send(t, webchat.ClientFrame{Type: webchat.FrameReceipt, Seq: msg.Seq, Status: "read"})
	c2.message(t, "sync", "thanks") // the receipts before it were handled
	c3.message(t, "sync2", "ok")
	if n := b.StoredCount(t, bus.StreamIn, stateFilter); n != 3 {
		t.Fatalf("%d status events, want sent, delivered and read once each", n)
	}
}

func TestUndeliverableCommands(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	startInstance(t, b, baseEnv())
	for _, tt := range []struct {
		name string
		data map[string]any
		code string
	}{
		{"phone recipient", map[string]any{"channel": "webchat", "to": map[string]string{"kind": "phone", "value": "+8613800138000"},
			"message": map[string]any{"type": "text", "text": "hi"}}, "unsupported_recipient"},
		{"not a visitor id", map[string]any{"channel": "webchat", "to": map[string]string{"kind": "web_visitor", "value": "someone"},
			"message": map[string]any{"type": "text", "text": "hi"}}, "unknown_visitor"},
		{"miniprogram", map[string]any{"channel": "webchat", "to": map[string]string{"kind": "web_visitor", "value": "v_0123456789abcdef"},
			"message": map[string]any{"type": "miniprogram", "miniprogram": map[string]any{"appid": "wx1", "pagepath": "p"}}}, "unsupported_message"},
		{"image by media id", map[string]any{"channel": "webchat", "to": map[string]string{"kind": "web_visitor", "value": "v_0123456789abcdef"},
			"message": map[string]any{"type": "image", "media_id": "MEDIA"}}, "unsupported_message"},
	} {
		cmd := command(t, b, tt.data)
		st := waitStatus(t, b, "webchat:status:"+cmd.ID()+":failed")
		mustValid(t, st)
		if d := data(t, st); d["error_code"] != tt.code || d["error"] == "" {
			t.Errorf("%s: status %v, want error_code %s", tt.name, d, tt.code)
		}
	}
	if n := b.StoredCount(t, webchat.LogStream, ">"); n != 0 {
		t.Fatalf("%d undeliverable messages logged", n)
	}
}

func agentTexts(fs []webchat.ServerFrame) []string {
	var out []string
	for _, f := range fs {
		if f.Type == webchat.FrameMsg && f.From == "agent" {
			out = append(out, text(f))
		}
	}
	return out
}

// resumeCheck connects with since, sends a marker message and returns the agent messages that
// arrived before the marker's log entry: exactly what the visitor missed.
func resumeCheck(t *testing.T, in *instance, w webchat.ServerFrame, since uint64) []string {
	t.Helper()
	c, w2 := dial(t, in, webchat.ClientFrame{Visitor: w.Visitor, Token: w.Token, Since: since})
	if w2.Visitor != w.Visitor || w2.Reset {
		t.Fatalf("resumed as %+v", w2)
	}
	c.send(t, webchat.ClientFrame{Type: webchat.FrameMessage, CID: "marker", Text: "back"})
	fs := c.until(t, func(f webchat.ServerFrame) bool { return f.Type == webchat.FrameMsg && f.CID == "marker" })
	seen := map[uint64]bool{}
	for _, f := range fs {
		if f.Type == webchat.FrameMsg {
			if f.Seq <= since || seen[f.Seq] {
				t.Errorf("frame %+v repeats a seq the visitor had (since %d)", f, since)
			}
			seen[f.Seq] = true
		}
	}
	return agentTexts(fs)
}

func TestResumeAfterDisconnect(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	in := startInstance(t, b, baseEnv())
	c, w := dial(t, in, webchat.ClientFrame{})
	c.message(t, "c1", "在吗？")
	reply(t, b, w.Visitor, "在的")
	got := c.until(t, func(f webchat.ServerFrame) bool { return f.Type == webchat.FrameMsg && f.From == "agent" })
	last := got[len(got)-1].Seq
	_ = c.conn.Close(websocket.StatusNormalClosure, "tab closed")

	r1, r2 := reply(t, b, w.Visitor, "第一条"), reply(t, b, w.Visitor, "第二条")
	waitStatus(t, b, "webchat:status:"+r1.ID()+":sent")
	waitStatus(t, b, "webchat:status:"+r2.ID()+":sent")

	if got := resumeCheck(t, in, w, last); fmt.Sprint(got) != "[第一条 第二条]" {
		t.Fatalf("resumed with %q, want exactly the two missed replies in order", got)
	}
	// A page reload (since 0) gets the whole history, both ways.
	c3, _ := dial(t, in, webchat.ClientFrame{Visitor: w.Visitor, Token: w.Token})
	fs := c3.until(t, func(f webchat.ServerFrame) bool { return f.Type == webchat.FrameMsg && f.CID == "marker" })
	if got := agentTexts(fs); fmt.Sprint(got) != "[在的 第一条 第二条]" {
		t.Fatalf("history %q", got)
	}
	if fs[0].Type != webchat.FrameMsg || fs[0].CID != "c1" {
		t.Fatalf("history starts with %+v, want the visitor's first message", fs[0])
	}
}

func TestResumeAcrossConnectorRestart(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	first := startInstance(t, b, baseEnv())
	c, w := dial(t, first, webchat.ClientFrame{})
	ack := c.message(t, "c1", "hello")

	// The connector stops: the socket is closed with 1001 so the widget reconnects at once.
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}
	if st := websocket.CloseStatus(c.closeErr(t)); st != websocket.StatusGoingAway {
		t.Fatalf("socket closed with %d on shutdown, want 1001", st)
	}
	// Replies sent while no connector runs wait in OMNI_OUT.
	r1, r2 := reply(t, b, w.Visitor, "one"), reply(t, b, w.Visitor, "two")

	second := startInstance(t, b, baseEnv())
	// The new instance takes them from OMNI_OUT into the visitor's log (their "sent" statuses
	// say so) before the visitor comes back; otherwise the resume marker could land first.
	waitStatus(t, b, "webchat:status:"+r1.ID()+":sent")
	waitStatus(t, b, "webchat:status:"+r2.ID()+":sent")
	if got := resumeCheck(t, second, w, ack.Seq); fmt.Sprint(got) != "[one two]" {
		t.Fatalf("resumed with %q after a restart, want [one two]", got)
	}
}

func TestReplicasShareVisitors(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	a, z := startInstance(t, b, baseEnv()), startInstance(t, b, baseEnv())
	ca, w := dial(t, a, webchat.ClientFrame{})
	cz, _ := dial(t, z, webchat.ClientFrame{Visitor: w.Visitor, Token: w.Token})
	for i := range 4 { // whichever replica consumes a command, both sockets get it
		reply(t, b, w.Visitor, "r"+strconv.Itoa(i))
	}
	isLast := func(f webchat.ServerFrame) bool { return f.Type == webchat.FrameMsg && text(f) == "r3" }
	if got := agentTexts(ca.until(t, isLast)); fmt.Sprint(got) != "[r0 r1 r2 r3]" {
		t.Errorf("replica A socket got %q", got)
	}
	if got := agentTexts(cz.until(t, isLast)); fmt.Sprint(got) != "[r0 r1 r2 r3]" {
		t.Errorf("replica B socket got %q", got)
	}
	// A message through replica B shows on the socket at replica A.
	ack := cz.message(t, "from-b", "hi")
	echo := ca.until(t, func(f webchat.ServerFrame) bool { return f.Type == webchat.FrameMsg && f.CID == "from-b" })
	if echo[len(echo)-1].Seq != ack.Seq {
		t.Errorf("echo seq %d, ack seq %d", echo[len(echo)-1].Seq, ack.Seq)
	}
}

func TestResendDeduplicated(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	in := startInstance(t, b, baseEnv())
	c, w := dial(t, in, webchat.ClientFrame{})
	a1 := c.message(t, "same", "你好")
	a2 := c.message(t, "same", "你好")
	// The widget reconnects and resends its outbox.
	_ = c.conn.Close(websocket.StatusNormalClosure, "")
	c2, _ := dial(t, in, webchat.ClientFrame{Visitor: w.Visitor, Token: w.Token, Since: a1.Seq})
	a3 := c2.message(t, "same", "你好")
	if a1.Type != webchat.FrameAck || a1.Seq != a2.Seq || a1.Seq != a3.Seq {
		t.Fatalf("acks %+v %+v %+v, want one seq", a1, a2, a3)
	}
	if n := b.StoredCount(t, bus.StreamIn, inFilter); n != 1 {
		t.Fatalf("one client message sent 3 times stored %d times", n)
	}
	if n := b.StoredCount(t, webchat.LogStream, ">"); n != 1 {
		t.Fatalf("one client message logged %d times", n)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	env := baseEnv()
	env["WEBCHAT_BURST"], env["WEBCHAT_RATE_PER_MINUTE"] = "2", "1"
	in := startInstance(t, b, env)
	c, w := dial(t, in, webchat.ClientFrame{})
	for i := range 2 {
		if a := c.message(t, "m"+strconv.Itoa(i), "hi"); a.Type != webchat.FrameAck {
			t.Fatalf("message %d: %+v", i, a)
		}
	}
	// A second tab shares the visitor's bucket.
	c2, _ := dial(t, in, webchat.ClientFrame{Visitor: w.Visitor, Token: w.Token})
	got := c2.message(t, "m2", "hi")
	if got.Type != webchat.FrameError || got.Code != webchat.CodeRateLimited || got.RetryAfterMS <= 0 {
		t.Fatalf("third message got %+v, want rate_limited with retry_after_ms", got)
	}
	if n := b.StoredCount(t, bus.StreamIn, inFilter); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
}

func TestOriginChecked(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	env := baseEnv()
	env["WEBCHAT_ALLOWED_ORIGINS"] = "*.shop.example, https://brand.example.cn"
	in := startInstance(t, b, env)
	for origin, ok := range map[string]bool{
		"https://www.shop.example":  true,
		"http://m.shop.example":     true,
		"https://brand.example.cn":  true,
		"http://brand.example.cn":   false,
		"https://evil.example":      false,
		"https://shop.example.evil": false,
		in.URL:                      true, // the connector's own pages (the demo)
	} {
		c, err := dialRaw(t, in.wsURL(), origin)
		if ok != (err == nil) {
			t.Errorf("origin %s: dial error %v, want allowed=%v", origin, err, ok)
		}
		if !ok && err != nil && !strings.Contains(err.Error(), "403") {
			t.Errorf("origin %s refused with %v, want 403", origin, err)
		}
		if c != nil {
			_ = c.conn.Close(websocket.StatusNormalClosure, "")
		}
	}
}

func TestHostSignedIdentity(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	const hostSecret = "host-site-secret-0123456789"
	env := baseEnv()
	env["WEBCHAT_IDENTITY_SECRET"] = hostSecret
	in := startInstance(t, b, env)
	ts := time.Now().Unix()
	good := &webchat.HostIdentity{Kind: "member_id", Value: "M-10086", TS: ts, Sig: webchat.SignHostIdentity(hostSecret, "member_id", "M-10086", ts)}
	c, w := dial(t, in, webchat.ClientFrame{Identity: good})
	c.message(t, "c1", "hi", withPhone("13800138000"))
	e := b.Events(t, bus.StreamIn, inFilter)[0]
	var d struct{ Identities []webchat.Identity }
	_ = json.Unmarshal(e.Data(), &d)
	if fmt.Sprint(d.Identities) != "[{phone +8613800138000} {member_id M-10086}]" {
		t.Fatalf("identities %v", d.Identities)
	}
	old := ts - int64((25 * time.Hour).Seconds())
	for name, id := range map[string]*webchat.HostIdentity{
		"forged":  {Kind: "member_id", Value: "M-1", TS: ts, Sig: webchat.SignHostIdentity("guess", "member_id", "M-1", ts)},
		"stale":   {Kind: "member_id", Value: "M-10086", TS: old, Sig: webchat.SignHostIdentity(hostSecret, "member_id", "M-10086", old)},
		"kind":    {Kind: "wechat_openid", Value: "o1", TS: ts, Sig: webchat.SignHostIdentity(hostSecret, "wechat_openid", "o1", ts)},
		"altered": {Kind: "member_id", Value: "M-10087", TS: ts, Sig: good.Sig},
	} {
		c, err := dialRaw(t, in.wsURL(), "")
		if err != nil {
			t.Fatal(err)
		}
		c.send(t, webchat.ClientFrame{Type: webchat.FrameHello, Visitor: w.Visitor, Token: w.Token, Identity: id})
		if st := websocket.CloseStatus(c.closeErr(t)); st != webchat.CloseIdentity {
			t.Errorf("%s identity: closed with %d, want %d", name, st, webchat.CloseIdentity)
		}
	}
}

func TestHTTPAPI(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	in := startInstance(t, b, baseEnv())
	do := func(method, path, body, token string) (int, map[string]any) {
		req, _ := http.NewRequest(method, in.URL+path, strings.NewReader(body))
		req.Header.Set(webchat.HeaderVisitor, apiVisitor)
		req.Header.Set(webchat.HeaderToken, token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	tok := webchat.VisitorToken(secret, apiVisitor)
	if code, m := do("POST", "/webchat/api/messages", `{"type":"message","cid":"h1","text":"hi","phone":"13800138000"}`, tok); code != 200 || m["phone"] != "+8613800138000" {
		t.Fatalf("POST: %d %v", code, m)
	}
	reply(t, b, apiVisitor, "welcome")
	var page map[string]any
	bustest.WaitFor(t, wait, "reply in the log", func() bool {
		_, page = do("GET", "/webchat/api/messages?since=0", "", tok)
		msgs, _ := page["messages"].([]any)
		return len(msgs) == 2
	})
	msgs := page["messages"].([]any)
	if m := msgs[1].(map[string]any); m["from"] != "agent" || m["seq"].(float64) != page["last"].(float64) {
		t.Fatalf("page %v", page)
	}
	if code, m := do("GET", "/webchat/api/messages?since="+strconv.FormatFloat(page["last"].(float64), 'f', 0, 64), "", tok); code != 200 || len(m["messages"].([]any)) != 0 {
		t.Fatalf("GET after last: %d %v", code, m)
	}
	for _, tt := range []struct {
		method, path, body, token string
		want                      int
	}{
		{"GET", "/webchat/api/messages", "", "00", http.StatusUnauthorized},
		{"GET", "/webchat/api/messages?since=x", "", tok, http.StatusBadRequest},
		{"GET", "/webchat/api/messages?limit=1000", "", tok, http.StatusBadRequest},
		{"POST", "/webchat/api/messages", `{"type":"receipt","seq":1,"status":"read"}`, tok, http.StatusBadRequest},
		{"POST", "/webchat/api/messages", `{"type":"message","cid":"h2","text":"hi","phone":"1"}`, tok, http.StatusBadRequest},
	} {
		if code, m := do(tt.method, tt.path, tt.body, tt.token); code != tt.want || m["reason"] == "" {
			t.Errorf("%s %s %s: %d %v, want %d with a reason", tt.method, tt.path, tt.body, code, m, tt.want)
		}
	}
}

func TestAssets(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	in := startInstance(t, b, baseEnv())
	for path, want := range map[string]string{
		"/webchat/":           `<script src="widget.js"`,
		"/webchat/widget.js":  "OmnibusWebchat",
		"/webchat/widget.css": ".obwc-launcher",
	} {
		resp, err := http.Get(in.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", path)
		}
	}
	resp, err := http.Get(in.URL + "/webchat/missing.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing asset answered %d", resp.StatusCode)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	for name, tt := range map[string]struct {
		env  map[string]string
		want string
	}{
		"no secret":    {map[string]string{}, "WEBCHAT_SECRET is required"},
		"short secret": {map[string]string{"WEBCHAT_SECRET": "short"}, "at least 16"},
		"bad region":   {map[string]string{"WEBCHAT_SECRET": secret, "WEBCHAT_PHONE_REGION": "XX"}, "WEBCHAT_PHONE_REGION"},
		"bad origin":   {map[string]string{"WEBCHAT_SECRET": secret, "WEBCHAT_ALLOWED_ORIGINS": "https://a.example/"}, "trailing /"},
		"text cap":     {map[string]string{"WEBCHAT_SECRET": secret, "WEBCHAT_MAX_TEXT": "20000"}, "WEBCHAT_MAX_TEXT"},
	} {
		err := webchat.Service().Run(context.Background(), serviceDeps(b, tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Run = %v, want an error mentioning %q", name, err, tt.want)
		}
	}
}

func asCloseError(err error, ce *websocket.CloseError) bool { return errors.As(err, ce) }
