package unifier_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/pgtest"
)

// A backfill in the bulk lane does not hold back a live customer message: the live message is
// applied while the backlog is still being worked through.
func TestLiveTrafficDoesNotWaitBehindBackfill(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-time.Hour)
	const backlog = 3000
	var bulk []bus.Outgoing
	for i := range backlog {
		bulk = append(bulk, bus.Outgoing{Subject: "omni.in.sms.backfill",
			Event: inbound(t, fmt.Sprintf("bf-%d", i), "sms", "phone", fmt.Sprintf("+86137%08d", i), "历史消息", t0)})
	}
	for i := 0; i < len(bulk); i += 500 {
		if err := b.Client.PublishBatch(ctx, bulk[i:i+500]); err != nil {
			t.Fatal(err)
		}
	}
	dbURL := pgtest.NewDBURL(t)
	start(t, b.Client, dbURL, map[string]string{"UNIFIER_BATCH": "50"})
	live := inbound(t, "live-1", "wechatkf", "wechat_openid", "oLive", "在吗？", time.Now().UTC())
	if err := b.Client.Publish(ctx, "omni.in.wechatkf.message", live); err != nil {
		t.Fatal(err)
	}
	pool := openPool(t, dbURL)
	var appliedBefore int
	bustest.WaitFor(t, 60*time.Second, "the live message applied", func() bool {
		var n int
		if pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE event_id = $1`, live.ID()).Scan(&n) != nil || n == 0 {
			return false
		}
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE channel = 'sms'`).Scan(&appliedBefore)
		return true
	})
	if appliedBefore >= backlog {
		t.Fatalf("the live message waited for the whole backfill (%d of %d applied first)", appliedBefore, backlog)
	}
	bustest.WaitFor(t, 120*time.Second, "the backfill applied", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE channel = 'sms'`).Scan(&n)
		return n == backlog
	})
	t.Logf("live message applied after %d of %d backfill events", appliedBefore, backlog)
}

// The analytics views answer for BI tools.
func TestAnalyticsViews(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	dbURL := pgtest.NewDBURL(t)
	start(t, b.Client, dbURL, nil)
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-time.Hour)
	for i, e := range []bus.Outgoing{
		{Subject: "omni.in.wechatkf.message", Event: inbound(t, "a1", "wechatkf", "wechat_openid", "oA", "hi", t0, map[string]string{"kind": "phone", "value": "13800138000"})},
		{Subject: "omni.in.sms.message", Event: inbound(t, "a2", "sms", "phone", "13800138000", "hi again", t0.Add(time.Minute))},
	} {
		if err := b.Client.Publish(ctx, e.Subject, e.Event); err != nil {
			t.Fatal(i, err)
		}
	}
	pool := openPool(t, dbURL)
	bustest.WaitFor(t, 20*time.Second, "both applied", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM messages`).Scan(&n)
		return n == 2
	})
	for view, want := range map[string]int{
		"conversations_per_channel_day": 2, "conversation_times": 1, "response_times_day": 1,
		"cross_channel_share_day": 1, "merges_day": 0, "tool_success_day": 0, "messages_day": 2,
	} {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM analytics.`+view).Scan(&n); err != nil {
			t.Fatalf("analytics.%s: %v", view, err)
		}
		if n != want {
			t.Errorf("analytics.%s has %d rows, want %d", view, n, want)
		}
	}
	var pct float64
	if err := pool.QueryRow(ctx, `SELECT cross_channel_pct FROM analytics.cross_channel_share_day`).Scan(&pct); err != nil || pct != 100 {
		t.Errorf("cross-channel share %v %v, want 100", pct, err)
	}
}
