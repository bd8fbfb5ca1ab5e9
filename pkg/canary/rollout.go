package canary

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Event types and subjects of rollouts (stream OMNI_OPS).
const (
	TypeStarted    = schemas.TypeOpsCanaryStarted
	TypeChanged    = schemas.TypeOpsCanaryChanged
	TypeRolledBack = schemas.TypeOpsCanaryRolledBack
	TypeEnded      = schemas.TypeOpsCanaryEnded
	TypeMeasured   = schemas.TypeOpsCanaryMeasured
	// TypeSet is the operator's command that starts, changes or ends a rollout.
	TypeSet = schemas.TypeOpsCanarySetRequested

	SubjectStarted    = "omni.ops.canary.started"
	SubjectChanged    = "omni.ops.canary.changed"
	SubjectRolledBack = "omni.ops.canary.rolled_back"
	SubjectEnded      = "omni.ops.canary.ended"
	SubjectMeasured   = "omni.ops.canary.measured"
)

// SubjectSet is the subject of the commands for target: omni.ops.canary.set.<target>.
func SubjectSet(target string) string { return "omni.ops.canary.set." + target }

// Statuses of a rollout.
const (
	StatusActive     = "active"
	StatusRolledBack = "rolled_back"
	StatusEnded      = "ended"
)

// Bucket is the JetStream key-value bucket holding each target's rollout (key: the target), so
// that every replica routes alike and a restart keeps a runtime change or a rollback.
const BucketName = "omnibus_canary"

// KVConfig declares the bucket (every replica declares it alike).
var KVConfig = jetstream.KeyValueConfig{Bucket: BucketName, Description: "canary rollouts by target (pkg/canary)", History: 5,
	Storage: jetstream.FileStorage}

// Route is a subject and CloudEvents type, as connector.Route and service.Route.
type Route struct{ Subject, Type string }

// Produces are the routes a Rollout publishes on; Consumes the command route of target.
func Produces() []Route {
	return []Route{{SubjectStarted, TypeStarted}, {SubjectChanged, TypeChanged}, {SubjectRolledBack, TypeRolledBack},
		{SubjectEnded, TypeEnded}, {SubjectMeasured, TypeMeasured}}
}

// Consumes is the command route of target.
func Consumes(target string) Route { return Route{SubjectSet(target), TypeSet} }

// State is a target's rollout as stored and announced.
type State struct {
	RolloutID string `json:"rollout_id"`
	Target    string `json:"target"`
	Status    string `json:"status"`
	Plan
	// Text is the plan in the configuration syntax.
	Text  string    `json:"plan"`
	Since time.Time `json:"since"`
	// Config is the configuration text in force when the state was written: a restart with
	// another configuration applies it, one with the same keeps the stored state.
	Config string `json:"config"`
	Reason string `json:"reason,omitempty"`
	By     string `json:"by,omitempty"`
}

// Options configure a Rollout. Zero fields take the defaults shown.
type Options struct {
	// Target names what is rolled out (^[a-z][a-z0-9_]*$), e.g. "sms": the key of the shared
	// state, the command subject's last token and the events' target. Required.
	Target string
	// Service is the publishing service (the events' service). Required.
	Service string
	// Source is the events' CloudEvents source. Default "/connectors/<Service>".
	Source string
	// Baseline is the variant used without a rollout; Variants every variant (Baseline
	// included) the service can use. Required.
	Baseline string
	Variants []string
	// Config is the plan from configuration (see Parse); "" or "off" is none.
	Config string
	// Publish publishes the events (a connector passes Runtime.Publish). Required.
	Publish func(ctx context.Context, batch ...bus.Outgoing) error
	// KV holds the shared state (declare it with KVConfig). Default: none, the state is this
	// process's only and a restart starts again from Config.
	KV jetstream.KeyValue
	// Window is the sliding window of the per-variant counts, made of Buckets buckets. Defaults
	// 5 minutes, 10.
	Window  time.Duration
	Buckets int
	// Report is how often the per-variant counts are published (omni.ops.canary.measured) while
	// a rollout is active. Default 30 s.
	Report time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log. Default slog.Default().
	Log *slog.Logger
}

