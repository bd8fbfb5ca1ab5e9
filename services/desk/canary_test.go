package desk_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/canary"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// TestOpsCanary: the ops page learns a canary rollout from its events, as a connector's
// pkg/canary publishes them: the state and plan, the per-variant calls, success and latency, a
// rollback as a banner that goes once the operator starts the rollout again.
func TestOpsCanary(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	ctx := context.Background()
	r, err := canary.Start(ctx, canary.Options{Target: "sms", Service: "sms", Baseline: "aliyun", Variants: []string{"aliyun", "tencent"},
		Config: "tencent:10%;min_calls=10", Log: quiet(),
		Publish: func(ctx context.Context, batch ...bus.Outgoing) error {
			for _, o := range batch {
				if err := b.Client.Publish(ctx, o.Subject, o.Event); err != nil {
					return err
				}
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	for i := range 90 {
		res := canary.Success
		if i%30 == 0 {
			res = canary.Failure
		}
		r.Record(context.Background(), "aliyun", res, 80*time.Millisecond)
	}
	for i := range 9 {
		res := canary.Success
		if i%3 == 2 { // 3 of 9: not yet min_calls
			res = canary.Failure
		}
		r.Record(context.Background(), "tencent", res, 40*time.Millisecond)
	}
	if err := r.Report(ctx, true); err != nil {
		t.Fatal(err)
	}
	type rollout struct {
		Target string
		State  struct{ Status, Plan, Candidate, Reason string }
		Stats  []canary.Stats
	}
	var ops struct{ Canary []rollout }
	bustest.WaitFor(t, 15*time.Second, "the rollout and its counts on the ops page", func() bool {
		ops.Canary = nil
		d.call(t, d.token, "GET", "/api/ops/routes?window=1h", nil, &ops)
		return len(ops.Canary) == 1 && ops.Canary[0].State.Status == "active" && len(ops.Canary[0].Stats) == 2 && ops.Canary[0].Stats[0].Calls > 0
	})
	c := ops.Canary[0]
	if c.Target != "sms" || c.State.Plan != "tencent:10%;min_calls=10" || c.State.Candidate != "tencent" ||
		c.Stats[0].Variant != "aliyun" || c.Stats[0].Calls != 90 || c.Stats[0].Failures != 3 || c.Stats[0].MeanMS != 80 ||
		c.Stats[1].Variant != "tencent" || c.Stats[1].Calls != 9 || c.Stats[1].P95MS != 50 {
		t.Fatalf("canary on the ops page %+v", c)
	}

	// The 10th call fails: 4 of 10 against the baseline's 3.3 %, more than 5 points over it and
	// more than 3 failures beyond what the baseline's ratio predicts.
	r.Record(context.Background(), "tencent", canary.Failure, 300*time.Millisecond)
	var alerts struct{ Alerts []store.Alert }
	bustest.WaitFor(t, 15*time.Second, "the rollback on the ops page and as a banner", func() bool {
		d.call(t, d.token, "GET", "/api/ops/routes?window=1h", nil, &ops)
		d.call(t, d.token, "GET", "/api/alerts", nil, &alerts)
		return len(ops.Canary) == 1 && ops.Canary[0].State.Status == "rolled_back" && len(alerts.Alerts) == 1
	})
	if c := ops.Canary[0]; c.Stats[1].Calls != 10 || c.Stats[1].Failures != 4 || !strings.Contains(c.State.Reason, "tencent failed 4 of 10") {
		t.Fatalf("rolled back rollout %+v", c)
	}
	if a := alerts.Alerts[0]; a.Route != "canary.sms" || !strings.Contains(a.Title, "rolled back from tencent") {
		t.Fatalf("banner %+v", a)
	}

	// The operator starts it again, smaller: a new rollout, its counts start afresh, the banner goes.
	cmd, err := event.New(canary.TypeSet, "/ops", canary.Command{Target: "sms", Plan: "tencent:5%", By: "sup-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.HandleCommand(ctx, bus.Delivery{Event: cmd, NumDelivered: 1}); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 15*time.Second, "the new rollout, without the banner", func() bool {
		d.call(t, d.token, "GET", "/api/ops/routes?window=1h", nil, &ops)
		d.call(t, d.token, "GET", "/api/alerts", nil, &alerts)
		return len(ops.Canary) == 1 && ops.Canary[0].State.Plan == "tencent:5%" && len(alerts.Alerts) == 0
	})
	if c := ops.Canary[0]; c.State.Status != "active" || len(c.Stats) != 2 || c.Stats[0].Calls != 90 || c.Stats[1].Calls != 0 {
		t.Fatalf("restarted rollout %+v", c)
	}
}

// TestOpsCanaryCountsBeforeState: counts that arrive before their rollout's state event (the
// desk subscribed after it) still show, and the state event later replaces their stand-in.
func TestOpsCanaryCountsBeforeState(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	ctx := context.Background()
	rid := "0193a5b0-7c1d-7e2f-8a3b-4c5d6e7f8a90"
	stats := []canary.Stats{{Variant: "aliyun", Calls: 50, Failures: 1, Ratio: 0.02, MeanMS: 80, P95MS: 100}, {Variant: "tencent", Calls: 5, MeanMS: 60, P95MS: 100}}
	if err := d.store.ApplyCanaryStats(ctx, "sms", rid, []byte(`{"status":"active","baseline":"aliyun","candidate":"tencent","percent":10}`),
		mustJSON(t, stats), time.Now()); err != nil {
		t.Fatal(err)
	}
	var ops struct {
		Canary []struct {
			Target string
			State  struct{ Status, Plan string }
			Stats  []canary.Stats
		}
	}
	if code := d.call(t, d.token, "GET", "/api/ops/routes?window=1h", nil, &ops); code != 200 || len(ops.Canary) != 1 || ops.Canary[0].Stats[0].Calls != 50 {
		t.Fatalf("counts before the state: %d %+v", code, ops)
	}
	if err := d.store.ApplyCanaryState(ctx, "sms", rid, []byte(`{"status":"active","plan":"tencent:10%"}`), time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	d.call(t, d.token, "GET", "/api/ops/routes?window=1h", nil, &ops)
	if c := ops.Canary[0]; c.State.Plan != "tencent:10%" || c.Stats[0].Calls != 50 {
		t.Fatalf("after the state event: %+v", c)
	}
}
