package alert

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/schemas"
)

// CloudEvents types and subjects of alerts.
const (
	TypeRaised      = schemas.TypeOpsAlertRaised
	TypeResolved    = schemas.TypeOpsAlertResolved
	SubjectRaised   = "omni.ops.alert.raised"
	SubjectResolved = "omni.ops.alert.resolved"
	// KindVendorFailureRatio is the kind of alert a Monitor raises.
	KindVendorFailureRatio = "vendor_failure_ratio"
	// KindDeadLetters is the kind of alert WatchDeadLetters raises.
	KindDeadLetters = "dead_letters"
)

// JetStreamer gives access to JetStream; *bus.Client is one. A Monitor whose publisher is also a
// JetStreamer keeps its state in a KVStore on it, unless Options.Store says otherwise.
type JetStreamer interface {
	JetStream() jetstream.JetStream
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
	// ResolveRatio resolves a raised alert at failures/calls <= ResolveRatio, with at least
	// MinCalls calls in the window. Default Threshold/2.
	ResolveRatio float64
	// MinCalls is the least number of calls in the window for the ratio to count. Default 100.
	MinCalls int
	// QuietFailures and QuietRatio raise the alert of a route with fewer than MinCalls calls in
	// the window: at least QuietFailures failed calls making at least QuietRatio of its calls
	// (an open breaker on a quiet route, 49 of 60 calls failing, is an outage the 1 % rule's
	// floor would keep silent). Defaults 5 and 0.1 (10 %): 1 failure in 3 calls stays quiet.
	QuietFailures int
	QuietRatio    float64
	// QuietPeriod is how long a route with fewer than MinCalls calls in the window must go
	// without a failure for its alert to resolve (with RecoveryCalls). Default two buckets
	// (1 minute); at most Window.
	QuietPeriod time.Duration
	// RecoveryCalls is how many calls must have succeeded since the last failure for the alert
	// of a route with fewer than MinCalls calls in the window to resolve (with QuietPeriod).
	// Default 3.
	RecoveryCalls int
	// Store keeps the routes' state across restarts (see the package doc). Default: a KVStore
	// on the default bucket (OMNI_ALERTS) when the publisher is a JetStreamer, as *bus.Client
	// is; otherwise none, and the state lives in memory only.
	Store Store
	// Instance names this replica of Service in the Store, so that replicas keep separate
	// states: a restarted replica restores what was saved under its own Instance, and replicas
	// sharing one overwrite each other's. Default "0" (one replica per service; give each of
	// several a stable name, such as its StatefulSet pod name).
	Instance string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log receives publish and store failures. Default slog.Default().
	Log *slog.Logger
}

// ErrInvalidOptions is wrapped by NewMonitor, NewKVStore and WatchDeadLetters for bad options.
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
	if o.QuietFailures <= 0 {
		o.QuietFailures = 5
	}
	if o.QuietRatio <= 0 {
		o.QuietRatio = 0.1
	}
	if o.QuietPeriod <= 0 {
		o.QuietPeriod = 2 * (o.Window / time.Duration(o.Buckets))
	}
	if o.RecoveryCalls <= 0 {
		o.RecoveryCalls = 3
	}
	if o.Instance == "" {
		o.Instance = "0"
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
	case o.QuietPeriod > o.Window:
		return fmt.Errorf("%w: QuietPeriod (%s) must not exceed Window (%s): an idle window resolves by itself", ErrInvalidOptions, o.QuietPeriod, o.Window)
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
	buckets     []bucket
	raised      bool
	alertID     string
	raisedAt    time.Time
	lastFailure time.Time // when the last failure was recorded; zero before the first
	okSince     int       // calls that succeeded since lastFailure
	dirty       bool      // changed since it was last saved
}

// Status is a route's window as the monitor sees it.
type Status struct {
	Raised          bool
	Calls, Failures int
	Ratio           float64
}

// storeTimeout bounds the Store calls of a Monitor: the restore in NewMonitor, and each save.
const storeTimeout = 5 * time.Second

// Monitor keeps one window per route. It is safe for concurrent use.
type Monitor struct {
	o        Options
	pub      bus.Publisher
	width    time.Duration
	mu       sync.Mutex
	routes   map[routeKey]*route
	restored bool // the Store's state is loaded (or there is no Store): saves may overwrite it
	out      chan event.Event
	save     chan struct{} // a raise or resolve asks for a save now
	done     chan struct{}
	stop     chan struct{}
	once     sync.Once
}

