// Package alert watches the failure ratio of each vendor route and raises an operational alert
// when it gets too high: omni.ops.alert.raised once when a route's ratio reaches the threshold,
// omni.ops.alert.resolved once when it has recovered (stream OMNI_OPS).
//
// The pkg/resilience pipeline feeds every call's outcome to a Monitor; nothing else needs to.
//
// Rules (defaults in Options):
//   - The window is a sliding 5 minutes made of 10 count buckets of 30 s: each bucket counts the
//     calls and failures that ended in it, and the window is the sum of the buckets of the last
//     5 minutes. Memory per route is constant, whatever the traffic.
//   - A failure is any outcome but "ok"; "canceled" (the caller gave up) is not counted at all.
//     Connectors map a vendor's business answers ("no such waybill") to success, so a failure is
//     a call the vendor did not serve.
//   - Raise when the window holds at least MinCalls calls (100) and failures/calls >= Threshold
//     (1 %). MinCalls keeps small samples quiet: 1 failure in 3 calls is 33 % but says little,
//     and 100 calls is the least for which 1 % means one failure.
//   - Resolve when, with at least MinCalls calls, the ratio is <= ResolveRatio (half the
//     threshold), or when the window holds no call at all. The gap between the two thresholds is
//     the hysteresis that keeps a ratio hovering around 1 % from flapping.
//   - One alert per route at a time, per process: each replica of a service watches its own
//     calls. Events are published in the background and never delay a call.
package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/event"
)

// CloudEvents types and subjects of alerts.
const (
	TypeRaised      = "omni.ops.alert.raised"
	TypeResolved    = "omni.ops.alert.resolved"
	SubjectRaised   = "omni.ops.alert.raised"
	SubjectResolved = "omni.ops.alert.resolved"
	// KindVendorFailureRatio is the kind of alert a Monitor raises.
	KindVendorFailureRatio = "vendor_failure_ratio"
)

// BusPublisher is the one method of bus.Publisher alerts need (*bus.Client has it).
type BusPublisher interface {
	Publish(ctx context.Context, subject string, e event.Event) error
}

// Options configure a Monitor. Zero fields take the defaults shown.
type Options struct {
	// Service is the watching service (the alerts' service field). Required.
	Service string
	// Source is the events' CloudEvents source. Default "/connectors/<Service>".
	Source string
	// Window is the sliding window. Default 5 minutes.
	Window time.Duration
	// Buckets the window is made of. Default 10.
	Buckets int
	// Threshold raises an alert at failures/calls >= Threshold. Default 0.01 (1 %).
	Threshold float64
	// ResolveRatio resolves a raised alert at failures/calls <= ResolveRatio. Default Threshold/2.
	ResolveRatio float64
	// MinCalls is the least number of calls in the window for the ratio to count. Default 100.
	MinCalls int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log receives publish failures. Default slog.Default().
	Log *slog.Logger
}

// ErrInvalidOptions is wrapped by NewMonitor for bad options.
var ErrInvalidOptions = errors.New("alert: invalid options")

func (o *Options) setDefaults() error {
	if o.Service == "" {
		return fmt.Errorf("%w: Service is required", ErrInvalidOptions)
	}
	if o.Source == "" {
		o.Source = "/connectors/" + o.Service
	}
	if o.Window <= 0 {
		o.Window = 5 * time.Minute
	}
	if o.Buckets <= 0 {
		o.Buckets = 10
	}
	if o.Threshold <= 0 {
		o.Threshold = 0.01
	}
	if o.ResolveRatio <= 0 {
		o.ResolveRatio = o.Threshold / 2
	}
	if o.MinCalls <= 0 {
		o.MinCalls = 100
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	switch {
	case o.Threshold > 1:
		return fmt.Errorf("%w: Threshold is a ratio in (0, 1], got %g", ErrInvalidOptions, o.Threshold)
	case o.ResolveRatio > o.Threshold:
		return fmt.Errorf("%w: ResolveRatio (%g) must not exceed Threshold (%g)", ErrInvalidOptions, o.ResolveRatio, o.Threshold)
	case o.Window/time.Duration(o.Buckets) <= 0:
		return fmt.Errorf("%w: Window %s is too short for %d buckets", ErrInvalidOptions, o.Window, o.Buckets)
	}
	return nil
}

type routeKey struct{ vendor, op string }

type bucket struct {
	index     int64 // start time / width; -1 when unused
	calls     int
	failures  int
	byOutcome map[string]int
}

type route struct {
	buckets  []bucket
	raised   bool
	alertID  string
	raisedAt time.Time
}

// Status is a route's window as the monitor sees it.
type Status struct {
	Raised          bool
	Calls, Failures int
	Ratio           float64
}

// Monitor keeps one window per route. It is safe for concurrent use.
type Monitor struct {
	o      Options
	pub    BusPublisher
	width  time.Duration
	mu     sync.Mutex
	routes map[routeKey]*route
	out    chan event.Event
	done   chan struct{}
	stop   chan struct{}
	once   sync.Once
}

// NewMonitor starts a monitor that publishes its alerts through pub; Close stops it.
func NewMonitor(pub BusPublisher, o Options) (*Monitor, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, fmt.Errorf("%w: a bus publisher is required", ErrInvalidOptions)
	}
	m := &Monitor{o: o, pub: pub, width: o.Window / time.Duration(o.Buckets), routes: map[routeKey]*route{},
		out: make(chan event.Event, 256), done: make(chan struct{}), stop: make(chan struct{})}
	go m.run()
	return m, nil
}

