package assist

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/sentiment"
)

// This file makes automatic tickets (ASSIST_AUTO_TICKETS): when a call ends, or a chat closes,
// the transcript is searched for what the business cares about — by the model with the
// extraction prompt (assist.extract.v1, JSON-schema'd), checked against the transcript, and by
// the rules — and an actionable result becomes one omni.tool.ticket.create.requested, routed by
// business type.
//
// Once per call and per close: the request's id is assist:ticket:<call id> or
// assist:ticket:<conversation id>:<closed_at unix ms>, and the transcript records the call (or
// close) as handled and the request published. A close whose conversation already has an
// automatic ticket request (from a call on it, or an earlier close) asks for none: the ticket
// connector keeps one ticket per conversation, so the conversation's first actionable call or
// close makes its ticket, and later ones would only name it again.

// ticketRequest is the data of omni.tool.ticket.create.requested.
type ticketRequest struct {
	ConversationID string   `json:"conversation_id"`
	CustomerID     string   `json:"customer_id,omitempty"`
	Subject        string   `json:"subject"`
	Description    string   `json:"description,omitempty"`
	Priority       string   `json:"priority,omitempty"`
	BusinessType   string   `json:"business_type,omitempty"`
	Tags           []string `json:"tags,omitempty"`
}

// ticketTrigger is what asks for an automatic ticket.
type ticketTrigger struct {
	id       string // the request's event id
	conv     string
	customer string
	source   string // call or chat
	callID   string
}

// callUpdated is the part of omni.desk.call.updated the connector reads.
type callUpdated struct {
	Call struct {
		CallID         string     `json:"call_id"`
		ConversationID string     `json:"conversation_id"`
		CustomerID     string     `json:"customer_id"`
		State          string     `json:"state"`
		StartedAt      *time.Time `json:"started_at"`
		AnsweredAt     *time.Time `json:"answered_at"`
	} `json:"call"`
}

// HandleCallUpdated asks for a ticket when a call ends (state ended: it was answered) and its
// transcript holds something actionable; once per call.
func (c *Connector) HandleCallUpdated(ctx context.Context, d bus.Delivery) error {
	var ev callUpdated
	if err := event.DecodeData(d.Event, &ev); err != nil {
		return bus.Permanent(err)
	}
	cl := ev.Call
	if cl.State != "ended" || !c.cfg.AutoTickets {
		return nil
	}
	if cl.CallID == "" || !keyRE.MatchString(cl.ConversationID) {
		return bus.Permanent(fmt.Errorf("call.updated %s: call %q on conversation %q", d.Event.ID(), cl.CallID, cl.ConversationID))
	}
	if err := c.await(ctx, d); err != nil {
		return err
	}
	t, err := c.transcripts.get(ctx, cl.ConversationID)
	if err != nil {
		return err
	}
	mark := "call:" + cl.CallID
	if t.marked(mark) {
		return nil // a redelivery or replay of a call already handled
	}
	if t.CustomerID == "" {
		t.CustomerID = cl.CustomerID
	}
	// The call's turns: those since it started (its transcript segments, and what was written
	// meanwhile).
	from := time.Time{}
	if cl.StartedAt != nil {
		from = *cl.StartedAt
	}
	turns := t.since(from)
	call := resilience.Call{CustomerID: t.CustomerID, CorrelationID: d.Event.ID(), Key: cl.ConversationID}
	var batch []bus.Outgoing
	ticket := ""
	if t.Ticket == "" {
		out, err := c.autoTicket(ctx, call, d.Event, ticketTrigger{id: "assist:ticket:" + cl.CallID, conv: cl.ConversationID,
			customer: t.CustomerID, source: "call", callID: cl.CallID}, turns)
		if err != nil {
			return err
		}
		if out != nil {
			batch, ticket = append(batch, *out), out.Event.ID()
		}
	}
	return c.publishAndMark(ctx, cl.ConversationID, batch, ticket, mark)
}

// autoTicket extracts from turns and returns the ticket request when the result is actionable
// (nil otherwise).
func (c *Connector) autoTicket(ctx context.Context, call resilience.Call, in event.Event, tr ticketTrigger, turns []Turn) (*bus.Outgoing, error) {
	if len(turns) == 0 {
		return nil, nil
	}
	f, source := c.extract(ctx, call, turns)
	if !f.Actionable() {
		c.rt.Log.Debug("no automatic ticket: nothing actionable", "conversation", tr.conv, "trigger", tr.id, "source", source)
		return nil, nil
	}
	lang := language(turns)
	priority := "normal"
	if f.Complaint || negative(turns) {
		priority = "high"
	}
	req := ticketRequest{ConversationID: tr.conv, CustomerID: tr.customer, Subject: ticketSubject(f, lang),
		Description: ticketDescription(f, source, tr, turns, lang), Priority: priority, BusinessType: f.BusinessType,
		Tags: []string{"auto", f.BusinessType, tr.source, "extract-" + source}}
	e, err := c.rt.NewEvent(TypeTicketRequested, req, c.jobOptions(in, tr.id, tr.conv)...)
	if err != nil {
		return nil, bus.Permanent(err)
	}
	return &bus.Outgoing{Subject: SubjectTicketRequested, Event: e}, nil
}

