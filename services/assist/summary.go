package assist

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// This file answers omni.desk.conversation.closed: one omni.tool.ai.summary.completed per close
// (and, with ASSIST_AUTO_TICKETS, the close's automatic ticket; tickets.go).

// Summary sources.
const (
	SourceLLM   = "llm"
	SourceRules = "rules"
)

// maxInputIDs bounds provenance.input_event_ids (the schema's maxItems).
const maxInputIDs = 500

// Summary is the data of omni.tool.ai.summary.completed.
type Summary struct {
	ConversationID string      `json:"conversation_id"`
	CustomerID     string      `json:"customer_id,omitempty"`
	ClosedAt       string      `json:"closed_at"`
	Summary        string      `json:"summary"`
	Language       string      `json:"language,omitempty"`
	BusinessType   string      `json:"business_type,omitempty"`
	Source         string      `json:"source"`
	Provenance     *Provenance `json:"provenance,omitempty"`
}

// closedEvent is the part of omni.desk.conversation.closed the connector reads.
type closedEvent struct {
	Conversation struct {
		ID         string `json:"id"`
		CustomerID string `json:"customer_id"`
		ClosedAt   string `json:"closed_at"`
	} `json:"conversation"`
}

// HandleClosed answers a conversation's close, once per close (closed_at): it waits for the
// transcript to hold the messages stored before the close, then publishes the summary and marks
// it done in the transcript, then, with ASSIST_AUTO_TICKETS, the automatic ticket request and its
// mark, so a redelivery or a replay of the close publishes nothing again.
func (c *Connector) HandleClosed(ctx context.Context, d bus.Delivery) error {
	var ev closedEvent
	if err := event.DecodeData(d.Event, &ev); err != nil {
		return bus.Permanent(err)
	}
	conv := ev.Conversation
	closedAt, err := time.Parse(time.RFC3339Nano, conv.ClosedAt)
	if err != nil || !keyRE.MatchString(conv.ID) {
		return bus.Permanent(fmt.Errorf("conversation.closed %s: conversation %q closed at %q", d.Event.ID(), conv.ID, conv.ClosedAt))
	}
	if err := c.await(ctx, d); err != nil {
		return err
	}
	t, err := c.transcripts.get(ctx, conv.ID)
	if err != nil {
		return err
	}
	if t.CustomerID == "" {
		t.CustomerID = conv.CustomerID
	}
	ms := strconv.FormatInt(closedAt.UnixMilli(), 10)
	summaryMark, closeMark := "summary:"+ms, "close:"+ms
	call := resilience.Call{CustomerID: t.CustomerID, CorrelationID: d.Event.ID(), Key: conv.ID}
	if !t.marked(summaryMark) {
		s := c.summarise(ctx, call, t.Turns)
		s.ConversationID, s.CustomerID, s.ClosedAt = conv.ID, t.CustomerID, conv.ClosedAt
		e, err := c.rt.NewEvent(TypeSummary, s, c.jobOptions(d.Event, "assist:summary:"+conv.ID+":"+ms, conv.ID)...)
		if err != nil {
			return bus.Permanent(err)
		}
		// The summary goes out at once, not after the ticket's extraction.
		if err := c.publishAndMark(ctx, conv.ID, []bus.Outgoing{{Subject: SubjectSummary, Event: e}}, "", summaryMark); err != nil {
			return err
		}
	}
	// A call of the conversation that already asked for a ticket answers for the close too: the
	// ticket connector keeps one ticket per conversation, and a second request would only name it
	// again.
	var batch []bus.Outgoing
	ticket := ""
	if c.cfg.AutoTickets && !t.marked(closeMark) && t.Ticket == "" {
		out, err := c.autoTicket(ctx, call, d.Event, ticketTrigger{id: "assist:ticket:" + conv.ID + ":" + ms, conv: conv.ID,
			customer: t.CustomerID, source: "chat"}, t.Turns)
		if err != nil {
			return err
		}
		if out != nil {
			batch = append(batch, *out)
			ticket = out.Event.ID()
		}
	}
	return c.publishAndMark(ctx, conv.ID, batch, ticket, closeMark)
}

// publishAndMark publishes batch, then records marks (and the ticket request's id) in the
// conversation's transcript. Publishing gets its own bound: the model may have spent the budget.
func (c *Connector) publishAndMark(ctx context.Context, conv string, batch []bus.Outgoing, ticket string, marks ...string) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if len(batch) > 0 {
		if err := c.rt.Publish(pctx, batch...); err != nil {
			return err
		}
	}
	return c.transcripts.update(pctx, conv, func(t *transcript) bool {
		for _, m := range marks {
			t.mark(m)
		}
		if ticket != "" && t.Ticket == "" {
			t.Ticket = ticket
		}
		return true
	})
}