// Record counts one finished call of vendor/op with its outcome (see the package rules) and
// raises or resolves the route's alert when the window crosses a threshold.
func (m *Monitor) Record(vendor, op, outcome string) {
	if outcome == "canceled" {
		return
	}
	now := m.o.Now()
	idx := now.UnixNano() / int64(m.width)
	m.mu.Lock()
	defer m.mu.Unlock()
	k := routeKey{vendor, op}
	r := m.routes[k]
	if r == nil {
		r = &route{buckets: make([]bucket, m.o.Buckets)}
		for i := range r.buckets {
			r.buckets[i].index = -1
		}
		m.routes[k] = r
	}
	b := &r.buckets[idx%int64(len(r.buckets))]
	if b.index != idx {
		*b = bucket{index: idx}
	}
	b.calls++
	if outcome != "ok" {
		b.failures++
		if b.byOutcome == nil {
			b.byOutcome = map[string]int{}
		}
		b.byOutcome[outcome]++
	}
	m.evaluate(k, r, now, idx)
}

// Tick re-evaluates every route at the current time, resolving alerts whose window emptied. The
// monitor ticks by itself once per bucket; tests with an injected clock call it.
func (m *Monitor) Tick() {
	now := m.o.Now()
	idx := now.UnixNano() / int64(m.width)
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, r := range m.routes {
		m.evaluate(k, r, now, idx)
	}
}

// Status returns the current window of vendor/op.
func (m *Monitor) Status(vendor, op string) Status {
	now := m.o.Now()
	idx := now.UnixNano() / int64(m.width)
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.routes[routeKey{vendor, op}]
	if r == nil {
		return Status{}
	}
	calls, failures, _ := m.sum(r, idx)
	return Status{Raised: r.raised, Calls: calls, Failures: failures, Ratio: ratio(failures, calls)}
}

func (m *Monitor) sum(r *route, idx int64) (calls, failures int, byOutcome map[string]int) {
	for i := range r.buckets {
		b := &r.buckets[i]
		if b.index < 0 || b.index <= idx-int64(len(r.buckets)) || b.index > idx {
			continue
		}
		calls += b.calls
		failures += b.failures
		for o, n := range b.byOutcome {
			if byOutcome == nil {
				byOutcome = map[string]int{}
			}
			byOutcome[o] += n
		}
	}
	return calls, failures, byOutcome
}

func ratio(f, c int) float64 {
	if c == 0 {
		return 0
	}
	return float64(f) / float64(c)
}