// NewMonitor starts a monitor that publishes its alerts through pub; Close stops it.
//
// With a Store (see Options.Store) it first restores the state saved by the previous Monitor of
// the same Service and Instance, waiting at most 5 s. A store it cannot read then is not an
// error: the monitor starts empty, tries again once per bucket, and saves nothing until it has
// read it, so that what a previous process saved is never overwritten unread.
func NewMonitor(pub bus.Publisher, o Options) (*Monitor, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, fmt.Errorf("%w: a bus publisher is required", ErrInvalidOptions)
	}
	if o.Store == nil {
		if j, ok := pub.(JetStreamer); ok && j.JetStream() != nil {
			s, err := NewKVStore(j.JetStream(), KVOptions{})
			if err != nil {
				return nil, err
			}
			o.Store = s
		}
	}
	m := &Monitor{o: o, pub: pub, width: o.Window / time.Duration(o.Buckets), routes: map[routeKey]*route{},
		restored: o.Store == nil, out: make(chan event.Event, 256), save: make(chan struct{}, 1),
		done: make(chan struct{}), stop: make(chan struct{})}
	m.Tick() // restores the saved state; an alert whose window emptied while the process was down resolves now
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
		r = m.newRoute()
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
		r.lastFailure, r.okSince = now, 0
	} else {
		r.okSince++
	}
	r.dirty = true
	m.evaluate(k, r, now, idx)
}

func (m *Monitor) newRoute() *route {
	r := &route{buckets: make([]bucket, m.o.Buckets)}
	r.clear()
	return r
}

// clear empties the route's window.
func (r *route) clear() {
	for i := range r.buckets {
		r.buckets[i] = bucket{index: -1}
	}
}

// Tick re-evaluates every route at the current time, resolving the alerts of routes that went
// quiet or idle; it first restores the saved state if it could not be read so far. The monitor
// ticks by itself once per bucket; tests with an injected clock call it.
func (m *Monitor) Tick() {
	if !m.isRestored() {
		m.restore()
	}
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
		r.raised, r.raisedAt, r.alertID, r.dirty = true, now, newAlertID(), true
		m.emit(TypeRaised, raised{
			common: m.common(k, r.alertID, r.raisedAt, rt, m.o.Threshold, calls, failures,
				fmt.Sprintf("%s %s: %d of %d calls failed in the last %s (%.1f%% ≥ %.1f%%)%s", k.vendor, k.op, failures, calls,
					m.o.Window, rt*100, m.o.Threshold*100, outcomesText(byOutcome))),
			FailuresByOutcome: byOutcome,
		}, now)
	case !r.raised && calls < m.o.MinCalls && failures >= m.o.QuietFailures && rt >= m.o.QuietRatio:
		r.raised, r.raisedAt, r.alertID, r.dirty = true, now, newAlertID(), true
		m.emit(TypeRaised, raised{
			common: m.common(k, r.alertID, r.raisedAt, rt, m.o.QuietRatio, calls, failures,
				fmt.Sprintf("%s %s: %d of %d calls failed in the last %s (%.1f%% ≥ %.1f%% on a route with fewer than the %d calls the %.1f%% rule needs)%s",
					k.vendor, k.op, failures, calls, m.o.Window, rt*100, m.o.QuietRatio*100, m.o.MinCalls, m.o.Threshold*100, outcomesText(byOutcome))),
			FailuresByOutcome: byOutcome,
		}, now)
	case r.raised && calls == 0:
		m.resolve(k, r, now, 0, 0, fmt.Sprintf("%s %s: no calls in the last %s", k.vendor, k.op, m.o.Window))
	case r.raised && calls >= m.o.MinCalls && rt <= m.o.ResolveRatio:
		m.resolve(k, r, now, calls, failures, fmt.Sprintf("%s %s recovered: %d of %d calls failed in the last %s (%.1f%% ≤ %.1f%%)",
			k.vendor, k.op, failures, calls, m.o.Window, rt*100, m.o.ResolveRatio*100))
	case r.raised && calls < m.o.MinCalls && r.okSince >= m.o.RecoveryCalls && now.Sub(r.lastFailure) >= m.o.QuietPeriod:
		m.resolve(k, r, now, calls, failures, fmt.Sprintf("%s %s recovered: %d calls succeeded since the last failure and none failed for %s (%d of %d calls failed in the last %s, fewer than the %d calls a ratio needs)",
			k.vendor, k.op, r.okSince, m.o.QuietPeriod, failures, calls, m.o.Window, m.o.MinCalls))
		r.clear() // the failures forgiven here must not raise the alert again
	}
}

// resolve resolves r's alert. m.mu is held.
func (m *Monitor) resolve(k routeKey, r *route, now time.Time, calls, failures int, summary string) {
	r.raised, r.dirty = false, true
	m.emit(TypeResolved, resolved{common: m.common(k, r.alertID, r.raisedAt, ratio(failures, calls), m.o.ResolveRatio, calls, failures, summary),
		ResolvedAt: now.UTC()}, now)
}

