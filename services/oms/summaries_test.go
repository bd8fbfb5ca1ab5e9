package oms_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/services/oms"
	omssim "github.com/omnibus-dev/omnibus/services/sandbox/oms"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// closedAt is the closed_at of the closed events tb.closed publishes.
var closedAt = time.Date(2026, 11, 27, 8, 20, 0, 0, time.UTC)

// summary publishes the assist connector's summary of conv's close at closed.
func (tb *testBundle) summary(t *testing.T, conv string, closed time.Time, source, text string) event.Event {
	t.Helper()
	data := map[string]any{"conversation_id": conv, "closed_at": closed, "summary": text, "source": source, "business_type": "logistics", "language": "zh"}
	if source == "llm" {
		data["provenance"] = map[string]any{"provider": "bailian", "model": "qwen-plus", "prompt_template_id": "assist.summary.v1",
			"prompt_template_sha256": strings.Repeat("0f", 32), "input_event_ids": []string{"wechatkf:1"}, "latency_ms": 300, "text": text}
	}
	raw, _ := json.Marshal(data)
	if err := schema.Default().Validate(oms.TypeSummaryCompleted, raw); err != nil {
		t.Fatal(err)
	}
	e, err := event.New(oms.TypeSummaryCompleted, "/connectors/assist", data, event.WithSubject(conv),
		event.WithID(fmt.Sprintf("assist:summary:%s:%d", conv, closed.UnixMilli())))
	if err != nil {
		t.Fatal(err)
	}
	tb.publish(t, oms.TypeSummaryCompleted, e)
	return e
}

// customerWithOrders returns a customer of the population with at least one order.
func (tb *testBundle) customerWithOrders(t *testing.T) sim.Customer {
	t.Helper()
	for _, p := range tb.pop {
		if len(tb.oms.Orders(p.Phone)) > 0 {
			return p
		}
	}
	t.Fatal("no customer with orders")
	return sim.Customer{}
}

// The summary of a close joins the conversation's service record on its order: in the record
// when it comes before the close is archived, appended as a remark (once, whatever the
// redeliveries and OMS failures) when it comes after; the summary of an older close adds
// nothing; conversations without an order lookup get nothing.
func TestSummaryOnArchive(t *testing.T) {
	t.Parallel()
	// The slow OMS below answers within the archive's per-attempt timeout.
	tb := setup(t, map[string]string{"RESILIENCE_OMS_SERVICE_RECORD_TIMEOUT": "3s", "RESILIENCE_OMS_SERVICE_RECORD_BUDGET": "4s"})
	c := tb.customerWithOrders(t)
	ctx := context.Background()

	// The close first: the record is archived without a summary, which is appended when it
	// comes — after the OMS failed the first attempt.
	conv := uuid.NewString()
	var a oms.LookupAnswer
	tb.result(t, tb.lookup(t, conv, "phone", c.Phone).ID(), &a)
	var res oms.ArchiveResult
	tb.result(t, tb.closed(t, conv, "resolved").ID(), &res)
	if err := tb.env.SetFault("oms "+omssim.OpRemark, sim.Fault{ErrorRatio: 1, Code: "50001"}); err != nil {
		t.Fatal(err)
	}
	tb.summary(t, conv, closedAt, "llm", "客户询问快递 SF1234567890123 为何三天未更新；坐席已催件，预计明日送达。")
	bustest.WaitFor(t, 10*time.Second, "a failed remark attempt", func() bool { return tb.env.Stats()["oms "+omssim.OpRemark].Injected > 0 })
	if err := tb.env.SetFault("oms "+omssim.OpRemark, sim.Fault{}); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 15*time.Second, "the summary appended to the record", func() bool { return len(tb.oms.Remarks(conv)) == 1 })
	rm := tb.oms.Remarks(conv)[0]
	if rm.Kind != "summary" || !strings.Contains(rm.Content, "AI 生成，物流类") || !strings.Contains(rm.Content, "预计明日送达") ||
		rm.RemarkID != fmt.Sprintf("assist:summary:%s:%d", conv, closedAt.UnixMilli()) {
		t.Fatalf("remark %+v", rm)
	}
	// The summary of an earlier close (late): nothing more.
	older := tb.summary(t, conv, closedAt.Add(-time.Hour), "rules", "更早的一次会话")
	time.Sleep(500 * time.Millisecond)
	if got := tb.oms.Remarks(conv); len(got) != 1 {
		t.Fatalf("%d remarks after the summary of an older close (%s)", len(got), older.ID())
	}

	// The summary first: the record carries it, and no remark is needed.
	conv2 := uuid.NewString()
	tb.result(t, tb.lookup(t, conv2, "phone", c.Phone).ID(), &a)
	tb.summary(t, conv2, closedAt, "rules", "客户问：订单什么时候发货？坐席答：今天发出。")
	js, err := jetstream.New(tb.bus.Conn)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, oms.ContextBucket)
	if err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 10*time.Second, "the summary kept for the record", func() bool {
		e, err := kv.Get(ctx, conv2)
		return err == nil && strings.Contains(string(e.Value()), `"summary"`)
	})
	tb.result(t, tb.closed(t, conv2, "resolved").ID(), &res)
	var rec *string
	for _, r := range tb.oms.ServiceRecords() {
		if r.ExternalID == conv2 {
			rec = &r.Summary
		}
	}
	if rec == nil || !strings.Contains(*rec, "会话小结（规则提取，物流类）：客户问：订单什么时候发货？") {
		t.Fatalf("record summary %v", rec)
	}
	time.Sleep(300 * time.Millisecond)
	if got := tb.oms.Remarks(conv2); len(got) != 0 {
		t.Fatalf("remarks on a record that carries its summary: %+v", got)
	}

	// The summary comes while the record is being written (the OMS is slow): the close read the
	// context before it, so the record goes without it and the close's handler appends it.
	conv4 := uuid.NewString()
	tb.result(t, tb.lookup(t, conv4, "phone", c.Phone).ID(), &a)
	if err := tb.env.SetFault("oms "+omssim.OpArchive, sim.Fault{Latency: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	close4 := tb.closed(t, conv4, "resolved")
	bustest.WaitFor(t, 10*time.Second, "the archive call under way", func() bool { return tb.env.Stats()["oms "+omssim.OpArchive].Calls >= 3 })
	tb.summary(t, conv4, closedAt, "llm", "客户在写入档案时收到的小结。")
	tb.result(t, close4.ID(), &res)
	if err := tb.env.SetFault("oms "+omssim.OpArchive, sim.Fault{}); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 10*time.Second, "the summary appended after the slow archive", func() bool { return len(tb.oms.Remarks(conv4)) == 1 })
	for _, r := range tb.oms.ServiceRecords() {
		if r.ExternalID == conv4 && strings.Contains(r.Summary, "会话小结") {
			t.Fatalf("the record carries a summary its close never read: %s", r.Summary)
		}
	}

	// No order looked up: nothing archived, nothing appended.
	conv3 := uuid.NewString()
	tb.summary(t, conv3, closedAt, "rules", "没有订单的会话")
	time.Sleep(300 * time.Millisecond)
	if len(tb.oms.Remarks(conv3)) != 0 || len(tb.env.Records(sim.Filter{Vendor: "oms", Op: omssim.OpRemark})) != 2 {
		t.Fatalf("remarks: %d records", len(tb.env.Records(sim.Filter{Vendor: "oms", Op: omssim.OpRemark})))
	}
	if n := len(tb.oms.ServiceRecords()); n != 3 {
		t.Fatalf("%d service records, want 3", n)
	}
}
