package alert_test

import (
	"context"
	"io"
	"log/slog"
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
type recorder struct {
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
}

func setup(t *testing.T) (*alert.Monitor, *testBundle) {
	t.Helper()
	b := &testBundle{clock: &clock{now: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}, rec: &recorder{t: t}}
	m, err := alert.NewMonitor(b.rec, alert.Options{Service: "logistics", Now: b.clock.Now, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m, b
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

func TestQuietRouteResolvesWhenWindowEmpties(t *testing.T) {
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
	for _, o := range []alert.Options{{}, {Service: "x", Threshold: 2}, {Service: "x", Threshold: 0.01, ResolveRatio: 0.02}} {
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