func newAlertID() string {
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}
	return id.String()
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

// Data is the data of an omni.ops.alert.raised or .resolved event as a consumer reads it: the
// fields of every kind of alert (KindVendorFailureRatio, the dead-letter watcher's), zero where an
// alert's kind does not carry them. Producers write each kind's own fields (schemas/omni.ops.alert.*).
type Data struct {
	AlertID  string    `json:"alert_id"`
	Kind     string    `json:"kind"`
	Service  string    `json:"service"`
	Summary  string    `json:"summary"`
	RaisedAt time.Time `json:"raised_at"`
	// A vendor route's failure ratio.
	Vendor            string         `json:"vendor,omitempty"`
	Op                string         `json:"op,omitempty"`
	Ratio             float64        `json:"ratio,omitempty"`
	Threshold         float64        `json:"threshold,omitempty"`
	Calls             int            `json:"calls,omitempty"`
	Failures          int            `json:"failures,omitempty"`
	WindowSeconds     int            `json:"window_seconds,omitempty"`
	FailuresByOutcome map[string]int `json:"failures_by_outcome,omitempty"`
	// Dead letters held: the service's dead-letter subject and how many.
	Subject  string `json:"subject,omitempty"`
	Messages int    `json:"messages,omitempty"`
	// ResolvedAt is set on a resolved alert.
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
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

func (m *Monitor) common(k routeKey, alertID string, raisedAt time.Time, rt, threshold float64, calls, failures int, summary string) common {
	return common{AlertID: alertID, Kind: KindVendorFailureRatio, Service: m.o.Service, Vendor: k.vendor, Op: k.op,
		Ratio: rt, Threshold: threshold, Calls: calls, Failures: failures, WindowSeconds: max(1, int(m.o.Window/time.Second)),
		RaisedAt: raisedAt.UTC(), Summary: summary}
}

// emit queues an alert event for the background publisher and asks it to save the routes'
// state. m.mu is held.
func (m *Monitor) emit(typ string, data any, now time.Time) {
	var c common
	switch d := data.(type) {
	case raised:
		c = d.common
	case resolved:
		c = d.common
	}
	select {
	case m.save <- struct{}{}:
	default: // a save is already asked for
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
			_ = publish(context.Background(), m.pub, m.o.Log, e) // logged when it fails
		case <-m.save:
			m.flush()
		case <-tick.C:
			m.Tick()
			m.flush()
		case <-m.stop:
			for {
				select {
				case e := <-m.out:
					_ = publish(context.Background(), m.pub, m.o.Log, e) // logged when it fails
				default:
					m.flush()
					return
				}
			}
		}
	}
}

// publish publishes an alert event, trying three times; it logs what it could not publish.
// publish publishes alert e, three attempts of up to 5 s each. parent gives the attempts their
// values, not its cancellation: an alert decided while stopping is still published.
func publish(parent context.Context, pub bus.Publisher, log *slog.Logger, e event.Event) error {
	subject := SubjectRaised
	if e.Type() == TypeResolved {
		subject = SubjectResolved
	}
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 5*time.Second)
		err = pub.Publish(ctx, subject, e)
		cancel()
		if err == nil {
			if e.Type() == TypeRaised {
				log.Warn("alert raised", "data", string(e.Data()))
			} else {
				log.Info("alert resolved", "data", string(e.Data()))
			}
			return nil
		}
	}
	log.Error("alert not published", "type", e.Type(), "err", err, "data", string(e.Data()))
	return err
}

// Close publishes the queued alerts, saves the routes' state and stops the monitor.
func (m *Monitor) Close() {
	m.once.Do(func() { close(m.stop) })
	<-m.done
}

// routeState is a route as saved in the Store (JSON).
type routeState struct {
	Vendor string `json:"vendor"`
	Op     string `json:"op"`
	// BucketMS is the width of the buckets; a window saved with another width is not restored.
	BucketMS       int64         `json:"bucket_ms"`
	Buckets        []bucketState `json:"buckets,omitempty"`
	Raised         bool          `json:"raised"`
	AlertID        string        `json:"alert_id,omitempty"`
	RaisedAt       time.Time     `json:"raised_at,omitzero"`
	LastFailure    time.Time     `json:"last_failure,omitzero"`
	OKSinceFailure int           `json:"ok_since_failure"`
	SavedAt        time.Time     `json:"saved_at"`
}

type bucketState struct {
	Index     int64          `json:"index"`
	Calls     int            `json:"calls"`
	Failures  int            `json:"failures"`
	ByOutcome map[string]int `json:"by_outcome,omitempty"`
}

