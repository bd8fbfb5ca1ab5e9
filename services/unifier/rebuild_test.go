package unifier_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pgtest"
	"github.com/omnibus-dev/omnibus/services/unifier"
)

// The store rebuilt from OMNI_IN + OMNI_TOOL into an empty database equals the live store.
func TestRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	liveURL := pgtest.NewDBURL(t)
	start(t, b.Client, liveURL, nil)
	ctx := context.Background()
	live := openPool(t, liveURL)
	applied := 0
	// publish sends one event and waits until the live unifier applied it, so that the live
	// order is the log's order.
	publish := func(subject string, e event.Event) {
		t.Helper()
		if err := b.Client.Publish(ctx, subject, e); err != nil {
			t.Fatal(err)
		}
		applied++
		bustest.WaitFor(t, 20*time.Second, "event applied", func() bool {
			var n int
			_ = live.QueryRow(ctx, `SELECT count(*) FROM processed_events`).Scan(&n)
			return n == applied
		})
	}
	query := func(sql string, args ...any) string {
		t.Helper()
		var s string
		if err := live.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return s
	}
	command := func(id, typ string, data map[string]any) event.Event {
		e, err := event.New(typ, "/desk", data, event.WithID(id))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	t0 := time.Now().UTC().Add(-48 * time.Hour)
	publish("omni.in.wechatkf.message", inbound(t, "m1", "wechatkf", "wechat_openid", "oA", "你好", t0))
	publish("omni.in.sms.message", inbound(t, "s1", "sms", "phone", "13800138000", "订单 123", t0.Add(time.Minute)))
	publish("omni.in.wechatkf.message", inbound(t, "m2", "wechatkf", "wechat_openid", "oA", "我的手机号", t0.Add(2*time.Minute),
		map[string]string{"kind": "phone", "value": "+86 138-0013-8000"}))
	customer := query(`SELECT customer_id::text FROM identities WHERE kind = 'wechat_openid'`)
	conv := query(`SELECT id::text FROM conversations WHERE status = 'open'`)
	crm, err := event.New("omni.tool.crm.lookup.completed", "/connectors/crm", map[string]any{
		"customer_id": customer, "conversation_id": conv, "query": map[string]string{"kind": "phone", "value": "+8613800138000"},
		"provider": "salesforce", "found": true,
		"identities": []map[string]string{{"kind": "email", "value": "Li.Lei@example.cn"}, {"kind": "crm_id", "value": "003XX0000012345"}},
		"profile":    map[string]string{"name": "李雷", "tier": "gold"},
	}, event.WithID("crm:lookup-1"))
	if err != nil {
		t.Fatal(err)
	}
	publish("omni.tool.crm.lookup.completed", crm)
	publish("omni.in.desk.conversation", command("desk:close-1", "omni.conversation.close.requested", map[string]any{"conversation_id": conv, "reason": "resolved"}))
	// The assist connector's summary of that close: stored on the conversation, kept by the rebuild.
	closedAt := query(`SELECT to_char(closed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') FROM conversations WHERE id = $1`, conv)
	sum, err := event.New("omni.tool.ai.summary.completed", "/connectors/assist", map[string]any{
		"conversation_id": conv, "closed_at": closedAt, "summary": "客户询问订单 123 的进度；已答复。", "source": "rules", "business_type": "order",
	}, event.WithID("assist:summary:"+conv))
	if err != nil {
		t.Fatal(err)
	}
	publish("omni.tool.ai.summary.completed", sum)
	publish("omni.in.sms.message", inbound(t, "s2", "sms", "phone", "13800138000", "又有问题", t0.Add(time.Hour)))
	merge := query(`SELECT id::text FROM customer_merges`)
	publish("omni.in.desk.customer", command("desk:unmerge-1", "omni.customer.unmerge.requested", map[string]any{"merge_id": merge}))
	publish("omni.in.web.message", inbound(t, "w1", "web", "web_visitor", "v-9", "hi", t0.Add(30*time.Hour)))

	want, err := unifier.Dump(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(want, `"event_id":"assist:summary:`+conv+`"`) {
		t.Fatalf("the live store has no summary:\n%s", want)
	}
	rebuiltURL := pgtest.NewDBURL(t)
	st, err := unifier.Rebuild(ctx, b.Client, rebuiltURL, func(string) (string, bool) { return "", false }, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != applied || st.Failed != 0 {
		t.Fatalf("rebuild applied %d events (%d failed), want %d", st.Events, st.Failed, applied)
	}
	rebuilt := openPool(t, rebuiltURL)
	got, err := unifier.Dump(ctx, rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("rebuilt store differs from the live one\n--- live\n%s\n--- rebuilt\n%s", want, got)
	}
	if _, err := unifier.Rebuild(ctx, b.Client, rebuiltURL, func(string) (string, bool) { return "", false }, nil, quiet()); err == nil {
		t.Fatal("rebuilding into a non-empty database must refuse")
	}
}
