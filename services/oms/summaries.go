package oms

import (
	"context"
	"errors"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	omswire "github.com/omnibus-dev/omnibus/pkg/wire/oms"
)

// Summaries on the archive. The assist connector's summary of a close
// (omni.tool.ai.summary.completed) usually comes seconds after the close, which the connector
// archives at once. Both orders are handled, and nothing waits for the other:
//
//   - the summary first: onSummary keeps it in the conversation's context (ContextBucket), and
//     onClosed writes it into the record itself;
//   - the close first (or the record was already written, e.g. by an earlier close of a
//     reopened conversation): the summary is appended to the archived record as a remark
//     (POST /v1/aftersale/service-records/remarks), keyed by the summary's event id, so a
//     redelivered or replayed summary appends nothing twice.
//
// The context's compare-and-set serialises the two handlers of a conversation: whichever writes
// second sees the other's write, and appends the remark when the summary is not on the record.
// A summary that never comes costs nothing: the record was archived on close without it.

// maxRecordSummary bounds a record's summary (the OMS takes 2000 characters; this counts bytes).
const maxRecordSummary = 2000

// sameClose reports whether a summary's closed_at names the close at t (the producer may keep
// milliseconds only).
func sameClose(a, t time.Time) bool { return a.Sub(t).Abs() < time.Millisecond }

var businessTypes = map[string]string{"order": "订单", "logistics": "物流", "payment": "支付", "account": "账户", "complaint": "投诉", "other": "其他"}

// summaryLine is a summary as the archive shows it: who wrote it, what it was about, the text
// (masked by the producer; masked again, should anything have slipped through).
func summaryLine(sm savedSummary) string {
	who := "规则提取"
	if sm.Source == "llm" {
		who = "AI 生成"
	}
	if bt, ok := businessTypes[sm.BusinessType]; ok {
		who += "，" + bt + "类"
	}
	return "会话小结（" + who + "）：" + clip(pii.Redact(sm.Text), 1500)
}

// onSummary keeps a conversation's summary for its service record, or appends it to the record
// already archived. Conversations without an order lookup have no record: nothing to do.
func (c *conn) onSummary(ctx context.Context, d bus.Delivery) error {
	var s SummaryCompleted
	if err := event.DecodeData(d.Event, &s); err != nil {
		return bus.Permanent(err)
	}
	if s.ConversationID == "" || s.Summary == "" || s.ClosedAt.IsZero() {
		return bus.Permanent(errors.New("a summary without conversation_id, summary or closed_at"))
	}
	cc, ok, err := c.store.get(ctx, s.ConversationID)
	if err != nil {
		return err
	}
	if !ok || cc.Order() == "" {
		return nil // no order was looked up in this conversation: no record to carry it
	}
	sm := savedSummary{EventID: d.Event.ID(), ClosedAt: s.ClosedAt.UTC(), Text: s.Summary, Source: s.Source, BusinessType: s.BusinessType}
	cc, err = c.store.update(ctx, s.ConversationID, func(cc *convContext) {
		if sm.replaces(cc.Summary) {
			cc.Summary = &sm
		}
	})
	switch {
	case err != nil:
		return err
	case cc.Summary == nil || cc.Summary.EventID != sm.EventID:
		return nil // the summary of a later close is kept (and archived) instead
	case cc.Archived == nil:
		return nil // not archived yet: the record will carry it
	case cc.Archived.Included == sm.EventID:
		return nil // the record carries it
	}
	customer := s.CustomerID
	if customer == "" {
		customer = cc.CustomerID
	}
	return c.appendSummary(ctx, d, s.ConversationID, customer, cc.Order(), sm)
}

// archivedWith records that the OMS has the conversation's service record, carrying summary
// included (an event id, or ""), and appends the conversation's summary when the record does not
// carry it — one that came while the record was being written.
func (c *conn) archivedWith(ctx context.Context, d bus.Delivery, conv, customer, order, recordID, included string) error {
	cc, err := c.store.update(ctx, conv, func(cc *convContext) {
		if cc.Archived == nil {
			cc.Archived = &archived{RecordID: recordID, Included: included, At: time.Now().UTC()}
		}
	})
	if err != nil {
		return err
	}
	if sm := cc.Summary; sm != nil && sm.EventID != cc.Archived.Included {
		return c.appendSummary(ctx, d, conv, customer, order, *sm)
	}
	return nil
}

// appendSummary appends sm to the conversation's archived record as a remark keyed by its event
// id. A transient failure is returned for the bus to redeliver d (the handlers are idempotent); a
// refusal, or a failure on d's last delivery, is logged and dropped: the record stays as it is.
func (c *conn) appendSummary(ctx context.Context, d bus.Delivery, conv, customer, order string, sm savedSummary) error {
	rm := omswire.RecordRemark{ExternalID: conv, RemarkID: sm.EventID, Kind: "summary", Source: "omnibus", Content: summaryLine(sm)}
	actx, cancel := context.WithTimeout(ctx, c.cfg.ArchiveBudget)
	res, err := c.oms.addRemark(actx, resilience.Call{CustomerID: customer, CorrelationID: d.Event.ID(), Key: order}, rm)
	cancel()
	switch {
	case err == nil:
		c.rt.Log.InfoContext(ctx, "summary added to the service record", "conversation", conv, "order", order, "record", res.RecordID,
			"summary", sm.EventID, "duplicate", res.Duplicate)
		return nil
	case !bus.IsPermanent(err) && d.NumDelivered < uint64(archiveMaxDeliver):
		c.rt.Log.WarnContext(ctx, "adding the summary to the service record failed, will retry", "conversation", conv,
			"delivery", d.NumDelivered, "err", redact(err))
		return err
	}
	code, _ := describe(err, c.cfg.ArchiveBudget)
	c.rt.Log.ErrorContext(ctx, "summary not added to the service record", "conversation", conv, "order", order, "summary", sm.EventID,
		"code", code, "err", redact(err))
	return nil
}