// extract asks the model for what the business cares about in turns and keeps what the
// transcript backs (ParseExtraction); the rules' identifiers are added to the model's (a format
// match is certain), and the rules answer alone when the model is down, slow, refuses or answers
// off the schema. source is llm or rules.
func (c *Connector) extract(ctx context.Context, call resilience.Call, turns []Turn) (Found, string) {
	rules := extractRules(turns)
	ph := pii.NewPlaceholders()
	lines := transcriptLines(turns, ph)
	comp, _, err := c.ask(ctx, jobPrompt(extractTemplate, lines), c.format("ticket_extraction", extractSchema), call)
	var f Found
	if err == nil {
		f, err = ParseExtraction(comp.Text, lines)
	}
	if err != nil {
		c.rt.Log.Warn("extraction by the rules: the model gave none", "conversation", call.Key, "err", err)
		return rules, SourceRules
	}
	f.Request = ph.Restore(f.Request)
	for _, v := range rules.OrderNumbers {
		f.OrderNumbers = addUnique(f.OrderNumbers, v)
	}
	for _, v := range rules.Waybills {
		f.Waybills = addUnique(f.Waybills, v)
	}
	for _, v := range rules.Amounts {
		f.Amounts = addUnique(f.Amounts, v)
	}
	if strings.TrimSpace(f.Request) == "" && f.identifiers() {
		f.Request = rules.Request
	}
	if f.BusinessType == BizOther {
		f.BusinessType = rules.BusinessType
	}
	f.Complaint = f.Complaint || rules.Complaint
	if f.Complaint {
		f.BusinessType = BizComplaint
	}
	return f, SourceLLM
}

// negative reports a customer who turned negative: an escalation term, or a mean sentiment of
// the customer's turns below -0.3 (pkg/sentiment's built-in analyser).
func negative(turns []Turn) bool {
	a := sentiment.Default()
	n, sum := 0, 0.0
	for _, t := range turns {
		if t.Role != "customer" {
			continue
		}
		r := a.Analyze(t.Text)
		if r.Escalation {
			return true
		}
		n++
		sum += r.Score
	}
	return n > 0 && sum/float64(n) < -0.3
}

var bizNames = map[string][2]string{
	BizOrder: {"订单", "Order"}, BizLogistics: {"物流", "Logistics"}, BizPayment: {"支付", "Payment"},
	BizAccount: {"账号", "Account"}, BizComplaint: {"投诉", "Complaint"}, BizOther: {"其他", "Other"},
}

func bizName(b, lang string) string {
	if lang == "zh" {
		return bizNames[b][0]
	}
	return bizNames[b][1]
}

// ticketSubject is "[自动] 订单 SO…：<request>" ("[auto] Order SO…: <request>"), masked.
func ticketSubject(f Found, lang string) string {
	head := "[自动] " + bizName(f.BusinessType, lang)
	colon := "："
	if lang != "zh" {
		head, colon = "[auto] "+bizName(f.BusinessType, lang), ": "
	}
	for _, ids := range [][]string{f.OrderNumbers, f.Waybills} {
		if len(ids) > 0 {
			head += " " + ids[0]
			break
		}
	}
	req := f.Request
	if req == "" {
		req = map[bool]string{true: "客户投诉", false: "customer complaint"}[lang == "zh"]
	}
	return truncate(pii.Redact(head+colon+truncate(req, 80)), 255)
}

// Bounds of a ticket's excerpt.
const (
	excerptTurns   = 30
	excerptTurnLen = 300
	maxDescription = 8000
)

// ticketDescription is the ticket's body: what was found, where from, and the masked excerpt of
// the transcript's last turns.
func ticketDescription(f Found, source string, tr ticketTrigger, turns []Turn, lang string) string {
	zh := lang == "zh"
	label := func(zhL, enL string) string {
		if zh {
			return zhL + "："
		}
		return enL + ": "
	}
	var b strings.Builder
	line := func(l string, vs ...string) {
		if len(vs) > 0 && vs[0] != "" {
			b.WriteString(l + strings.Join(vs, sep(lang)) + "\n")
		}
	}
	line(label("客户诉求", "Request"), f.Request)
	line(label("订单号", "Orders"), f.OrderNumbers...)
	line(label("运单号", "Waybills"), f.Waybills...)
	line(label("金额（元）", "Amounts (yuan)"), f.Amounts...)
	line(label("业务类型", "Business type"), f.BusinessType)
	origin := map[bool]string{true: "会话关闭", false: "chat closed"}[zh]
	if tr.callID != "" {
		origin = map[bool]string{true: "电话 ", false: "call "}[zh] + tr.callID
	}
	line(label("来源", "Source"), origin+" · "+map[bool]string{true: "提取：", false: "extraction: "}[zh]+source)
	b.WriteString("\n" + label("对话摘录", "Excerpt") + "\n")
	for _, t := range turns[max(0, len(turns)-excerptTurns):] {
		who := map[bool]string{true: "[客户] ", false: "[customer] "}[zh]
		if t.Role == "agent" {
			who = map[bool]string{true: "[坐席] ", false: "[agent] "}[zh]
		}
		b.WriteString(who + truncate(oneLine(t.Text), excerptTurnLen) + "\n")
	}
	return truncate(pii.Redact(strings.TrimSpace(b.String())), maxDescription)
}