var targetName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func (o *Options) setDefaults() error {
	switch {
	case !targetName.MatchString(o.Target):
		return fmt.Errorf("%w: Target %q must match ^[a-z][a-z0-9_]*$", ErrInvalidPlan, o.Target)
	case o.Service == "":
		return fmt.Errorf("%w: Service is required", ErrInvalidPlan)
	case !slices.Contains(o.Variants, o.Baseline):
		return fmt.Errorf("%w: baseline %q is not among the variants %v", ErrInvalidPlan, o.Baseline, o.Variants)
	case o.Publish == nil:
		return fmt.Errorf("%w: Publish is required", ErrInvalidPlan)
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
	if o.Report <= 0 {
		o.Report = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return nil
}

// Rollout routes one target's traffic between its baseline and a candidate, tracks both and
// rolls the candidate back when it fails. It is safe for concurrent use.
type Rollout struct {
	o        Options
	mu       sync.Mutex
	st       State // zero RolloutID: no rollout
	rev      uint64
	tr       *tracker
	reported int // calls seen at the last report
	calls    int
	wg       sync.WaitGroup
	stop     chan struct{}
	once     sync.Once
}

// storeTimeout bounds each access to the shared state outside a caller's context.
const storeTimeout = 5 * time.Second

// Start applies the configuration (or keeps the shared state, see State.Config), watches the
// shared state for other replicas' changes and reports the counts until Close. Errors wrap
// ErrInvalidPlan (the options or Config are wrong) or are the bucket's.
func Start(ctx context.Context, o Options) (*Rollout, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	plan, err := Parse(o.Config, o.Baseline, o.Variants)
	if err != nil {
		return nil, err
	}
	r := &Rollout{o: o, tr: newTracker(o.Window, o.Buckets), stop: make(chan struct{})}
	if o.KV != nil {
		e, err := o.KV.Get(ctx, o.Target)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return nil, fmt.Errorf("canary state %s/%s: %w", BucketName, o.Target, err)
		default:
			var st State
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				return nil, fmt.Errorf("canary state %s/%s: %w", BucketName, o.Target, err)
			}
			r.st, r.rev = st, e.Revision()
		}
	}
	if r.rev == 0 || r.st.Config != o.Config {
		// No stored state, or the configuration changed since it was stored: the configuration wins.
		if err := r.apply(ctx, plan, "configuration", "configuration"); err != nil {
			return nil, err
		}
	}
	if o.KV != nil {
		// Not UpdatesOnly: a change made between the read above and the watch is delivered too
		// (what was read already is skipped by its revision).
		w, err := o.KV.Watch(ctx, o.Target)
		if err != nil {
			return nil, fmt.Errorf("canary state %s/%s: watch: %w", BucketName, o.Target, err)
		}
		r.wg.Add(1)
		go r.watch(w)
	}
	r.wg.Add(1)
	go r.reportLoop(context.WithoutCancel(ctx)) // stopped by Close, not by Start's caller
	return r, nil
}

// Close stops the watch and the reports.
func (r *Rollout) Close() {
	r.once.Do(func() { close(r.stop) })
	r.wg.Wait()
}

func (r *Rollout) watch(w jetstream.KeyWatcher) {
	defer r.wg.Done()
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-r.stop:
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var st State
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				r.o.Log.Warn("canary: unreadable shared state ignored", "target", r.o.Target, "err", err)
				continue
			}
			r.mu.Lock()
			if e.Revision() > r.rev {
				r.adopt(st, e.Revision())
			}
			r.mu.Unlock()
		}
	}
}

// adopt takes st as the current state. r.mu is held.
func (r *Rollout) adopt(st State, rev uint64) {
	if st.RolloutID != r.st.RolloutID && st.Candidate != "" {
		r.tr.reset(st.Candidate) // a new rollout judges the candidate afresh
	}
	r.st, r.rev = st, rev
}

func (r *Rollout) reportLoop(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(r.o.Report)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(ctx, storeTimeout)
			if err := r.Report(ctx, false); err != nil {
				r.o.Log.Warn("canary: counts not published", "target", r.o.Target, "err", err)
			}
			cancel()
		}
	}
}

// Decision is the variant Pick chose.
type Decision struct {
	Variant   string
	Candidate bool   // Variant is the rollout's candidate
	RolloutID string // the active rollout, "" when none
}

// Pick returns the variant for req: the candidate when a rollout is active, req is eligible, its
// key's bucket is within the share and the candidate is among Options.Variants; otherwise the
// baseline.
func (r *Rollout) Pick(req Request) Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st.Status != StatusActive {
		return Decision{Variant: r.o.Baseline}
	}
	// A stored rollout whose candidate this process cannot use (its configuration was removed
	// since) routes nothing to it.
	if r.st.picks(r.o.Target, req) && slices.Contains(r.o.Variants, r.st.Candidate) {
		return Decision{Variant: r.st.Candidate, Candidate: true, RolloutID: r.st.RolloutID}
	}
	return Decision{Variant: r.o.Baseline, RolloutID: r.st.RolloutID}
}

