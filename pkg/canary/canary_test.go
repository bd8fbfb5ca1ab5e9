package canary_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/canary"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var variants = []string{"aliyun", "tencent"}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text string
		want       *canary.Plan
		wantErr    string
	}{
		{name: "empty", text: ""},
		{name: "off", text: " OFF "},
		{name: "share", text: "tencent:10%", want: &canary.Plan{Baseline: "aliyun", Candidate: "tencent", Percent: 10,
			Margin: canary.DefaultMargin, MinCalls: canary.DefaultMinCalls}},
		{name: "selectors and rule", text: "tencent:12.5% ; channel=sms ; account=omnibus,shop ; agent=a1,a2 ; group=vip ; margin=2% ; min_calls=50",
			want: &canary.Plan{Baseline: "aliyun", Candidate: "tencent", Percent: 12.5, Margin: 0.02, MinCalls: 50,
				Selectors: canary.Selectors{Channels: []string{"sms"}, Accounts: []string{"omnibus", "shop"}, Agents: []string{"a1", "a2"}, Groups: []string{"vip"}}}},
		{name: "unknown variant", text: "tencnet:10%", wantErr: `"tencnet" is not a variant (aliyun, tencent) (did you mean tencent?)`},
		{name: "baseline as candidate", text: "aliyun:10%", wantErr: "already the baseline"},
		{name: "no share", text: "tencent", wantErr: "want <candidate>:<percent>%"},
		{name: "share over 100", text: "tencent:150%", wantErr: "want 0% to 100%"},
		{name: "unknown clause", text: "tencent:10%;agents=a1", wantErr: `unknown clause "agents"`},
		{name: "empty value", text: "tencent:10%;agent=a1,", wantErr: "empty or malformed value"},
		{name: "bad min_calls", text: "tencent:10%;min_calls=0", wantErr: "min_calls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := canary.Parse(tc.text, "aliyun", variants)
			if tc.wantErr != "" {
				if !errors.Is(err, canary.ErrInvalidPlan) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) = %v, want ErrInvalidPlan containing %q", tc.text, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tc.want)
			if string(gj) != string(wj) {
				t.Fatalf("Parse(%q) = %s, want %s", tc.text, gj, wj)
			}
			if got != nil { // String is read back to the same plan
				again, err := canary.Parse(got.String(), "aliyun", variants)
				if err != nil {
					t.Fatal(err)
				}
				if aj, _ := json.Marshal(again); string(aj) != string(gj) {
					t.Fatalf("Parse(String()) = %s, want %s", aj, gj)
				}
			}
		})
	}
}

// memPub collects published events.
type memPub struct {
	mu  sync.Mutex
	out []bus.Outgoing
}

func (m *memPub) publish(_ context.Context, batch ...bus.Outgoing) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.out = append(m.out, batch...)
	return nil
}

func (m *memPub) types() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ts []string
	for _, o := range m.out {
		ts = append(ts, o.Event.Type())
	}
	return ts
}

