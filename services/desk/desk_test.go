package desk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// lastEvent returns the last event stored in stream on subject (a literal subject), or fails.
func lastEvent(t *testing.T, b *bustest.Bundle, stream, subject string) event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := b.Client.JetStream().Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatalf("no message on %s %s: %v", stream, subject, err)
	}
	e, err := event.Decode(m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func waitCount(t *testing.T, b *bustest.Bundle, stream, filter string, n uint64) {
	t.Helper()
	bustest.WaitFor(t, 15*time.Second, filter+" stored", func() bool { return b.StoredCount(t, stream, filter) >= n })
}

func TestAPIAuth(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	other := newIdP(t)
	past := time.Now().Add(-2 * time.Hour).Unix()
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"no token", "", 401},
		{"wrong audience", d.idp.token(t, "agent-li", []string{"agent"}, func(c map[string]any) { c["aud"] = "another-app" }), 401},
		{"expired", d.idp.token(t, "agent-li", []string{"agent"}, func(c map[string]any) { c["exp"], c["iat"] = past, past-60 }), 401},
		{"wrong issuer", d.idp.token(t, "agent-li", []string{"agent"}, func(c map[string]any) { c["iss"] = other.url }), 401},
		{"bad signature", other.token(t, "agent-li", []string{"agent"}, func(c map[string]any) { c["iss"] = d.idp.url }), 401},
		{"no desk role", d.idp.token(t, "agent-li", []string{"viewer"}, nil), 401},
		{"valid", d.token, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/api/conversations", "/api/agents", "/api/me", "/api/alerts"} {
				var body map[string]any
				if got := d.call(t, tc.token, "GET", path, nil, &body); got != tc.want {
					t.Fatalf("GET %s = %d %v, want %d", path, got, body, tc.want)
				}
			}
		})
	}
	if got := d.call(t, "", "GET", "/api/openapi.json", nil, nil); got != 200 {
		t.Errorf("openapi.json is public: got %d", got)
	}
	// A browser without a session is sent to the login page.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(d.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/desk/login") {
		t.Errorf("GET / without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The icon every page asks for, without a session.
	resp, err = http.Get(d.url + "/favicon.ico")
	if err != nil {
		t.Fatal(err)
	}
	icon, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !bytes.HasPrefix(icon, []byte("<svg")) {
		t.Errorf("GET /favicon.ico: %d %s %.40q", resp.StatusCode, resp.Header.Get("Content-Type"), icon)
	}
}