// State returns the current rollout (zero RolloutID: none since this process started).
func (r *Rollout) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// Stats returns the window of each variant, the baseline first.
func (r *Rollout) Stats() []Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.statsLocked(r.o.Now())
}

func (r *Rollout) statsLocked(now time.Time) []Stats {
	out := []Stats{r.tr.stats(r.o.Baseline, now)}
	for _, v := range r.o.Variants {
		if v != r.o.Baseline {
			out = append(out, r.tr.stats(v, now))
		}
	}
	return out
}

// Record counts one call through variant and, when the candidate of the active rollout now
// breaks the rule (see the package doc), rolls it back: later Picks return the baseline at
// once, and the new state is stored and announced (omni.ops.canary.rolled_back) in the
// background. Skip results are not counted.
// ctx is the call's: the rollback's store and event keep its values (trace) but not its
// cancellation.
func (r *Rollout) Record(ctx context.Context, variant string, res Result, latency time.Duration) {
	if res == Skip {
		return
	}
	now := r.o.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tr.record(variant, res == Failure, latency, now)
	r.calls++
	if r.st.Status != StatusActive || (variant != r.st.Candidate && variant != r.o.Baseline) {
		return
	}
	cand, base := r.tr.stats(r.st.Candidate, now), r.tr.stats(r.o.Baseline, now)
	if !breached(cand, base, r.st.Margin, r.st.MinCalls) {
		return
	}
	next := r.st
	next.Status, next.Since, next.By = StatusRolledBack, now.UTC(), "canary"
	next.Reason = fmt.Sprintf("%s failed %d of %d calls (%.1f%%), %s %d of %d (%.1f%%): more than %.1f points over the baseline in the last %s",
		cand.Variant, cand.Failures, cand.Calls, cand.Ratio*100, base.Variant, base.Failures, base.Calls, base.Ratio*100, r.st.Margin*100, r.o.Window)
	prev, rev := r.st, r.rev
	r.st = next
	r.o.Log.Warn("canary rolled back", "target", r.o.Target, "candidate", next.Candidate, "reason", next.Reason)
	stats := []Stats{base, cand}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		defer cancel()
		if err := r.store(ctx, next, rev, &prev); err != nil {
			if !errors.Is(err, errLost) {
				r.o.Log.Error("canary: rollback not stored", "target", r.o.Target, "err", err)
			}
			return // another replica stored its own rollback (or a change) first and announced it
		}
		if err := r.publish(ctx, TypeRolledBack, next, stats); err != nil {
			r.o.Log.Error("canary: rollback not announced", "target", r.o.Target, "err", err)
		}
	}()
}

// errLost: another writer changed the shared state first.
var errLost = errors.New("canary: the shared state changed meanwhile")

// store writes st over revision rev. With want set, a conflicting write whose rollout is no
// longer want's active one is errLost. r.mu is not held.
func (r *Rollout) store(ctx context.Context, st State, rev uint64, want *State) error {
	if r.o.KV == nil {
		return nil
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = r.o.KV.Create(ctx, r.o.Target, b)
	} else {
		nrev, err = r.o.KV.Update(ctx, r.o.Target, b, rev)
	}
	if err != nil {
		if want != nil {
			return errLost
		}
		return fmt.Errorf("canary state %s/%s: %w", BucketName, r.o.Target, err)
	}
	r.mu.Lock()
	if nrev > r.rev {
		r.rev = nrev
	}
	r.mu.Unlock()
	return nil
}