// evaluate raises or resolves r's alert. m.mu is held.
func (m *Monitor) evaluate(k routeKey, r *route, now time.Time, idx int64) {
	calls, failures, byOutcome := m.sum(r, idx)
	rt := ratio(failures, calls)
	switch {
	case !r.raised && calls >= m.o.MinCalls && rt >= m.o.Threshold:
		r.raised, r.raisedAt = true, now
		id, err := uuid.NewV7()
		if err != nil {
			id = uuid.New()
		}
		r.alertID = id.String()
		m.emit(TypeRaised, raised{
			common: m.common(k, r, rt, m.o.Threshold, calls, failures,
				fmt.Sprintf("%s %s: %d of %d calls failed in the last %s (%.1f%% ≥ %.1f%%)%s", k.vendor, k.op, failures, calls,
					m.o.Window, rt*100, m.o.Threshold*100, outcomesText(byOutcome))),
			FailuresByOutcome: byOutcome,
		}, now)
	case r.raised && calls == 0:
		r.raised = false
		m.emit(TypeResolved, resolved{common: m.common(k, r, 0, m.o.ResolveRatio, 0, 0,
			fmt.Sprintf("%s %s: no calls in the last %s", k.vendor, k.op, m.o.Window)), ResolvedAt: now.UTC()}, now)
	case r.raised && calls >= m.o.MinCalls && rt <= m.o.ResolveRatio:
		r.raised = false
		m.emit(TypeResolved, resolved{common: m.common(k, r, rt, m.o.ResolveRatio, calls, failures,
			fmt.Sprintf("%s %s recovered: %d of %d calls failed in the last %s (%.1f%% ≤ %.1f%%)", k.vendor, k.op, failures, calls,
				m.o.Window, rt*100, m.o.ResolveRatio*100)), ResolvedAt: now.UTC()}, now)
	}
}

func outcomesText(by map[string]int) string {
	if len(by) == 0 {
		return ""
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ":"
	for _, k := range keys {
		s += fmt.Sprintf(" %s %d", k, by[k])
	}
	return s
}

type common struct {
	AlertID       string    `json:"alert_id"`
	Kind          string    `json:"kind"`
	Service       string    `json:"service"`
	Vendor        string    `json:"vendor"`
	Op            string    `json:"op"`
	Ratio         float64   `json:"ratio"`
	Threshold     float64   `json:"threshold"`
	Calls         int       `json:"calls"`
	Failures      int       `json:"failures"`
	WindowSeconds int       `json:"window_seconds"`
	RaisedAt      time.Time `json:"raised_at"`
	Summary       string    `json:"summary"`
}

type raised struct {
	common
	FailuresByOutcome map[string]int `json:"failures_by_outcome,omitempty"`
}

type resolved struct {
	common
	ResolvedAt time.Time `json:"resolved_at"`
}

func (m *Monitor) common(k routeKey, r *route, rt, threshold float64, calls, failures int, summary string) common {
	return common{AlertID: r.alertID, Kind: KindVendorFailureRatio, Service: m.o.Service, Vendor: k.vendor, Op: k.op,
		Ratio: rt, Threshold: threshold, Calls: calls, Failures: failures, WindowSeconds: max(1, int(m.o.Window/time.Second)),
		RaisedAt: r.raisedAt.UTC(), Summary: summary}
}

// emit queues an alert event for the background publisher. m.mu is held.
func (m *Monitor) emit(typ string, data any, now time.Time) {
	var c common
	switch d := data.(type) {
	case raised:
		c = d.common
	case resolved:
		c = d.common
	}
	e, err := event.New(typ, m.o.Source, data, event.WithTime(now), event.WithSubject(c.Vendor+"."+c.Op))
	if err != nil {
		m.o.Log.Error("alert event", "type", typ, "err", err)
		return
	}
	select {
	case m.out <- e:
	default:
		m.o.Log.Error("alert dropped: publish queue full", "type", typ, "data", string(e.Data()))
	}
}

func (m *Monitor) run() {
	defer close(m.done)
	tick := time.NewTicker(m.width)
	defer tick.Stop()
	for {
		select {
		case e := <-m.out:
			m.publish(e)
		case <-tick.C:
			m.Tick()
		case <-m.stop:
			for {
				select {
				case e := <-m.out:
					m.publish(e)
				default:
					return
				}
			}
		}
	}
}

func (m *Monitor) publish(e event.Event) {
	subject := SubjectRaised
	if e.Type() == TypeResolved {
		subject = SubjectResolved
	}
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = m.pub.Publish(ctx, subject, e)
		cancel()
		if err == nil {
			if e.Type() == TypeRaised {
				m.o.Log.Warn("alert raised", "data", string(e.Data()))
			} else {
				m.o.Log.Info("alert resolved", "data", string(e.Data()))
			}
			return
		}
	}
	m.o.Log.Error("alert not published", "type", e.Type(), "err", err, "data", string(e.Data()))
}

// Close publishes the queued alerts and stops the monitor.
func (m *Monitor) Close() {
	m.once.Do(func() { close(m.stop) })
	<-m.done
}