func TestProjection(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	w := newWorld(t, b)
	w.customer("张伟", map[string]any{"vip_level": "gold", "company": "示例科技"})
	w.opened("wechatkf")
	m1 := w.inbound("wechatkf", "wechat_openid", "oWx-zhangwei", "你好，我想查询一下订单的物流", w.t0.Add(time.Second), "wechatkf")
	w.inbound("sms", "phone", "+8613800138000", "SF1234567890123", w.t0.Add(2*time.Second), "wechatkf", "sms")
	w.toolResult("crm", "lookup", "completed", "corr-1", map[string]any{"customer_id": w.cust, "query": map[string]string{"kind": "phone", "value": "+8613800138000"},
		"provider": "salesforce", "found": true, "profile": map[string]string{"company": "示例科技"}}, w.t0.Add(3*time.Second))

	var list struct{ Conversations []store.Conversation }
	bustest.WaitFor(t, 15*time.Second, "the conversation in the inbox with both channels", func() bool {
		d.call(t, d.token, "GET", "/api/conversations", nil, &list)
		return len(list.Conversations) == 1 && list.Conversations[0].Unread == 2 && len(list.Conversations[0].Channels) == 2
	})
	c := list.Conversations[0]
	if c.ID != w.conv || c.CustomerName != "张伟" || c.CurrentChannel != "sms" || c.LastPreview != "SF1234567890123" ||
		c.WaitingSince == nil || !c.WaitingSince.Equal(w.t0.Add(time.Second)) || c.Language != "zh" {
		t.Fatalf("inbox row %+v", c)
	}
	for q, want := range map[string]int{"channel=sms": 1, "channel=webchat": 0, "status=closed": 0, "assignee=none": 1, "assignee=me": 0} {
		var l struct{ Conversations []store.Conversation }
		if code := d.call(t, d.token, "GET", "/api/conversations?"+q, nil, &l); code != 200 || len(l.Conversations) != want {
			t.Errorf("?%s: %d, %d rows, want %d", q, code, len(l.Conversations), want)
		}
	}
	if code := d.call(t, d.token, "GET", "/api/conversations?status=bogus", nil, nil); code != 400 {
		t.Errorf("bad status filter: %d", code)
	}

	var tl struct{ Items []store.TimelineItem }
	bustest.WaitFor(t, 10*time.Second, "the tool result on the timeline", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &tl)
		return len(tl.Items) == 3
	})
	if tl.Items[0].Kind != "message" || tl.Items[0].Message.EventID != m1 || tl.Items[1].Message.Channel != "sms" || tl.Items[2].Kind != "tool_result" {
		t.Fatalf("timeline %+v", tl.Items)
	}

	// Reply addresses come from the inbound messages on OMNI_IN, a consumer of its own that may
	// trail the desk events: wait for both before checking the 360.
	var cu store.Customer
	bustest.WaitFor(t, 10*time.Second, "both reply channels on the customer 360", func() bool {
		cu = store.Customer{}
		return d.call(t, d.token, "GET", "/api/customers/"+w.cust, nil, &cu) == 200 && len(cu.ReplyChannels) == 2
	})
	if cu.DisplayName != "张伟" || !strings.Contains(string(cu.Identities), "+86 138****8000") || !strings.Contains(string(cu.Profile), "gold") ||
		cu.CRM == nil || len(cu.Conversations) != 1 || strings.Join(cu.ReplyChannels, ",") != "sms,wechatkf" {
		t.Fatalf("customer 360 %+v", cu)
	}
	if strings.Contains(string(mustJSON(t, cu)), "oWx-zhangwei") {
		t.Fatal("the customer 360 leaks a raw identity")
	}

	// An outbound message first seen through its status, then delivered.
	out := uuid.NewString()
	w.publish("omni.desk.message.added", "omni.desk.message.added", map[string]any{
		"message": map[string]any{"event_id": out, "conversation_id": w.conv, "customer_id": w.cust, "channel": "sms", "direction": "outbound",
			"to": map[string]string{"kind": "phone", "masked": "+86 138****8000", "source": "sms"}, "body": map[string]any{"type": "text", "text": "已为您查询"},
			"sent_at": w.t0.Add(4 * time.Second), "status": "sent"},
		"conversation": w.convView(w.conv, w.cust, "open", []string{"wechatkf", "sms"}, w.t0, w.t0.Add(4*time.Second)),
		"customer":     map[string]any{"id": w.cust}})
	w.publish("omni.desk.message.updated", "omni.desk.message.updated", map[string]any{"message_id": out, "conversation_id": w.conv,
		"channel": "sms", "status": "delivered", "at": w.t0.Add(5 * time.Second)})
	// A late "sent" never overwrites "delivered".
	w.publish("omni.desk.message.updated", "omni.desk.message.updated", map[string]any{"message_id": out, "conversation_id": w.conv,
		"channel": "sms", "status": "sent", "at": w.t0.Add(6 * time.Second)})
	var msgs struct{ Messages []store.Message }
	bustest.WaitFor(t, 10*time.Second, "the delivered outbound message", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/messages", nil, &msgs)
		return len(msgs.Messages) == 3 && msgs.Messages[2].Status == "delivered"
	})
	time.Sleep(200 * time.Millisecond) // let the late status land
	d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/messages", nil, &msgs)
	if msgs.Messages[2].Status != "delivered" {
		t.Fatalf("status regressed to %q", msgs.Messages[2].Status)
	}
	var after store.Conversation
	d.call(t, d.token, "GET", "/api/conversations/"+w.conv, nil, &after)
	if after.WaitingSince != nil || after.Unread != 0 || after.LastDirection != "outbound" {
		t.Fatalf("after the reply: %+v", after)
	}

	// Closed: the header follows.
	w.publish("omni.desk.conversation.closed", "omni.desk.conversation.closed", map[string]any{
		"conversation": w.convView(w.conv, w.cust, "closed", []string{"wechatkf", "sms"}, w.t0, w.t0.Add(7*time.Second)), "reason": "closed by agent"})
	bustest.WaitFor(t, 10*time.Second, "the conversation closed", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv, nil, &after)
		return after.Status == "closed"
	})
	if code := d.call(t, d.token, "GET", "/api/conversations/"+uuid.NewString(), nil, nil); code != 404 {
		t.Errorf("unknown conversation: %d", code)
	}
	if code := d.call(t, d.token, "GET", "/api/conversations/not-a-uuid", nil, nil); code != 400 {
		t.Errorf("bad id: %d", code)
	}

	// The CRM names the customer: its name wins over the channel nickname in the inbox, the
	// header and the 360° panel.
	w.customer("张伟", map[string]any{"name": "黄杰", "vip_level": "gold"})
	bustest.WaitFor(t, 10*time.Second, "the CRM's name on the conversation", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv, nil, &after)
		return after.CustomerName == "黄杰"
	})
	var named store.Customer
	if d.call(t, d.token, "GET", "/api/customers/"+w.cust, nil, &named); named.DisplayName != "黄杰" {
		t.Errorf("360° panel name %q, want the CRM's", named.DisplayName)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMergeAndUnmerge(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	a := newWorld(t, b)
	a.customer("张伟", nil)
	a.opened("wechatkf")
	a.inbound("wechatkf", "wechat_openid", "oWx-a", "你好", a.t0.Add(time.Second), "wechatkf")
	x := newWorld(t, b)
	x.t0 = a.t0
	x.customer("", nil)
	x.opened("sms")
	mx := x.inbound("sms", "phone", "+8613800138000", "我是张伟", a.t0.Add(2*time.Second), "sms")
	bustest.WaitFor(t, 10*time.Second, "two conversations", func() bool {
		var l struct{ Conversations []store.Conversation }
		d.call(t, d.token, "GET", "/api/conversations", nil, &l)
		return len(l.Conversations) == 2
	})
	mergeID := uuid.NewString()
	view := map[string]any{"id": a.cust, "display_name": "张伟", "created_at": a.t0, "profile": map[string]any{}, "profile_sources": map[string]any{},
		"identities": []map[string]string{{"kind": "wechat_openid", "masked": "oW…a", "source": "wechatkf"}, {"kind": "phone", "masked": "+86 138****8000", "source": "sms"}}}
	a.publish("omni.desk.customer.merged", "omni.desk.customer.merged", map[string]any{"merge_id": mergeID, "from_id": x.cust, "into_id": a.cust,
		"reason": "identity link via sms message", "event_id": mx, "at": a.t0.Add(3 * time.Second), "moved_identities": 1, "moved_conversations": 1, "customer": view})
	var msgs struct{ Messages []store.Message }
	bustest.WaitFor(t, 10*time.Second, "the SMS message moved into the WeChat conversation", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+a.conv+"/messages", nil, &msgs)
		return len(msgs.Messages) == 2
	})
	var merged store.Conversation
	d.call(t, d.token, "GET", "/api/conversations/"+x.conv, nil, &merged)
	if merged.Status != "merged" || merged.CustomerID != a.cust {
		t.Fatalf("merged conversation %+v", merged)
	}
	var cu store.Customer
	d.call(t, d.token, "GET", "/api/customers/"+x.cust, nil, &cu)
	if cu.ID != a.cust || cu.MergedInto != a.cust {
		t.Fatalf("the merged customer does not lead to the survivor: %+v", cu)
	}

	a.publish("omni.desk.customer.unmerged", "omni.desk.customer.unmerged", map[string]any{"merge_id": mergeID, "from_id": x.cust, "into_id": a.cust,
		"reason": "wrong merge", "event_id": uuid.NewString(), "at": a.t0.Add(4 * time.Second),
		"customers": []any{map[string]any{"id": x.cust, "created_at": a.t0, "profile": map[string]any{}, "profile_sources": map[string]any{}, "identities": []any{}}, view}})
	bustest.WaitFor(t, 10*time.Second, "the SMS conversation back", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+x.conv, nil, &merged)
		return merged.Status == "open" && merged.CustomerID == x.cust
	})
	d.call(t, d.token, "GET", "/api/conversations/"+x.conv+"/messages", nil, &msgs)
	if len(msgs.Messages) != 1 || msgs.Messages[0].Channel != "sms" {
		t.Fatalf("messages after unmerge %+v", msgs.Messages)
	}
}