func start(t *testing.T, o canary.Options) *canary.Rollout {
	t.Helper()
	o.Target, o.Service, o.Baseline, o.Variants = "sms", "sms", "aliyun", variants
	r, err := canary.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// TestShareAndStickiness: with 10 % on the candidate over N distinct customers, the share is
// within a binomial tolerance (4 standard deviations) and every customer gets the same variant
// on every pick; raising the share keeps the customers already on the candidate there.
func TestShareAndStickiness(t *testing.T) {
	t.Parallel()
	pub := &memPub{}
	r := start(t, canary.Options{Config: "tencent:10%", Publish: pub.publish})
	const n = 5000
	first := map[string]string{}
	onCandidate := 0
	for i := range n {
		key := fmt.Sprintf("phone:+86138%08d", i)
		d := r.Pick(canary.Request{Key: key, Channel: "sms"})
		first[key] = d.Variant
		if d.Variant == "tencent" {
			onCandidate++
		}
	}
	t.Logf("%d of %d customers on the candidate", onCandidate, n)
	p := 0.10
	sd := math.Sqrt(n * p * (1 - p))
	if diff := math.Abs(float64(onCandidate) - n*p); diff > 4*sd {
		t.Fatalf("%d of %d customers on the candidate, want %v ± %.0f", onCandidate, n, n*p, 4*sd)
	}
	for key, v := range first {
		for range 3 {
			if got := r.Pick(canary.Request{Key: key, Channel: "sms"}).Variant; got != v {
				t.Fatalf("customer %s got %s, then %s", key, v, got)
			}
		}
	}
	if got := r.Pick(canary.Request{Channel: "sms"}).Variant; got != "aliyun" {
		t.Fatalf("a request without a customer key went to %s, want the baseline", got)
	}
	if err := r.HandleCommand(context.Background(), command(t, "tencent:30%")); err != nil {
		t.Fatal(err)
	}
	for key, v := range first {
		if v == "tencent" && r.Pick(canary.Request{Key: key}).Variant != "tencent" {
			t.Fatalf("raising the share moved customer %s off the candidate", key)
		}
	}
	if got, want := pub.types(), []string{canary.TypeStarted, canary.TypeChanged}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestSelectors(t *testing.T) {
	t.Parallel()
	r := start(t, canary.Options{Config: "tencent:100%;agent=a1,a2;group=pilot;account=omnibus", Publish: (&memPub{}).publish})
	for _, tc := range []struct {
		req  canary.Request
		want string
	}{
		{canary.Request{Key: "c1", Agent: "a1", Account: "omnibus"}, "tencent"},
		{canary.Request{Key: "c1", Agent: "a3", Group: "pilot", Account: "omnibus"}, "tencent"},
		{canary.Request{Key: "c1", Agent: "a3", Account: "omnibus"}, "aliyun"},
		{canary.Request{Key: "c1", Agent: "a1", Account: "other"}, "aliyun"},
		{canary.Request{Key: "c1", Account: "omnibus"}, "aliyun"},
	} {
		if got := r.Pick(tc.req).Variant; got != tc.want {
			t.Errorf("Pick(%+v) = %s, want %s", tc.req, got, tc.want)
		}
	}
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// TestRollbackRule: the candidate is rolled back only once it made min_calls calls and fails
// more than margin over the baseline; an equally failing baseline shields it.
func TestRollbackRule(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	t.Run("below min calls", func(t *testing.T) {
		t.Parallel()
		r := start(t, canary.Options{Config: "tencent:10%;min_calls=10", Publish: (&memPub{}).publish, Now: clk.Now})
		for range 9 {
			r.Record(context.Background(), "tencent", canary.Failure, 10*time.Millisecond)
		}
		if st := r.State().Status; st != canary.StatusActive {
			t.Fatalf("status %s after 9 failures with min_calls=10", st)
		}
		r.Record(context.Background(), "tencent", canary.Skip, 0) // not counted
		if st := r.State().Status; st != canary.StatusActive {
			t.Fatalf("status %s after a skipped call", st)
		}
		r.Record(context.Background(), "tencent", canary.Failure, 10*time.Millisecond)
		if st := r.State().Status; st != canary.StatusRolledBack {
			t.Fatalf("status %s after 10 failures, want rolled_back", st)
		}
		if got := r.Pick(canary.Request{Key: "anyone"}).Variant; got != "aliyun" {
			t.Fatalf("after the rollback Pick = %s", got)
		}
	})
	t.Run("baseline fails alike", func(t *testing.T) {
		t.Parallel()
		r := start(t, canary.Options{Config: "tencent:10%;min_calls=20", Publish: (&memPub{}).publish, Now: clk.Now})
		for i := range 100 {
			res := canary.Success
			if i%5 == 0 {
				res = canary.Failure
			}
			r.Record(context.Background(), "aliyun", res, 20*time.Millisecond) // 20 %
		}
		for i := range 20 {
			res := canary.Success
			if i%5 == 0 {
				res = canary.Failure
			}
			r.Record(context.Background(), "tencent", res, 20*time.Millisecond) // 20 % too
		}
		if st := r.State().Status; st != canary.StatusActive {
			t.Fatalf("status %s with the candidate failing as often as the baseline", st)
		}
		s := r.Stats()
		if s[0].Variant != "aliyun" || s[0].Calls != 100 || s[0].Failures != 20 || s[1].Calls != 20 || s[1].Failures != 4 || s[1].P95MS != 25 {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("two unlucky failures", func(t *testing.T) {
		t.Parallel()
		// 2 of 25 against a clean baseline is 8 %, over the 5-point margin, but two failures are
		// not evidence: the rollback waits for MinExcessFailures more than the baseline predicts.
		r := start(t, canary.Options{Config: "tencent:10%;min_calls=20", Publish: (&memPub{}).publish, Now: clk.Now})
		for range 200 {
			r.Record(context.Background(), "aliyun", canary.Success, 20*time.Millisecond)
		}
		for i := range 25 {
			res := canary.Success
			if i == 3 || i == 17 {
				res = canary.Failure
			}
			r.Record(context.Background(), "tencent", res, 20*time.Millisecond)
		}
		if st := r.State().Status; st != canary.StatusActive {
			t.Fatalf("status %s after 2 failures in 25 calls", st)
		}
		r.Record(context.Background(), "tencent", canary.Failure, 20*time.Millisecond)
		if st := r.State().Status; st != canary.StatusRolledBack {
			t.Fatalf("status %s after the third failure (3 of 26, 11.5 %%), want rolled_back", st)
		}
	})
}

func command(t *testing.T, plan string) bus.Delivery {
	t.Helper()
	e, err := event.New(canary.TypeSet, "/ops", canary.Command{Target: "sms", Plan: plan, By: "sup-1"})
	if err != nil {
		t.Fatal(err)
	}
	return bus.Delivery{Event: e, NumDelivered: 1}
}

// TestSharedState runs two replicas on one NATS KV bucket: a command applied by one reaches the
// other, one replica's rollback is stored once and announced once (validated against the
// schema by the bus), and a restart with the same configuration keeps the rollback.
func TestSharedState(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	kv, err := b.Client.KeyValue(ctx, canary.KVConfig)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(ctx context.Context, batch ...bus.Outgoing) error {
		for _, o := range batch {
			if err := b.Client.Publish(ctx, o.Subject, o.Event); err != nil {
				return err
			}
		}
		return nil
	}
	o := canary.Options{Config: "tencent:10%;min_calls=5", Publish: publish, KV: kv}
	r1 := start(t, o)
	r2 := start(t, o)
	if got := len(b.Events(t, bus.StreamOps, canary.SubjectStarted)); got != 1 {
		t.Fatalf("%d started events for two replicas, want 1", got)
	}
	if err := r1.HandleCommand(ctx, command(t, "tencent:20%;min_calls=5")); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 10*time.Second, "replica 2 sees 20 %", func() bool { return r2.State().Percent == 20 })
	for range 5 {
		r2.Record(context.Background(), "tencent", canary.Failure, time.Millisecond)
	}
	if r2.State().Status != canary.StatusRolledBack {
		t.Fatal("replica 2 did not roll back")
	}
	bustest.WaitFor(t, 10*time.Second, "replica 1 sees the rollback", func() bool { return r1.State().Status == canary.StatusRolledBack })
	evs := b.Events(t, bus.StreamOps, canary.SubjectRolledBack)
	if len(evs) != 1 {
		t.Fatalf("%d rolled_back events, want 1", len(evs))
	}
	var d struct {
		Candidate string         `json:"candidate"`
		Stats     []canary.Stats `json:"stats"`
		Reason    string         `json:"reason"`
	}
	if err := json.Unmarshal(evs[0].Data(), &d); err != nil {
		t.Fatal(err)
	}
	if d.Candidate != "tencent" || len(d.Stats) != 2 || d.Stats[1].Failures != 5 || !strings.Contains(d.Reason, "tencent failed 5 of 5") {
		t.Fatalf("rolled_back data %s", evs[0].Data())
	}
	r3 := start(t, o) // a restart, same configuration
	if st := r3.State().Status; st != canary.StatusRolledBack {
		t.Fatalf("a restart with the same configuration made the rollout %s, want it kept rolled_back", st)
	}
	if got := len(b.Events(t, bus.StreamOps, canary.SubjectStarted)); got != 1 {
		t.Fatalf("%d started events after a restart, want 1", got)
	}
	o.Config = "tencent:5%" // an operator edits the configuration: a new rollout
	r4 := start(t, o)
	if st := r4.State(); st.Status != canary.StatusActive || st.Percent != 5 {
		t.Fatalf("new configuration gave %+v", st)
	}
	if err := r4.Report(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := len(b.Events(t, bus.StreamOps, canary.SubjectMeasured)); got != 1 {
		t.Fatalf("%d measured events, want 1", got)
	}
	if err := r4.HandleCommand(ctx, command(t, "off")); err != nil {
		t.Fatal(err)
	}
	if got := len(b.Events(t, bus.StreamOps, canary.SubjectEnded)); got != 1 {
		t.Fatalf("%d ended events, want 1", got)
	}
	if err := r4.HandleCommand(ctx, command(t, "tencnet:5%")); !bus.IsPermanent(err) || !errors.Is(err, canary.ErrInvalidPlan) {
		t.Fatalf("an invalid plan: %v, want a permanent ErrInvalidPlan", err)
	}
}

// TestStoredCandidateNotConfigured: a replica (or a restart) that cannot use the stored
// rollout's candidate sends everything to the baseline instead of to a variant it does not have.
func TestStoredCandidateNotConfigured(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	kv, err := b.Client.KeyValue(ctx, canary.KVConfig)
	if err != nil {
		t.Fatal(err)
	}
	pub := (&memPub{}).publish
	full := start(t, canary.Options{Publish: pub, KV: kv})
	if err := full.HandleCommand(ctx, command(t, "tencent:100%")); err != nil { // set at run time
		t.Fatal(err)
	}
	if got := full.Pick(canary.Request{Key: "c1"}).Variant; got != "tencent" {
		t.Fatalf("Pick = %s with tencent at 100 %%", got)
	}
	// Another replica, or a restart, without Tencent's credentials: the stored rollout is kept
	// (the configuration did not change) but nothing goes to Tencent.
	o := canary.Options{Target: "sms", Service: "sms", Baseline: "aliyun", Variants: []string{"aliyun"}, Publish: pub, KV: kv}
	partial, err := canary.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(partial.Close)
	if got := partial.Pick(canary.Request{Key: "c1"}).Variant; got != "aliyun" {
		t.Fatalf("Pick = %s on a replica without tencent", got)
	}
}
