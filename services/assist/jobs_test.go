package assist_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/services/assist"
	"github.com/omnibus-dev/omnibus/services/sandbox/openai"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// The desk's events as the unifier publishes them, for the read model and the jobs.

const orderNo = "SO2612070123456789"

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

type conversation struct {
	id, customer string
	n            int
}

func newConversation() *conversation {
	return &conversation{id: uuid.NewString(), customer: uuid.NewString()}
}

func (c *conversation) view(status string, closedAt time.Time) map[string]any {
	v := map[string]any{"id": c.id, "customer_id": c.customer, "status": status, "channels": []string{"webchat", "voice"},
		"opened_at": t0.Format(time.RFC3339Nano), "last_event_at": t0.Format(time.RFC3339Nano)}
	if status != "open" {
		v["closed_at"], v["close_reason"] = closedAt.Format(time.RFC3339Nano), "closed by agent"
	}
	return v
}

// publish validates e against its schema and publishes it on its type's subject.
func (tb testBundle) publish(t testing.TB, typ string, data any, opts ...event.Option) event.Event {
	t.Helper()
	e, err := event.New(typ, "/unifier", data, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Default().Validate(e.Type(), e.Data()); err != nil {
		t.Fatalf("%s: %v\n%s", typ, err, e.Data())
	}
	if err := tb.bus.Client.Publish(context.Background(), typ, e); err != nil {
		t.Fatal(err)
	}
	return e
}

// say adds a text message to the conversation (role customer or agent) and returns its id.
func (tb testBundle) say(t testing.TB, c *conversation, channel, role, text string) string {
	t.Helper()
	c.n++
	id := channel + ":msg:" + c.id + ":" + strconv.Itoa(c.n)
	at := t0.Add(time.Duration(c.n) * time.Second)
	msg := map[string]any{"event_id": id, "conversation_id": c.id, "customer_id": c.customer, "channel": channel,
		"body": map[string]any{"type": "text", "text": text}, "sent_at": at.Format(time.RFC3339Nano)}
	if role == "customer" {
		msg["direction"], msg["from"] = "inbound", map[string]any{"kind": "phone", "masked": "138****8000", "source": channel}
	} else {
		msg["direction"], msg["to"], msg["status"] = "outbound", map[string]any{"kind": "phone", "masked": "138****8000", "source": channel}, "sent"
	}
	tb.publish(t, assist.TypeMessageAdded, map[string]any{"message": msg, "conversation": c.view("open", time.Time{}),
		"customer": map[string]any{"id": c.customer}}, event.WithSubject(c.id), event.WithID("unifier:added:"+id))
	return id
}

// close closes the conversation at closedAt and returns the closed event.
func (tb testBundle) close(t testing.TB, c *conversation, closedAt time.Time) event.Event {
	t.Helper()
	return tb.publish(t, assist.TypeClosed, map[string]any{"conversation": c.view("closed", closedAt), "reason": "closed by agent"},
		event.WithSubject(c.id))
}

// callEnded publishes the desk's view of an ended call on the conversation.
func (tb testBundle) callEnded(t testing.TB, c *conversation, callID string) event.Event {
	t.Helper()
	end := t0.Add(10 * time.Minute)
	return tb.publish(t, assist.TypeCallUpdated, map[string]any{"call": map[string]any{"call_id": callID, "event_id": "voice:" + callID + ":ended",
		"conversation_id": c.id, "customer_id": c.customer, "direction": "inbound",
		"from":  map[string]any{"kind": "phone", "masked": "+86 138****8000", "source": "voice"},
		"to":    map[string]any{"kind": "phone", "masked": "+86 400****0000", "source": "voice"},
		"state": "ended", "at": end.Format(time.RFC3339Nano), "started_at": t0.Format(time.RFC3339Nano),
		"answered_at": t0.Add(time.Second).Format(time.RFC3339Nano), "ended_at": end.Format(time.RFC3339Nano),
		"duration_ms": 600000, "talk_ms": 599000, "hangup_side": "caller", "reason": "bye"}}, event.WithSubject(c.id))
}

// idle waits until the connector's durable consumer has handled everything published to it.
func (tb testBundle) idle(t testing.TB, durable string) {
	t.Helper()
	bustest.WaitFor(t, 30*time.Second, durable+" idle", func() bool {
		cons, err := tb.bus.Client.JetStream().Consumer(context.Background(), bus.StreamDesk, durable)
		if err != nil {
			return false
		}
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// toolEvents returns the events of type typ about conversation conv.
func (tb testBundle) toolEvents(t testing.TB, typ, conv string) []event.Event {
	t.Helper()
	var out []event.Event
	for _, e := range tb.bus.Events(t, bus.StreamTool, typ) {
		if e.Subject() == conv {
			out = append(out, e)
		}
	}
	return out
}

// waitOne waits for an event of type typ about conv and returns the first, schema-checked.
func (tb testBundle) waitOne(t testing.TB, typ, conv string) event.Event {
	t.Helper()
	var got []event.Event
	bustest.WaitFor(t, 30*time.Second, typ+" of "+conv, func() bool {
		got = tb.toolEvents(t, typ, conv)
		return len(got) > 0
	})
	if err := schema.Default().Validate(got[0].Type(), got[0].Data()); err != nil {
		t.Fatalf("%s not schema-valid: %v\n%s", typ, err, got[0].Data())
	}
	return got[0]
}

type summaryData struct {
	ConversationID string `json:"conversation_id"`
	CustomerID     string `json:"customer_id"`
	ClosedAt       string `json:"closed_at"`
	Summary        string `json:"summary"`
	Language       string `json:"language"`
	BusinessType   string `json:"business_type"`
	Source         string `json:"source"`
	Provenance     *struct {
		Provider             string   `json:"provider"`
		Model                string   `json:"model"`
		PromptTemplateID     string   `json:"prompt_template_id"`
		PromptTemplateSHA256 string   `json:"prompt_template_sha256"`
		InputEventIDs        []string `json:"input_event_ids"`
		Text                 string   `json:"text"`
	} `json:"provenance"`
}

type ticketData struct {
	ConversationID string   `json:"conversation_id"`
	CustomerID     string   `json:"customer_id"`
	Subject        string   `json:"subject"`
	Description    string   `json:"description"`
	Priority       string   `json:"priority"`
	BusinessType   string   `json:"business_type"`
	Tags           []string `json:"tags"`
}

func data[T any](t testing.TB, e event.Event) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(e.Data(), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// vendorSaw returns the requests the sandbox model received with a response_format (the
// summaries' and extractions').
func vendorSaw(t testing.TB, env *sim.Env) []openai.Request {
	t.Helper()
	var out []openai.Request
	for _, r := range env.Records(sim.Filter{Vendor: openai.Vendor}) {
		var req openai.Request
		if err := json.Unmarshal(r.Data, &req); err != nil {
			t.Fatal(err)
		}
		if req.ResponseFormat != nil {
			out = append(out, req)
		}
		noPII(t, "the model's request", string(r.Data))
	}
	return out
}

// TestSummaryOnClose: a chat closes → one summary written by the model from the masked
// transcript (the customer's first request and the order number restated, the phone masked for
// display), with provenance; the close's automatic ticket is routed to order. A redelivered or
// replayed close publishes nothing again.
func TestSummaryOnClose(t *testing.T) {
	t.Parallel()
	tb := setup(t, nil)
	c := newConversation()
	ids := []string{
		tb.say(t, c, "webchat", "customer", "你好"),
		tb.say(t, c, "webchat", "customer", "我的订单 "+orderNo+" 还没发货，想退款 299 元，电话 "+mobile),
		tb.say(t, c, "webchat", "agent", "好的，已为您提交退款，预计 3 个工作日到账"),
	}
	closedAt := t0.Add(20 * time.Minute)
	start := time.Now()
	closed := tb.close(t, c, closedAt)
	e := tb.waitOne(t, assist.TypeSummary, c.id)
	t.Logf("llm summary %s after the close", time.Since(start).Round(time.Millisecond))
	s := data[summaryData](t, e)
	ms := strconv.FormatInt(closedAt.UnixMilli(), 10)
	if e.ID() != "assist:summary:"+c.id+":"+ms || event.CorrelationID(e) != closed.ID() || e.Subject() != c.id {
		t.Fatalf("id %s correlation %s subject %s", e.ID(), event.CorrelationID(e), e.Subject())
	}
	wantText := "客户诉求：我的订单 " + orderNo + " 还没发货，想退款 299 元，电话 138****8000。涉及订单 " + orderNo +
		"。金额 299.00 元。坐席答复：好的，已为您提交退款，预计 3 个工作日到账。"
	if s.Source != assist.SourceLLM || s.Summary != wantText || s.Language != "zh" || s.BusinessType != "order" ||
		s.ConversationID != c.id || s.CustomerID != c.customer || s.ClosedAt != closedAt.Format(time.RFC3339Nano) {
		t.Fatalf("summary %+v\nwant text %s", s, wantText)
	}
	p := s.Provenance
	if p == nil || p.PromptTemplateID != assist.SummaryTemplateID || p.PromptTemplateSHA256 != assist.SummaryTemplateSHA256 ||
		p.Provider != "bailian" || p.Model != "qwen-plus" || !slices.Equal(p.InputEventIDs, ids) || !strings.Contains(p.Text, "<PHONE_1>") {
		t.Fatalf("provenance %+v", p)
	}
	noPII(t, "the summary", string(e.Data()))

	tk := tb.waitOne(t, assist.TypeTicketRequested, c.id)
	td := data[ticketData](t, tk)
	if tk.ID() != "assist:ticket:"+c.id+":"+ms || event.CorrelationID(tk) != closed.ID() || td.BusinessType != "order" ||
		td.Priority != "normal" || !slices.Contains(td.Tags, "auto") || !slices.Contains(td.Tags, "order") ||
		!strings.Contains(td.Subject, orderNo) || !strings.Contains(td.Description, "138****8000") {
		t.Fatalf("ticket %s %+v", tk.ID(), td)
	}
	noPII(t, "the ticket request", string(tk.Data()))

	// What the model was sent: the masked transcript, a JSON response_format, each template once.
	saw := vendorSaw(t, tb.env)
	if len(saw) != 2 || saw[0].ResponseFormat.Type != "json_object" || !strings.Contains(saw[0].Messages[1].Content, "[客户] 我的订单 "+orderNo) ||
		!strings.Contains(saw[0].Messages[1].Content, "<PHONE_1>") {
		t.Fatalf("the model saw %+v", saw)
	}

	// The close again (a redelivery under a new id, as a replay): nothing new.
	tb.publish(t, assist.TypeClosed, map[string]any{"conversation": c.view("closed", closedAt), "reason": "closed by agent"}, event.WithSubject(c.id))
	tb.idle(t, "assist-conversation-closed")
	if n, m := len(tb.toolEvents(t, assist.TypeSummary, c.id)), len(tb.toolEvents(t, assist.TypeTicketRequested, c.id)); n != 1 || m != 1 {
		t.Fatalf("%d summaries, %d ticket requests after the close was delivered again", n, m)
	}
	if calls := len(vendorSaw(t, tb.env)); calls != 2 {
		t.Fatalf("%d model calls, want 2", calls)
	}
}

// TestSummaryWhenTheModelFails: a model that is down, refuses JSON mode or is slower than
// ASSIST_SUMMARY_BUDGET leaves the summary to the rules (source rules, no provenance): the
// customer's first request, the agent's last reply and the order number, masked.
func TestSummaryWhenTheModelFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault sim.Fault
	}{
		{"500", sim.Fault{ErrorRatio: 1, Code: "500"}},
		{"slow", sim.Fault{Latency: 5 * time.Second}},
		{"429 longer than the budget", sim.Fault{ErrorRatio: 1, Code: "429:30"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, map[string]string{"ASSIST_SUMMARY_BUDGET": "1s", "ASSIST_AUTO_TICKETS": "false"})
			if err := tb.env.SetFault(chatKey, tc.fault); err != nil {
				t.Fatal(err)
			}
			c := newConversation()
			tb.say(t, c, "webchat", "customer", "在吗")
			tb.say(t, c, "webchat", "customer", "订单 "+orderNo+" 什么时候发货？手机 "+mobile)
			tb.say(t, c, "webchat", "agent", "今天下午发出")
			start := time.Now()
			tb.close(t, c, t0.Add(time.Hour))
			s := data[summaryData](t, tb.waitOne(t, assist.TypeSummary, c.id))
			t.Logf("rules summary %s after the close", time.Since(start).Round(time.Millisecond))
			// The bound is structural: the route's attempts within ASSIST_SUMMARY_BUDGET, once.
			if calls := tb.env.Stats()[chatKey].Calls; calls < 1 || calls > 3 {
				t.Errorf("%d model calls, want 1 to 3 (the route's attempts)", calls)
			}
			want := "客户诉求：订单 " + orderNo + " 什么时候发货？手机 138****8000。坐席答复：今天下午发出。订单号：" + orderNo + "。"
			if s.Source != assist.SourceRules || s.Provenance != nil || s.Summary != want || s.BusinessType != "order" {
				t.Fatalf("summary %+v\nwant %s", s, want)
			}
		})
	}
}

// TestCallTicket: a call in which the caller spoke an order number ends → one ticket request
// (assist:ticket:<call id>) routed to order, with the masked excerpt; the call's end delivered
// again and the conversation's close ask for no second ticket (the close still gets its summary).
func TestCallTicket(t *testing.T) {
	t.Parallel()
	tb := setup(t, nil)
	c := newConversation()
	tb.say(t, c, "voice", "customer", "喂你好")
	tb.say(t, c, "voice", "customer", "我买的保温杯订单号是 SO 2612 0701 2345 6789 到了是坏的，我要退货退款，电话 "+mobile)
	tb.say(t, c, "voice", "agent", "抱歉，已为您登记退货")
	callID := uuid.NewString()
	ended := tb.callEnded(t, c, callID)
	tk := tb.waitOne(t, assist.TypeTicketRequested, c.id)
	td := data[ticketData](t, tk)
	if tk.ID() != "assist:ticket:"+callID || event.CorrelationID(tk) != ended.ID() || td.BusinessType != "order" ||
		!slices.Equal(td.Tags, []string{"auto", "order", "call", "extract-llm"}) || td.CustomerID != c.customer ||
		!strings.Contains(td.Subject, orderNo) || !strings.Contains(td.Description, "订单号："+orderNo) ||
		!strings.Contains(td.Description, "电话 "+callID) || !strings.Contains(td.Description, "138****8000") {
		t.Fatalf("ticket %s %+v", tk.ID(), td)
	}
	noPII(t, "the ticket request", string(tk.Data()))

	tb.callEnded(t, c, callID) // the call's end again (a replay)
	tb.idle(t, "assist-call-updated")
	tb.close(t, c, t0.Add(30*time.Minute))
	tb.waitOne(t, assist.TypeSummary, c.id)
	tb.idle(t, "assist-conversation-closed")
	if n := len(tb.toolEvents(t, assist.TypeTicketRequested, c.id)); n != 1 {
		t.Fatalf("%d ticket requests, want 1", n)
	}
}

// TestComplaintTicketIsHigh: a complaint without any number is actionable, routed to complaint,
// with priority high; a chat with nothing actionable asks for no ticket.
func TestComplaintTicketIsHigh(t *testing.T) {
	t.Parallel()
	tb := setup(t, nil)
	angry, calm := newConversation(), newConversation()
	tb.say(t, angry, "webchat", "customer", "你们客服态度太差了，等了一个小时没人管，我要投诉！")
	tb.say(t, calm, "webchat", "customer", "你们几点下班？")
	tb.say(t, calm, "webchat", "agent", "晚上九点")
	tb.close(t, calm, t0.Add(time.Hour))
	tb.close(t, angry, t0.Add(time.Hour))
	td := data[ticketData](t, tb.waitOne(t, assist.TypeTicketRequested, angry.id))
	if td.BusinessType != "complaint" || td.Priority != "high" || !slices.Contains(td.Tags, "complaint") {
		t.Fatalf("ticket %+v", td)
	}
	tb.waitOne(t, assist.TypeSummary, calm.id)
	tb.idle(t, "assist-conversation-closed")
	if n := len(tb.toolEvents(t, assist.TypeTicketRequested, calm.id)); n != 0 {
		t.Fatalf("%d ticket requests for a conversation with nothing actionable", n)
	}
}

// TestJSONSchemaFormat: with ASSIST_RESPONSE_FORMAT=json_schema the model is asked for the
// answer's JSON Schema (structured outputs, strict) and the summary is still the model's.
func TestJSONSchemaFormat(t *testing.T) {
	t.Parallel()
	tb := setup(t, map[string]string{"ASSIST_RESPONSE_FORMAT": "json_schema", "ASSIST_AUTO_TICKETS": "false"})
	c := newConversation()
	tb.say(t, c, "webchat", "customer", "Where is my parcel SF1234567890123? It is late.")
	tb.say(t, c, "webchat", "agent", "It is out for delivery today.")
	tb.close(t, c, t0.Add(time.Hour))
	s := data[summaryData](t, tb.waitOne(t, assist.TypeSummary, c.id))
	want := "The customer asked: Where is my parcel SF1234567890123? It is late. Waybills: SF1234567890123. The agent replied: It is out for delivery today."
	if s.Source != assist.SourceLLM || s.Summary != want || s.Language != "en" || s.BusinessType != "logistics" {
		t.Fatalf("summary %+v\nwant %s", s, want)
	}
	saw := vendorSaw(t, tb.env)
	if len(saw) != 1 || saw[0].ResponseFormat.Type != "json_schema" || saw[0].ResponseFormat.JSONSchema == nil ||
		saw[0].ResponseFormat.JSONSchema.Name != "conversation_summary" || !saw[0].ResponseFormat.JSONSchema.Strict ||
		!strings.Contains(string(saw[0].ResponseFormat.JSONSchema.Schema), `"business_type"`) {
		t.Fatalf("the model saw %+v", saw)
	}
}