func TestEventStream(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	notices := stream(t, d, d.token)
	next := func(what string, match func(map[string]any) bool) map[string]any {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case n, ok := <-notices:
				if !ok {
					t.Fatalf("stream ended before %s", what)
				}
				if match(n) {
					return n
				}
			case <-deadline:
				t.Fatalf("no %s on the stream", what)
			}
		}
	}
	next("hello", func(n map[string]any) bool { return n["type"] == "desk.hello" && n["agent_id"] == "agent-li" })
	w := newWorld(t, b)
	w.opened("webchat")
	w.inbound("webchat", "web_visitor", "v_8f21", "Hi, where is my parcel?", w.t0.Add(time.Second), "webchat")
	n := next("the new message", func(n map[string]any) bool { return n["type"] == "omni.desk.message.added" })
	row, _ := n["data"].(map[string]any)
	if n["conversation_id"] != w.conv || row["last_preview"] != "Hi, where is my parcel?" || row["unread"] != float64(1) {
		t.Fatalf("notice %v", n)
	}
}

func TestReplyToolsAndCommands(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	w := newWorld(t, b)
	w.customer("张伟", nil)
	w.opened("wechatkf")
	w.inbound("wechatkf", "wechat_openid", "oWx-zhangwei", "我的快递 SF1234567890123 到哪了", w.t0.Add(time.Second), "wechatkf")
	base := "/api/conversations/" + w.conv
	bustest.WaitFor(t, 15*time.Second, "the reply address", func() bool {
		var cu store.Customer
		d.call(t, d.token, "GET", "/api/customers/"+w.cust, nil, &cu)
		return len(cu.ReplyChannels) == 1
	})

	// Reply on the current channel: the raw identity the customer wrote from, and the account.
	var r map[string]any
	if code := d.call(t, d.token, "POST", base+"/reply", map[string]any{"text": "您好，我来帮您查询"}, &r); code != 202 {
		t.Fatalf("reply: %d %v", code, r)
	}
	waitCount(t, b, bus.StreamOut, "omni.out.wechatkf.message.send", 1)
	send := lastEvent(t, b, bus.StreamOut, "omni.out.wechatkf.message.send")
	data := dataOf(t, send)
	to, _ := data["to"].(map[string]any)
	msg, _ := data["message"].(map[string]any)
	if send.ID() != r["message_id"] || to["kind"] != "wechat_openid" || to["value"] != "oWx-zhangwei" || data["account"] != "wk_acct" ||
		data["conversation_id"] != w.conv || data["agent_id"] != "agent-li" || msg["text"] != "您好，我来帮您查询" {
		t.Fatalf("send command %s %v", send.ID(), data)
	}
	var msgs struct{ Messages []store.Message }
	d.call(t, d.token, "GET", base+"/messages", nil, &msgs)
	if len(msgs.Messages) != 2 || msgs.Messages[1].Status != "pending" || msgs.Messages[1].EventID != send.ID() {
		t.Fatalf("pending reply not on the timeline: %+v", msgs.Messages)
	}
	// Replying claimed the unassigned conversation, said so on the bus, and only once.
	var claimed store.Conversation
	if d.call(t, d.token, "GET", base, nil, &claimed); claimed.Assignee != "agent-li" {
		t.Fatalf("after replying to an unassigned conversation, assignee %q", claimed.Assignee)
	}
	if ch := dataOf(t, lastEvent(t, b, bus.StreamDesk, "omni.desk.assignment.changed")); ch["agent_id"] != "agent-li" || ch["rule"] != "claimed" || ch["by"] != "agent-li" {
		t.Fatalf("assignment %v", ch)
	}
	if code := d.call(t, d.token, "POST", base+"/reply", map[string]any{"text": "稍等"}, nil); code != 202 {
		t.Fatalf("second reply: %d", code)
	}
	waitCount(t, b, bus.StreamOut, "omni.out.wechatkf.message.send", 2)
	waitCount(t, b, bus.StreamDesk, "omni.desk.assignment.changed", 1)
	for name, tc := range map[string]struct {
		body any
		want int
	}{
		"no address on sms": {map[string]any{"text": "hi", "channel": "sms"}, 409},
		"empty text":        {map[string]any{"text": "  "}, 400},
		"unknown field":     {map[string]any{"text": "hi", "html": "<b>"}, 400},
		"bad channel":       {map[string]any{"text": "hi", "channel": "../x"}, 400},
	} {
		if code := d.call(t, d.token, "POST", base+"/reply", tc.body, nil); code != tc.want {
			t.Errorf("%s: %d, want %d", name, code, tc.want)
		}
	}
	if n := b.StoredCount(t, bus.StreamOut, "omni.out.>"); n != 2 {
		t.Fatalf("rejected replies published something: %d commands, want the 2 replies", n)
	}

	// Tool requests: correlationid = own id, conversation in the data.
	if code := d.call(t, d.token, "POST", base+"/tools/logistics/route", map[string]any{"tracking_number": "SF1234567890123"}, &r); code != 202 {
		t.Fatalf("tool request: %d %v", code, r)
	}
	req := lastEvent(t, b, bus.StreamTool, "omni.tool.logistics.route.requested")
	rd := dataOf(t, req)
	if req.ID() != r["request_id"] || event.CorrelationID(req) != req.ID() || rd["conversation_id"] != w.conv || rd["customer_id"] != w.cust ||
		rd["tracking_number"] != "SF1234567890123" || rd["agent_id"] != "agent-li" {
		t.Fatalf("tool request %v %v", req, rd)
	}
	if code := d.call(t, d.token, "POST", base+"/tools/ai/suggest", nil, &r); code != 202 {
		t.Fatalf("ai suggest: %d %v", code, r)
	}
	ai := dataOf(t, lastEvent(t, b, bus.StreamTool, "omni.tool.ai.suggest.requested"))
	if ctx, _ := ai["context"].([]any); len(ctx) != 3 || ai["language"] != "zh" { // the customer and the two replies
		t.Fatalf("ai request context %v", ai)
	}
	// A conversation whose first message the desk has not projected yet: 409 and Retry-After,
	// not the schema's 400 (the agent presses again a moment later).
	quiet := newWorld(t, b)
	quiet.opened("sms")
	bustest.WaitFor(t, 10*time.Second, "the conversation without messages", func() bool {
		return d.call(t, d.token, "GET", "/api/conversations/"+quiet.conv, nil, nil) == 200
	})
	if code := d.call(t, d.token, "POST", "/api/conversations/"+quiet.conv+"/tools/ai/suggest", nil, &r); code != 409 {
		t.Fatalf("ai suggest without messages: %d %v, want 409", code, r)
	}
	for name, tc := range map[string]struct {
		path string
		body any
		want int
	}{
		"bad tracking number": {"/tools/logistics/route", map[string]any{"tracking_number": "SF 1; drop"}, 400},
		"missing subject":     {"/tools/ticket/create", map[string]any{}, 400},
		"unknown tool":        {"/tools/teleport/now", map[string]any{}, 404},
		"bad tool token":      {"/tools/Logistics/route", map[string]any{}, 400},
	} {
		if code := d.call(t, d.token, "POST", base+tc.path, tc.body, nil); code != tc.want {
			t.Errorf("%s: %d, want %d", name, code, tc.want)
		}
	}
	if n := b.StoredCount(t, bus.StreamTool, "omni.tool.>"); n != 2 {
		t.Fatalf("tool requests stored: %d, want 2 (rejected ones publish nothing)", n)
	}
	var tl struct{ Items []store.TimelineItem }
	bustest.WaitFor(t, 10*time.Second, "the tool requests on the timeline", func() bool {
		d.call(t, d.token, "GET", base+"/timeline", nil, &tl)
		n := 0
		for _, it := range tl.Items {
			if it.Kind == "tool_request" {
				n++
			}
		}
		return n == 2
	})

	// Close and reopen go to the unifier as commands.
	if code := d.call(t, d.token, "POST", base+"/close", map[string]any{"reason": "resolved"}, &r); code != 202 {
		t.Fatalf("close: %d", code)
	}
	cmd := lastEvent(t, b, bus.StreamIn, "omni.in.desk.conversation."+partitionOf(w.conv))
	if cmd.Type() != "omni.conversation.close.requested" || dataOf(t, cmd)["reason"] != "resolved" {
		t.Fatalf("close command %v %v", cmd.Type(), dataOf(t, cmd))
	}
	if code := d.call(t, d.token, "POST", base+"/reopen", nil, &r); code != 202 {
		t.Fatalf("reopen: %d", code)
	}
}

