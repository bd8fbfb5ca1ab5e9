package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

// subjectDLQ is the prefix of every service's dead-letter subject.
var subjectDLQ = bus.SubjectDLQ("")

// serviceName is the pattern of a service name, the last token of its dead-letter subject.
var serviceName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// DeadLetterBus is what WatchDeadLetters needs of the bus: publishing the alerts, and JetStream
// for OMNI_DLQ's state and the alert state bucket. *bus.Client is one.
type DeadLetterBus interface {
	bus.Publisher
	JetStreamer
}

// DeadLetterOptions configure WatchDeadLetters. Zero fields take the defaults shown.
type DeadLetterOptions struct {
	// Source is the events' CloudEvents source. Default "/services/audit", the service that
	// runs the watcher.
	Source string
	// Interval between two looks at OMNI_DLQ. Default 5 s; at least 10 ms.
	Interval time.Duration
	// KV is the bucket the alerts' state is kept in. Default: KVOptions' defaults (bucket
	// OMNI_ALERTS, shared with the Monitors).
	KV KVOptions
	// Now is the clock of raised_at and resolved_at. Default time.Now.
	Now func() time.Time
	// Log. Default slog.Default().
	Log *slog.Logger
}

func (o *DeadLetterOptions) setDefaults() error {
	if o.Source == "" {
		o.Source = "/services/audit"
	}
	if o.Interval == 0 {
		o.Interval = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Interval < 10*time.Millisecond {
		return fmt.Errorf("%w: Interval must be at least 10ms, got %s", ErrInvalidOptions, o.Interval)
	}
	return nil
}

// DeadLetterWatcher raises a dead_letters alert for each dead-letter subject that holds
// messages, and resolves it when the subject is empty again (see the package doc). It runs until
// the context given to WatchDeadLetters ends or Stop is called.
type DeadLetterWatcher struct {
	b       DeadLetterBus
	o       DeadLetterOptions
	kv      *KVStore
	stream  jetstream.Stream           // OMNI_DLQ; nil until found
	states  map[string]deadLetterEntry // by subject, once loaded
	loaded  bool
	failing bool
	skipped map[string]bool // subjects that name no service, logged once
	cancel  context.CancelFunc
	done    chan struct{}
}

// deadLetterState is a subject's alert as kept in the bucket under dead_letters.<service> (JSON).
type deadLetterState struct {
	Subject  string    `json:"subject"`
	Raised   bool      `json:"raised"`
	AlertID  string    `json:"alert_id,omitempty"`
	RaisedAt time.Time `json:"raised_at,omitzero"`
	Messages uint64    `json:"messages,omitempty"` // held when the alert was raised
}

type deadLetterEntry struct {
	deadLetterState
	revision uint64 // in the bucket; 0: no key yet
}

// deadLetters is the data of a dead_letters alert event.
type deadLetters struct {
	AlertID    string     `json:"alert_id"`
	Kind       string     `json:"kind"`
	Service    string     `json:"service"`
	Subject    string     `json:"subject"`
	Messages   uint64     `json:"messages"`
	RaisedAt   time.Time  `json:"raised_at"`
	Summary    string     `json:"summary"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
}

// WatchDeadLetters starts watching OMNI_DLQ: it looks at once, then every Interval, until ctx
// ends or Stop is called. It returns ErrInvalidOptions for bad options; JetStream being
// unreachable is no error: the watcher logs it and tries again every Interval.
func WatchDeadLetters(ctx context.Context, b DeadLetterBus, o DeadLetterOptions) (*DeadLetterWatcher, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	if b == nil || b.JetStream() == nil {
		return nil, fmt.Errorf("%w: a bus with JetStream is required", ErrInvalidOptions)
	}
	kv, err := NewKVStore(b.JetStream(), o.KV)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &DeadLetterWatcher{b: b, o: o, kv: kv, states: map[string]deadLetterEntry{}, skipped: map[string]bool{},
		cancel: cancel, done: make(chan struct{})}
	go w.run(ctx)
	return w, nil
}

// Stop stops the watcher and waits until it has. It is safe to call more than once.
func (w *DeadLetterWatcher) Stop() {
	w.cancel()
	<-w.done
}

// Closed is closed once the watcher has stopped.
func (w *DeadLetterWatcher) Closed() <-chan struct{} { return w.done }

func (w *DeadLetterWatcher) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := w.poll(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !w.failing:
			w.failing = true
			w.o.Log.Warn("dead-letter watch failing; retrying every interval", "interval", w.o.Interval, "err", err)
		case err != nil:
			w.o.Log.Debug("dead-letter watch failing", "err", err)
		case w.failing:
			w.failing = false
			w.o.Log.Info("dead-letter watch recovered")
		}
		t.Reset(w.o.Interval)
	}
}

// poll compares what each dead-letter subject holds with its alert, and raises or resolves.
func (w *DeadLetterWatcher) poll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*storeTimeout)
	defer cancel()
	if !w.loaded {
		entries, err := w.kv.entries(ctx, KindDeadLetters)
		if err != nil {
			return err
		}
		for key, e := range entries {
			var s deadLetterState
			if err := json.Unmarshal(e.value, &s); err != nil || s.Subject == "" {
				w.o.Log.Warn("dead-letter alert state unreadable; ignored", "key", key, "err", err)
				continue
			}
			w.states[s.Subject] = deadLetterEntry{s, e.revision}
		}
		w.loaded = true
	}
	if w.stream == nil {
		st, err := w.b.JetStream().Stream(ctx, bus.StreamDLQ)
		if err != nil {
			return fmt.Errorf("dead letters: %w", err)
		}
		w.stream = st
	}
	info, err := w.stream.Info(ctx, jetstream.WithSubjectFilter(subjectDLQ+">"))
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			w.stream = nil
		}
		return fmt.Errorf("dead letters: %w", err)
	}
	held := info.State.Subjects
	var subjects []string
	for s, n := range held {
		if n > 0 {
			subjects = append(subjects, s)
		}
	}
	for s, st := range w.states {
		if st.Raised && held[s] == 0 {
			subjects = append(subjects, s)
		}
	}
	sort.Strings(subjects)
	var errs []error
	for _, subj := range subjects {
		svc := strings.TrimPrefix(subj, subjectDLQ)
		if !serviceName.MatchString(svc) {
			if !w.skipped[subj] {
				w.skipped[subj] = true
				w.o.Log.Warn("dead letters on a subject that names no service; not alerted on", "subject", subj, "messages", held[subj])
			}
			continue
		}
		n, cur := held[subj], w.states[subj]
		cur.Subject = subj
		now := w.o.Now().UTC()
		switch {
		case n > 0 && !cur.Raised:
			next := deadLetterState{Subject: subj, Raised: true, AlertID: newAlertID(), RaisedAt: now, Messages: n}
			errs = append(errs, w.transition(ctx, svc, cur, next, TypeRaised, deadLetters{AlertID: next.AlertID,
				Kind: KindDeadLetters, Service: svc, Subject: subj, Messages: n, RaisedAt: now,
				Summary: fmt.Sprintf("%s holds %d dead %s: see why with `omnibus dlq list --service %s`, fix the cause, then `omnibus dlq redrive --service %s`",
					subj, n, plural(n, "letter", "letters"), svc, svc)}, now))
		case n == 0 && cur.Raised:
			next := cur.deadLetterState
			next.Raised = false
			errs = append(errs, w.transition(ctx, svc, cur, next, TypeResolved, deadLetters{AlertID: cur.AlertID,
				Kind: KindDeadLetters, Service: svc, Subject: subj, RaisedAt: cur.RaisedAt.UTC(), ResolvedAt: &now,
				Summary: fmt.Sprintf("%s is empty again: its dead letters were redriven, deleted or expired", subj)}, now))
		}
	}
	return errors.Join(errs...)
}

// transition claims the change of a subject's alert from cur to next in the bucket, then
// publishes the event. Another watcher that changed the state first wins: this one takes the
// stored state and decides again at the next look. A publish that fails gives the claim back, so
// that the next look tries again.
func (w *DeadLetterWatcher) transition(ctx context.Context, svc string, cur deadLetterEntry, next deadLetterState, typ string, data deadLetters, now time.Time) error {
	key := KindDeadLetters + "." + svc
	v, err := json.Marshal(next)
	if err != nil {
		return err
	}
	rev, err := w.kv.swap(ctx, key, v, cur.revision)
	if errors.Is(err, errConflict) {
		e, err := w.kv.get(ctx, key)
		if err != nil {
			return err
		}
		var s deadLetterState
		if e.revision > 0 {
			if err := json.Unmarshal(e.value, &s); err != nil {
				return fmt.Errorf("alert state %s: %w", key, err)
			}
		}
		s.Subject = next.Subject
		w.states[next.Subject] = deadLetterEntry{s, e.revision}
		return nil
	}
	if err != nil {
		return err
	}
	e, err := event.New(typ, w.o.Source, data, event.WithTime(now), event.WithSubject(next.Subject))
	if err == nil {
		err = publish(ctx, w.b, w.o.Log, e)
	}
	if err == nil {
		w.states[next.Subject] = deadLetterEntry{next, rev}
		return nil
	}
	w.states[next.Subject] = deadLetterEntry{next, rev}
	if old, merr := json.Marshal(cur.deadLetterState); merr == nil {
		if back, serr := w.kv.swap(ctx, key, old, rev); serr == nil {
			w.states[next.Subject] = deadLetterEntry{cur.deadLetterState, back}
		}
	}
	return fmt.Errorf("%s alert for %s: %w", typ, next.Subject, err)
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
