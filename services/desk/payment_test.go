package desk_test

import (
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// TestPaymentStatusOnTimeline: the payment connector's status.changed lands on the conversation's
// timeline as a payment/status result correlated to the link request (the card turns paid), once
// however often it is published.
func TestPaymentStatusOnTimeline(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	w := newWorld(t, b)
	w.opened("wechatkf")
	w.toolResult("payment", "link", "completed", "req-1", map[string]any{"provider": "alipay", "url": "https://qr.alipay.com/bax1",
		"out_trade_no": "OB0123456789abcdef0123456789abc", "amount": map[string]string{"value": "99.00", "currency": "CNY"}}, w.t0.Add(time.Second))
	for range 2 {
		w.publish("omni.tool.payment.status.changed", "omni.tool.payment.status.changed", map[string]any{
			"conversation_id": w.conv, "customer_id": w.cust, "provider": "alipay", "out_trade_no": "OB0123456789abcdef0123456789abc",
			"status": "paid", "amount": map[string]string{"value": "99.00", "currency": "CNY"}, "changed_at": w.t0.Add(2 * time.Second),
			"transaction_id": "2026120722001"}, event.WithID("payment:status:OB0123456789abcdef0123456789abc:paid"),
			event.WithCorrelationID("req-1"), event.WithSubject(w.conv))
	}
	var tl struct{ Items []store.TimelineItem }
	bustest.WaitFor(t, 15*time.Second, "the paid status on the timeline", func() bool {
		tl.Items = nil
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &tl)
		return len(tl.Items) >= 2
	})
	time.Sleep(200 * time.Millisecond) // a second copy, if any, would land now
	d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &tl)
	var statuses int
	for _, it := range tl.Items {
		if it.Kind == "tool_result" && it.Result.Tool == "payment" && it.Result.Op == "status" {
			statuses++
			if it.Result.Outcome != "paid" || it.Result.CorrelationID != "req-1" {
				t.Errorf("status result %+v", it.Result)
			}
		}
	}
	if statuses != 1 {
		t.Fatalf("%d payment status results on the timeline, want 1: %+v", statuses, tl.Items)
	}
}