func partitionOf(key string) string {
	s := bus.PartitionedSubject("omni.in.desk.conversation", key)
	return s[strings.LastIndex(s, ".")+1:]
}

func TestAssignment(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, nil)
	w := newWorld(t, b)
	w.customer("张伟", nil)
	w.opened("wechatkf")
	w.inbound("wechatkf", "wechat_openid", "oWx-zhangwei", "我的快递到哪了", w.t0.Add(time.Second), "wechatkf")
	var c store.Conversation
	bustest.WaitFor(t, 15*time.Second, "an assignee", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv, nil, &c)
		return c.Assignee != ""
	})
	first := lastEvent(t, b, bus.StreamDesk, "omni.desk.assignment.changed")
	if a := dataOf(t, first); a["agent_id"] != c.Assignee || a["by"] != "desk" || a["conversation_id"] != w.conv {
		t.Fatalf("assignment event %v for assignee %s", a, c.Assignee)
	}

	// The customer comes back after the conversation closed: sticky to the same agent.
	w.publish("omni.desk.conversation.closed", "omni.desk.conversation.closed", map[string]any{
		"conversation": w.convView(w.conv, w.cust, "closed", []string{"wechatkf"}, w.t0, w.t0.Add(time.Minute)), "reason": "idle"})
	prev := w.conv
	w.conv = uuid.NewString()
	w.publish("omni.desk.conversation.opened", "omni.desk.conversation.opened", map[string]any{"conversation": func() map[string]any {
		v := w.convView(w.conv, w.cust, "open", []string{"sms"}, w.t0.Add(2*time.Minute), w.t0.Add(2*time.Minute))
		v["previous_id"] = prev
		return v
	}()})
	w.inbound("sms", "phone", "+8613800138000", "I want a refund", w.t0.Add(2*time.Minute), "sms")
	var c2 store.Conversation
	bustest.WaitFor(t, 15*time.Second, "the returning customer assigned", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv, nil, &c2)
		return c2.Assignee != ""
	})
	if c2.Assignee != c.Assignee {
		t.Fatalf("returning customer went to %s, want %s (sticky)", c2.Assignee, c.Assignee)
	}
	var tl struct{ Items []store.TimelineItem }
	d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &tl)
	if a := lastAssignment(tl.Items); a == nil || a.Rule != "sticky" {
		t.Fatalf("want a sticky assignment on the timeline, got %+v", a)
	}

	// Transfer: only the assignee or a supervisor.
	intruder := d.idp.token(t, "agent-zhao", []string{"agent"}, nil)
	if c2.Assignee != "agent-zhao" {
		if code := d.call(t, intruder, "POST", "/api/conversations/"+w.conv+"/assign", map[string]any{"agent_id": "agent-zhao"}, nil); code != 403 {
			t.Errorf("transfer by another agent: %d, want 403", code)
		}
	}
	var ch store.AssignmentChanged
	if code := d.call(t, d.super, "POST", "/api/conversations/"+w.conv+"/assign", map[string]any{"agent_id": "agent-emma", "note": "customer writes English"}, &ch); code != 200 {
		t.Fatalf("transfer: %d", code)
	}
	if ch.Rule != "transfer" || ch.AgentID != "agent-emma" || ch.PreviousAgentID != c2.Assignee || ch.By != "supervisor-wang" {
		t.Fatalf("transfer %+v", ch)
	}
	if code := d.call(t, d.super, "POST", "/api/conversations/"+w.conv+"/assign", map[string]any{"agent_id": "nobody"}, nil); code != 400 {
		t.Errorf("transfer to an unknown agent: %d", code)
	}
	var agents struct{ Agents []store.AgentLoad }
	d.call(t, d.token, "GET", "/api/agents", nil, &agents)
	for _, a := range agents.Agents {
		if a.ID == "agent-emma" && a.Load != 1 {
			t.Errorf("agent-emma load %d, want 1", a.Load)
		}
	}

	// Agents: a supervisor creates one (an event), an agent cannot.
	var ag store.Agent
	if code := d.call(t, d.super, "PUT", "/api/agents/agent-new", map[string]any{"name": "New", "languages": []string{"en"}, "capacity": 2}, &ag); code != 200 || !ag.Active {
		t.Fatalf("create agent: %d %+v", code, ag)
	}
	if e := lastEvent(t, b, bus.StreamDesk, "omni.desk.agent.updated"); dataOf(t, e)["by"] != "supervisor-wang" {
		t.Fatalf("agent event %v", dataOf(t, e))
	}
	if code := d.call(t, d.token, "PUT", "/api/agents/agent-other", map[string]any{"name": "x"}, nil); code != 403 {
		t.Errorf("agent creating an agent: %d", code)
	}
	if code := d.call(t, d.token, "PUT", "/api/agents/agent-li", map[string]any{"active": false}, &ag); code != 200 || ag.Active {
		t.Errorf("agent going away: %d %+v", code, ag)
	}
}