// keyPrefix is the Store key prefix of this monitor's routes.
func (m *Monitor) keyPrefix() string {
	return KindVendorFailureRatio + "." + keyToken(m.o.Service) + "." + keyToken(m.o.Instance)
}

func (m *Monitor) isRestored() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.restored
}

// restore loads the saved routes and merges them into the live ones.
func (m *Monitor) restore() {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	saved, err := m.o.Store.Load(ctx, m.keyPrefix())
	if err != nil {
		m.o.Log.Error("alert state not restored; retrying once per bucket, saving nothing until then", "service", m.o.Service, "err", err)
		return
	}
	now := m.o.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for key, v := range saved {
		var s routeState
		if err := json.Unmarshal(v, &s); err != nil {
			m.o.Log.Warn("alert state unreadable; ignored", "key", key, "err", err)
			continue
		}
		m.merge(s, now)
		n++
	}
	m.restored = true
	if n > 0 {
		m.o.Log.Info("alert state restored", "service", m.o.Service, "routes", n)
	}
}

// merge adds a saved route to the live ones. A route that took calls before its state could be
// read (the store was unreachable at start) keeps its live window and takes over the saved
// alert, or resolves it when it raised one of its own meanwhile. m.mu is held.
func (m *Monitor) merge(s routeState, now time.Time) {
	k := routeKey{s.Vendor, s.Op}
	r := m.routes[k]
	if r == nil {
		r = m.newRoute()
		m.routes[k] = r
		r.lastFailure, r.okSince = s.LastFailure, s.OKSinceFailure
		if time.Duration(s.BucketMS)*time.Millisecond == m.width {
			for _, b := range s.Buckets {
				if b.Index < 0 {
					continue
				}
				if slot := &r.buckets[b.Index%int64(len(r.buckets))]; b.Index > slot.index {
					*slot = bucket{index: b.Index, calls: b.Calls, failures: b.Failures, byOutcome: b.ByOutcome}
				}
			}
		}
		r.raised, r.alertID, r.raisedAt = s.Raised, s.AlertID, s.RaisedAt
		return
	}
	switch {
	case !s.Raised || s.AlertID == r.alertID:
	case !r.raised:
		r.raised, r.alertID, r.raisedAt, r.dirty = true, s.AlertID, s.RaisedAt, true
	default:
		m.emit(TypeResolved, resolved{common: m.common(k, s.AlertID, s.RaisedAt, 0, m.o.ResolveRatio, 0, 0,
			fmt.Sprintf("%s %s: superseded by alert %s, raised after a restart", k.vendor, k.op, r.alertID)), ResolvedAt: now.UTC()}, now)
	}
}

// flush saves the routes changed since their last save. Only run calls it, so saves of a route
// never overtake one another.
func (m *Monitor) flush() {
	if m.o.Store == nil {
		return
	}
	type pending struct {
		k     routeKey
		key   string
		value []byte
	}
	var batch []pending
	now := m.o.Now().UTC()
	m.mu.Lock()
	if !m.restored {
		m.mu.Unlock()
		return
	}
	for k, r := range m.routes {
		if !r.dirty {
			continue
		}
		s := routeState{Vendor: k.vendor, Op: k.op, BucketMS: m.width.Milliseconds(), Raised: r.raised, AlertID: r.alertID,
			RaisedAt: r.raisedAt.UTC(), LastFailure: r.lastFailure.UTC(), OKSinceFailure: r.okSince, SavedAt: now}
		for _, b := range r.buckets {
			if b.index >= 0 {
				s.Buckets = append(s.Buckets, bucketState{Index: b.index, Calls: b.calls, Failures: b.failures, ByOutcome: maps.Clone(b.byOutcome)})
			}
		}
		v, err := json.Marshal(s)
		if err != nil {
			continue
		}
		r.dirty = false
		batch = append(batch, pending{k: k, key: m.keyPrefix() + "." + keyToken(k.vendor) + "." + keyToken(k.op), value: v})
	}
	m.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	var failed []routeKey
	var firstErr error
	for _, p := range batch {
		if err := m.o.Store.Save(ctx, p.key, p.value); err != nil {
			failed = append(failed, p.k)
			firstErr = cmp.Or(firstErr, err)
		}
	}
	if len(failed) == 0 {
		return
	}
	m.o.Log.Warn("alert state not saved; retrying next bucket", "service", m.o.Service, "routes", len(failed), "err", firstErr)
	m.mu.Lock()
	for _, k := range failed {
		m.routes[k].dirty = true
	}
	m.mu.Unlock()
}