// Command is the data of omni.ops.canary.set.requested.
type Command struct {
	Target string `json:"target"`
	// Plan in the configuration syntax; "off" ends the rollout.
	Plan   string `json:"plan"`
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// HandleCommand applies an operator's omni.ops.canary.set.requested: a plan starts a rollout
// (a new candidate, or after a rollback or end), changes the active one (same candidate), or
// ends it ("off"). A command for another target is ignored; an invalid plan is dead-lettered
// with the reason (bus.Permanent wrapping ErrInvalidPlan).
func (r *Rollout) HandleCommand(ctx context.Context, d bus.Delivery) error {
	var c Command
	if err := event.DecodeData(d.Event, &c); err != nil {
		return bus.Permanent(fmt.Errorf("undecodable canary command: %w", err))
	}
	if c.Target != r.o.Target {
		return nil
	}
	plan, err := Parse(c.Plan, r.o.Baseline, r.o.Variants)
	if err != nil {
		return bus.Permanent(err)
	}
	by := c.By
	if by == "" {
		by = "operator"
	}
	return r.apply(ctx, plan, by, c.Reason)
}

// apply moves the rollout to plan (nil: none), stores and announces the change. Retried once on
// a concurrent write, against the fresh state.
func (r *Rollout) apply(ctx context.Context, plan *Plan, by, reason string) error {
	for attempt := 0; ; attempt++ {
		r.mu.Lock()
		cur, rev := r.st, r.rev
		r.mu.Unlock()
		next, typ := r.next(cur, plan, by, reason)
		if typ == "" {
			return nil
		}
		err := r.store(ctx, next, rev, nil)
		if err != nil && attempt == 0 && r.o.KV != nil {
			if e, gerr := r.o.KV.Get(ctx, r.o.Target); gerr == nil {
				var st State
				if json.Unmarshal(e.Value(), &st) == nil {
					r.mu.Lock()
					r.adopt(st, e.Revision())
					r.mu.Unlock()
					continue
				}
			}
		}
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.adopt(next, r.rev)
		stats := r.statsLocked(r.o.Now())
		r.mu.Unlock()
		if typ == quiet {
			return nil
		}
		return r.publish(ctx, typ, next, stats)
	}
}

// next is the state plan makes of cur and the event announcing it: "" when there is nothing to
// store, quiet when the state is stored without an event (only the configuration seen changed).
func (r *Rollout) next(cur State, plan *Plan, by, reason string) (State, string) {
	now := r.o.Now().UTC()
	active := cur.RolloutID != "" && cur.Status == StatusActive
	if plan == nil {
		if !active {
			if cur.RolloutID != "" && cur.Config != r.o.Config {
				cur.Config = r.o.Config
				return cur, quiet
			}
			return cur, ""
		}
		next := cur
		next.Status, next.Since, next.By, next.Reason, next.Config = StatusEnded, now, by, reason, r.o.Config
		return next, TypeEnded
	}
	next := State{Target: r.o.Target, Status: StatusActive, Plan: *plan, Text: plan.String(), Since: now,
		Config: r.o.Config, Reason: reason, By: by}
	if active && cur.Candidate == plan.Candidate {
		if cur.Text == next.Text {
			if cur.Config != r.o.Config {
				cur.Config = r.o.Config
				return cur, quiet
			}
			return cur, ""
		}
		next.RolloutID = cur.RolloutID
		return next, TypeChanged
	}
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}
	next.RolloutID = id.String()
	return next, TypeStarted
}

// quiet: store the state, announce nothing.
const quiet = "quiet"

// eventData is the data of the rollout events.
type eventData struct {
	State
	Service string  `json:"service"`
	Stats   []Stats `json:"stats,omitempty"`
	At      string  `json:"at"`
}

// subjects maps the rollout events' types to their subjects.
var subjects = map[string]string{TypeStarted: SubjectStarted, TypeChanged: SubjectChanged, TypeRolledBack: SubjectRolledBack,
	TypeEnded: SubjectEnded}

func (r *Rollout) publish(ctx context.Context, typ string, st State, stats []Stats) error {
	d := eventData{State: st, Service: r.o.Service, Stats: stats, At: r.o.Now().UTC().Format(time.RFC3339Nano)}
	e, err := event.New(typ, r.o.Source, d, event.WithSubject(r.o.Target), event.WithPartitionKey("canary:"+r.o.Target))
	if err != nil {
		return err
	}
	return r.o.Publish(ctx, bus.Outgoing{Subject: subjects[typ], Event: e})
}

// Report publishes the per-variant counts (omni.ops.canary.measured) while a rollout is active;
// unless force, only when calls were recorded since the last report.
func (r *Rollout) Report(ctx context.Context, force bool) error {
	r.mu.Lock()
	st := r.st
	if st.Status != StatusActive || (!force && r.calls == r.reported) {
		r.mu.Unlock()
		return nil
	}
	r.reported = r.calls
	stats := r.statsLocked(r.o.Now())
	r.mu.Unlock()
	d := map[string]any{"rollout_id": st.RolloutID, "target": st.Target, "service": r.o.Service, "status": st.Status,
		"baseline": st.Baseline, "candidate": st.Candidate, "percent": st.Percent, "stats": stats,
		"window_seconds": int(r.o.Window / time.Second), "at": r.o.Now().UTC().Format(time.RFC3339Nano)}
	e, err := event.New(TypeMeasured, r.o.Source, d, event.WithSubject(r.o.Target), event.WithPartitionKey("canary:"+r.o.Target))
	if err != nil {
		return err
	}
	return r.o.Publish(ctx, bus.Outgoing{Subject: SubjectMeasured, Event: e})
}
