package alert_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/alert"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// recorder keeps published events and validates them against their schemas.
// recorder fakes the one method of bus.Publisher a Monitor calls; the embedded nil interface
// panics if another is.
type recorder struct {
	bus.Publisher
	t      *testing.T
	mu     sync.Mutex
	events []event.Event
}

func (r *recorder) Publish(_ context.Context, subject string, e event.Event) error {
	if err := schema.Default().Validate(e.Type(), e.Data()); err != nil {
		r.t.Errorf("%s: %v", e.Type(), err)
	}
	if subject != e.Type() {
		r.t.Errorf("published %s on %s", e.Type(), subject)
	}
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	return nil
}

func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Type())
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type testBundle struct {
	clock *clock
	rec   *recorder
	opts  alert.Options // what the monitor was made with; start makes another with them
}

// setup starts a monitor of service logistics on a recorder and an injected clock; opts adjust
// its options.
func setup(t *testing.T, opts ...func(*alert.Options)) (*alert.Monitor, *testBundle) {
	t.Helper()
	b := &testBundle{clock: &clock{now: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}, rec: &recorder{t: t}}
	b.opts = alert.Options{Service: "logistics", Now: b.clock.Now, Log: quiet()}
	for _, o := range opts {
		o(&b.opts)
	}
	return b.start(t), b
}