func lastAssignment(items []store.TimelineItem) *store.AssignmentEntry {
	var a *store.AssignmentEntry
	for _, it := range items {
		if it.Kind == "assignment" {
			a = it.Assignment
		}
	}
	return a
}

// TestRebuildFromTheLog: a second desk with an empty store (its own consumers) reaches the same
// answers by replaying the log, assignments included, without assigning anything again.
func TestRebuildFromTheLog(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, nil)
	w := newWorld(t, b)
	w.customer("张伟", nil)
	w.opened("wechatkf")
	w.inbound("wechatkf", "wechat_openid", "oWx-zhangwei", "你好", w.t0.Add(time.Second), "wechatkf")
	var c store.Conversation
	bustest.WaitFor(t, 15*time.Second, "an assignee", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv, nil, &c)
		return c.Assignee != ""
	})
	assignments := b.StoredCount(t, bus.StreamDesk, "omni.desk.assignment.changed")

	d2 := startDesk(t, b, map[string]string{"DESK_CONSUMER": "desk2"})
	var c2 store.Conversation
	bustest.WaitFor(t, 15*time.Second, "the rebuilt conversation", func() bool {
		d2.call(t, d2.token, "GET", "/api/conversations/"+w.conv, nil, &c2)
		return c2.Assignee != ""
	})
	c.AssignedAt, c2.AssignedAt = nil, nil
	if string(mustJSON(t, c)) != string(mustJSON(t, c2)) {
		t.Fatalf("rebuilt row differs:\n live    %s\n rebuilt %s", mustJSON(t, c), mustJSON(t, c2))
	}
	time.Sleep(1500 * time.Millisecond) // an assignment pass of the second desk
	if n := b.StoredCount(t, bus.StreamDesk, "omni.desk.assignment.changed"); n != assignments {
		t.Fatalf("assignments %d after the rebuild, want %d", n, assignments)
	}
}