// jobOptions are the options of an event answering in: its deterministic id, correlation and
// subject (the conversation) and partition key.
func (c *Connector) jobOptions(in event.Event, id, conv string) []event.Option {
	opts := []event.Option{event.WithID(id), event.WithCorrelationID(in.ID()), event.WithSubject(conv)}
	if pk := event.PartitionKey(in); pk != "" {
		opts = append(opts, event.WithPartitionKey(pk))
	}
	return opts
}

// summarise asks the model for the summary of turns (masked: placeholders out, the display
// masks of pkg/pii in the text kept), falling back on the rules when there is no turn, or the
// model is down, slow, refuses, or answers off the schema.
func (c *Connector) summarise(ctx context.Context, call resilience.Call, turns []Turn) Summary {
	lang := language(turns)
	if len(turns) > 0 {
		ph := pii.NewPlaceholders()
		comp, latency, err := c.ask(ctx, jobPrompt(summaryTemplate, transcriptLines(turns, ph)), c.format("conversation_summary", summarySchema), call)
		var ans SummaryAnswer
		if err == nil {
			ans, err = ParseSummary(comp.Text)
		}
		if err == nil {
			text := truncate(pii.Redact(ph.Restore(ans.Summary)), maxText)
			return Summary{Summary: text, Language: lang, BusinessType: ans.BusinessType, Source: SourceLLM,
				Provenance: c.provenance(comp, latency, SummaryTemplateID, SummaryTemplateSHA256, turns)}
		}
		c.rt.Log.Warn("summary by the rules: the model gave none", "conversation", call.Key, "err", err)
	}
	f := extractRules(turns)
	return Summary{Summary: rulesSummary(turns, f, lang), Language: lang, BusinessType: f.BusinessType, Source: SourceRules}
}

// provenance is the provenance of a job's answer.
func (c *Connector) provenance(comp Completion, latency time.Duration, id, sha string, turns []Turn) *Provenance {
	model := comp.Model
	if model == "" {
		model = c.cfg.Model
	}
	ids := make([]string, 0, min(len(turns), maxInputIDs))
	for _, t := range turns[max(0, len(turns)-maxInputIDs):] {
		ids = append(ids, t.ID)
	}
	return &Provenance{Provider: c.cfg.Provider, Model: truncate(model, 128), PromptTemplateID: id, PromptTemplateSHA256: sha,
		InputEventIDs: ids, LatencyMS: latency.Milliseconds(), Usage: comp.Usage, FinishReason: truncate(comp.FinishReason, 64),
		Text: truncate(strings.TrimSpace(comp.Text), 8000)}
}

// rulesSummary is the extractive summary: the customer's first request, the agent's last
// reply, and the order numbers, waybills and amounts found; personal data masked for display.
func rulesSummary(turns []Turn, f Found, lang string) string {
	req, reply := truncate(firstRequest(turns), 200), truncate(lastReply(turns), 200)
	var parts []string
	add := func(label string, vs []string, unit string) {
		if len(vs) > 0 {
			parts = append(parts, label+strings.Join(vs, sep(lang))+unit)
		}
	}
	if lang == "zh" {
		switch {
		case req != "":
			parts = append(parts, "客户诉求："+strings.TrimRight(req, "。.！!？?"))
		case len(turns) == 0:
			parts = append(parts, "会话没有文字消息")
		default:
			parts = append(parts, "客户未提出明确诉求")
		}
		if reply != "" {
			parts = append(parts, "坐席答复："+strings.TrimRight(reply, "。.！!？?"))
		}
		add("订单号：", f.OrderNumbers, "")
		add("运单号：", f.Waybills, "")
		add("金额：", f.Amounts, " 元")
		return truncate(pii.Redact(strings.Join(parts, "。")+"。"), maxText)
	}
	switch {
	case req != "":
		parts = append(parts, "Customer asked: "+strings.TrimRight(req, "."))
	case len(turns) == 0:
		parts = append(parts, "The conversation has no text messages")
	default:
		parts = append(parts, "The customer made no clear request")
	}
	if reply != "" {
		parts = append(parts, "Agent replied: "+strings.TrimRight(reply, "."))
	}
	add("Orders: ", f.OrderNumbers, "")
	add("Waybills: ", f.Waybills, "")
	add("Amounts: ", f.Amounts, " yuan")
	return truncate(pii.Redact(strings.Join(parts, ". ")+"."), maxText)
}

func sep(lang string) string {
	if lang == "zh" {
		return "、"
	}
	return ", "
}