// start makes a monitor with the bundle's options: a restarted process.
func (b *testBundle) start(t *testing.T) *alert.Monitor {
	t.Helper()
	m, err := alert.NewMonitor(b.rec, b.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// record spreads n calls with the given number of failures (timeouts) over one second.
func record(m *alert.Monitor, b *testBundle, n, failures int) {
	for i := range n {
		outcome := "ok"
		if i < failures {
			outcome = "timeout"
		}
		m.Record("sfexpress", "route_query", outcome)
	}
	b.clock.Advance(time.Second)
}

func TestAlertFiresOnceAtThresholdAndResolves(t *testing.T) {
	t.Parallel()
	m, b := setup(t)
	// Below the minimum number of calls nothing fires, whatever the ratio.
	record(m, b, 3, 1)
	if st := m.Status("sfexpress", "route_query"); st.Raised || st.Calls != 3 {
		t.Fatalf("1 failure in 3 calls: %+v, want no alert", st)
	}
	// 99 calls with 1 failure: above 1 % but below the 100 calls needed.
	record(m, b, 96, 0)
	if st := m.Status("sfexpress", "route_query"); st.Raised || st.Calls != 99 {
		t.Fatalf("1 failure in 99 calls: %+v, want no alert", st)
	}
	// The 100th call: 1 of 100 = 1 % ≥ 1 %: raised.
	record(m, b, 1, 0)
	if st := m.Status("sfexpress", "route_query"); !st.Raised {
		t.Fatalf("1 failure in 100 calls: %+v, want raised", st)
	}
	// More failures do not raise it again.
	record(m, b, 100, 50)
	// Recovery: old failures slide out of the 5-minute window and successes come in.
	for range 6 {
		b.clock.Advance(time.Minute)
		record(m, b, 200, 0)
	}
	m.Close()
	got := b.rec.types()
	want := []string{alert.TypeRaised, alert.TypeResolved}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("events %v, want %v", got, want)
	}
	var raised, resolved struct {
		AlertID  string  `json:"alert_id"`
		Ratio    float64 `json:"ratio"`
		Calls    int     `json:"calls"`
		Failures int     `json:"failures"`
	}
	_ = event.DecodeData(b.rec.events[0], &raised)
	_ = event.DecodeData(b.rec.events[1], &resolved)
	if raised.AlertID == "" || raised.AlertID != resolved.AlertID {
		t.Fatalf("alert ids %q / %q must match", raised.AlertID, resolved.AlertID)
	}
	if raised.Calls != 100 || raised.Failures != 1 {
		t.Fatalf("raised at %+v, want 1 of 100", raised)
	}
	if resolved.Ratio > 0.005 {
		t.Fatalf("resolved at ratio %g", resolved.Ratio)
	}
}

func TestHysteresis(t *testing.T) {
	t.Parallel()
	m, b := setup(t)
	record(m, b, 100, 1) // exactly 1 %: raised
	if !m.Status("sfexpress", "route_query").Raised {
		t.Fatal("1 % with 100 calls must raise")
	}
	// Falling to 0.8 % (below the threshold, above the 0.5 % resolve ratio) keeps it raised.
	record(m, b, 150, 1)
	if st := m.Status("sfexpress", "route_query"); !st.Raised || st.Ratio >= 0.01 || st.Ratio <= 0.005 {
		t.Fatalf("at %.4f: %+v, want still raised", st.Ratio, st)
	}
	// At 0.5 % it resolves.
	record(m, b, 150, 0)
	if st := m.Status("sfexpress", "route_query"); st.Raised {
		t.Fatalf("at %.4f: still raised", st.Ratio)
	}
	m.Close()
	if got := b.rec.types(); len(got) != 2 {
		t.Fatalf("events %v, want raised then resolved", got)
	}
}

func TestIdleRouteResolvesWhenWindowEmpties(t *testing.T) {
	t.Parallel()
	m, b := setup(t)
	record(m, b, 100, 10)
	b.clock.Advance(4 * time.Minute)
	m.Tick()
	if !m.Status("sfexpress", "route_query").Raised {
		t.Fatal("resolved while the failures are still in the window")
	}
	b.clock.Advance(time.Minute + time.Second)
	m.Tick()
	if m.Status("sfexpress", "route_query").Raised {
		t.Fatal("still raised with an empty window")
	}
	m.Close()
	if got := b.rec.types(); len(got) != 2 || got[1] != alert.TypeResolved {
		t.Fatalf("events %v", got)
	}
}

func TestCanceledCallsDoNotCount(t *testing.T) {
	t.Parallel()
	m, b := setup(t)
	for range 200 {
		m.Record("crm", "lookup", "canceled")
	}
	record(m, b, 0, 0)
	if st := m.Status("crm", "lookup"); st.Calls != 0 {
		t.Fatalf("canceled calls counted: %+v", st)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, o := range []alert.Options{{}, {Service: "x", Threshold: 2}, {Service: "x", Threshold: 0.01, ResolveRatio: 0.02},
		{Service: "x", QuietPeriod: 6 * time.Minute}} {
		if _, err := alert.NewMonitor(&recorder{t: t}, o); err == nil {
			t.Errorf("NewMonitor(%+v) accepted", o)
		}
	}
}

func TestAlertsLandOnOpsStream(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	c := &clock{now: time.Now()}
	m, err := alert.NewMonitor(b.Client, alert.Options{Service: "logistics", Now: c.Now, Log: quiet(), MinCalls: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		outcome := "ok"
		if i == 0 {
			outcome = "error"
		}
		m.Record("sfexpress", "route_query", outcome)
	}
	m.Close()
	if n := b.StoredCount(t, bus.StreamOps, alert.SubjectRaised); n != 1 {
		t.Fatalf("raised alerts stored in %s: %d, want 1", bus.StreamOps, n)
	}
}

// calls records outcomes one at a time on salesforce/lookup, every apart.
func calls(m *alert.Monitor, b *testBundle, every time.Duration, outcomes ...string) {
	for _, o := range outcomes {
		m.Record("salesforce", "lookup", o)
		b.clock.Advance(every)
	}
}

// repeat returns n outcomes: "timeout" for each i with fail(i), "ok" otherwise.
func repeat(n int, fail func(i int) bool) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "ok"
		if fail(i) {
			out[i] = "timeout"
		}
	}
	return out
}

// outage raises the alert of salesforce/lookup: 100 calls, one every 3 s, one in four failing;
// the last failure is 12 s old when it returns (and the first 10 calls have left the window).
func outage(t *testing.T, m *alert.Monitor, b *testBundle) {
	t.Helper()
	calls(m, b, 3*time.Second, repeat(100, func(i int) bool { return i%4 == 0 })...)
	if st := m.Status("salesforce", "lookup"); !st.Raised {
		t.Fatalf("after the outage: %+v, want raised", st)
	}
}

func decode(t *testing.T, e event.Event) (d struct {
	AlertID  string  `json:"alert_id"`
	Kind     string  `json:"kind"`
	Ratio    float64 `json:"ratio"`
	Calls    int     `json:"calls"`
	Failures int     `json:"failures"`
	Summary  string  `json:"summary"`
}) {
	t.Helper()
	if err := event.DecodeData(e, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// A quiet route that fails outright — an open breaker answering 49 of 60 calls with its
// fallback — raises its alert although the 1 % rule's floor (100 calls) is not reached; one
// failure in three calls does not.
func TestQuietRouteOutageRaises(t *testing.T) {
	t.Parallel()
	m, b := setup(t)
	calls(m, b, 2*time.Second, "ok", "timeout", "ok")
	if st := m.Status("salesforce", "lookup"); st.Raised {
		t.Fatalf("1 failure in 3 calls: %+v, want quiet", st)
	}
	calls(m, b, 2*time.Second, repeat(57, func(i int) bool { return i < 48 })...)
	st := m.Status("salesforce", "lookup")
	if !st.Raised || st.Calls != 60 || st.Failures != 49 {
		t.Fatalf("49 of 60 calls failed: %+v, want raised", st)
	}
	m.Close()
	if got := b.rec.types(); len(got) != 1 || got[0] != alert.TypeRaised {
		t.Fatalf("events %v", got)
	}
	if r := decode(t, b.rec.events[0]); !strings.Contains(r.Summary, "fewer than the 100 calls the 1.0% rule needs") {
		t.Fatalf("summary %q", r.Summary)
	}
}

func TestQuietRouteResolvesOnRecovery(t *testing.T) {
	t.Parallel()
	m, b := setup(t)
	outage(t, m, b)
	// The vendor recovers; the route gets a call every 20 s. The window soon holds fewer than
	// MinCalls calls: the ratio no longer counts, the quiet rule does.
	calls(m, b, 20*time.Second, "ok", "ok", "ok")
	if st := m.Status("salesforce", "lookup"); !st.Raised || st.Calls >= 100 {
		t.Fatalf("52 s after the last failure: %+v, want still raised (quiet period 1m) with fewer than 100 calls", st)
	}
	calls(m, b, 20*time.Second, "ok")
	if st := m.Status("salesforce", "lookup"); st.Raised {
		t.Fatalf("72 s after the last failure, after 7 successes: %+v, want resolved", st)
	}
	m.Close()
	got := b.rec.types()
	if len(got) != 2 || got[0] != alert.TypeRaised || got[1] != alert.TypeResolved {
		t.Fatalf("events %v, want raised then resolved", got)
	}
	raised, resolved := decode(t, b.rec.events[0]), decode(t, b.rec.events[1])
	if raised.AlertID != resolved.AlertID || resolved.Kind != alert.KindVendorFailureRatio {
		t.Fatalf("resolved %+v does not end raised %+v", resolved, raised)
	}
	if !strings.Contains(resolved.Summary, "recovered: 7 calls succeeded since the last failure") || resolved.Calls >= 100 {
		t.Fatalf("resolved %+v", resolved)
	}
}

func TestQuietRouteWithIntermittentFailuresDoesNotFlap(t *testing.T) {
	t.Parallel()
	m, b := setup(t)
	outage(t, m, b)
	// Ten minutes of a call every 10 s, one in four failing: never a minute without a failure.
	calls(m, b, 10*time.Second, repeat(60, func(i int) bool { return i%4 == 3 })...)
	m.Tick()
	if st := m.Status("salesforce", "lookup"); !st.Raised || st.Calls >= 100 {
		t.Fatalf("still failing now and then: %+v, want raised", st)
	}
	// Failures stop: resolved once, at the success a minute after the last failure.
	calls(m, b, 10*time.Second, repeat(6, func(int) bool { return false })...)
	if st := m.Status("salesforce", "lookup"); st.Raised || st.Calls != 0 {
		t.Fatalf("a minute without failures: %+v, want resolved and the window restarted", st)
	}
	// The failures forgiven do not come back: an isolated failure and a burst of traffic (which
	// would have brought the old window back over MinCalls) raise nothing.
	calls(m, b, time.Second, "timeout")
	calls(m, b, 100*time.Millisecond, repeat(90, func(int) bool { return false })...)
	m.Tick()
	if st := m.Status("salesforce", "lookup"); st.Raised {
		t.Fatalf("after the resolve: %+v, want no new alert", st)
	}
	// A new outage on enough new calls raises a new alert, as on any route.
	calls(m, b, 100*time.Millisecond, repeat(20, func(i int) bool { return i%2 == 0 })...)
	if st := m.Status("salesforce", "lookup"); !st.Raised {
		t.Fatalf("a new outage: %+v, want raised", st)
	}
	m.Close()
	got := b.rec.types()
	if len(got) != 3 || got[0] != alert.TypeRaised || got[1] != alert.TypeResolved || got[2] != alert.TypeRaised {
		t.Fatalf("events %v, want raised, resolved, raised", got)
	}
	if first, second := decode(t, b.rec.events[0]), decode(t, b.rec.events[2]); first.AlertID == second.AlertID {
		t.Fatal("the new outage reuses the old alert id")
	}
}

func TestBusyRouteResolvesOnRatioOnly(t *testing.T) {
	t.Parallel()
	m, b := setup(t)
	record(m, b, 200, 10) // 5 %: raised
	// Minutes of successes at 1 call/s: the quiet rule's conditions hold, but with at least
	// MinCalls calls only the ratio counts, and the old failures keep it above 0.5 %.
	for range 3 {
		b.clock.Advance(time.Minute)
		record(m, b, 60, 0)
	}
	if st := m.Status("sfexpress", "route_query"); !st.Raised || st.Ratio <= 0.005 {
		t.Fatalf("busy route at %.4f: %+v, want still raised", st.Ratio, st)
	}
	// The failures slide out of the window: resolved by the ratio, as before.
	b.clock.Advance(2 * time.Minute)
	record(m, b, 120, 0)
	if st := m.Status("sfexpress", "route_query"); st.Raised || st.Calls < 100 {
		t.Fatalf("busy route after the failures left the window: %+v, want resolved", st)
	}
	m.Close()
	if got := b.rec.types(); len(got) != 2 {
		t.Fatalf("events %v, want raised then resolved", got)
	}
	if d := decode(t, b.rec.events[1]); !strings.Contains(d.Summary, "≤ 0.5%") {
		t.Fatalf("resolved by %q, want the ratio rule", d.Summary)
	}
}
