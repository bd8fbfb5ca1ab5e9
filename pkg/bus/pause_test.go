package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
)

// db is a dependency that can be taken down: while down its check fails and so does every
// handler that uses it, the way a consumer's database fails during an outage.
type db struct {
	down     atomic.Bool
	checks   atomic.Int32
	mu       sync.Mutex
	applied  map[string]int    // event id -> times applied while up
	delivery map[string]uint64 // event id -> NumDelivered when applied
}

func newDB() *db { return &db{applied: map[string]int{}, delivery: map[string]uint64{}} }

func (x *db) dependency() bus.Dependency {
	return bus.Dependency{Name: "postgres", Check: func(context.Context) error {
		x.checks.Add(1)
		if x.down.Load() {
			return errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
		}
		return nil
	}}
}

func (x *db) apply(d bus.Delivery) error {
	if x.down.Load() {
		return errors.New("insert: failed to connect: connection refused")
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.applied[d.Event.ID()]++
	x.delivery[d.Event.ID()] = d.NumDelivered
	return nil
}

func (x *db) count() int { x.mu.Lock(); defer x.mu.Unlock(); return len(x.applied) }

// An outage of the handler's database many times longer than the whole retry backoff
// (MaxDeliver 3 at 10 ms and 20 ms) pauses the consumer instead of dead-lettering: once the
// database is back every message is applied (at most once more than needed), nothing is dead-lettered, and the message held
// through the outage was delivered once (the outage never counted toward MaxDeliver).
func TestDependencyOutagePausesInsteadOfDeadLettering(t *testing.T) {
	t.Parallel()
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			t.Parallel()
			b := bustest.New(t)
			ctx := context.Background()
			x := newDB()
			x.down.Store(true)
			cfg := fast("paused")
			cfg.AckWait = time.Second // the hold must outlast it: kept in progress, not redelivered
			cfg.Dependencies = []bus.Dependency{x.dependency()}
			var sub *bus.Subscription
			var err error
			if batch {
				sub, err = b.Client.SubscribeBatch(ctx, cfg, 8, func(_ context.Context, ds []bus.Delivery) []error {
					errs := make([]error, len(ds))
					for i, d := range ds {
						errs[i] = x.apply(d)
					}
					return errs
				})
			} else {
				sub, err = b.Client.Subscribe(ctx, cfg, func(_ context.Context, d bus.Delivery) error { return x.apply(d) })
			}
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Stop()
			const n = 20
			var first string
			for i := range n {
				e := received(t, i)
				if i == 0 {
					first = e.ID()
				}
				if err := b.Client.Publish(ctx, subjIn, e); err != nil {
					t.Fatal(err)
				}
			}
			bustest.WaitFor(t, 5*time.Second, "the consumer to pause", sub.Paused)
			// Down for 3 AckWaits and over 50 times the backoff schedule.
			held := x.checks.Load()
			bustest.WaitFor(t, 10*time.Second, "checks through the outage", func() bool { return x.checks.Load() >= held+4 })
			time.Sleep(3 * time.Second)
			if got := b.StoredCount(t, bus.StreamDLQ, ">"); got != 0 {
				t.Fatalf("%d dead letters during a dependency outage", got)
			}
			x.down.Store(false)
			bustest.WaitFor(t, 20*time.Second, "every message applied", func() bool { return x.count() == n })
			bustest.WaitFor(t, 5*time.Second, "the consumer to resume", func() bool { return !sub.Paused() })
			if got := b.StoredCount(t, bus.StreamDLQ, ">"); got != 0 {
				t.Fatalf("%d dead letters after the outage", got)
			}
			x.mu.Lock()
			defer x.mu.Unlock()
			for id, times := range x.applied {
				// Once, or twice when a message buffered behind the held one ran out its ack
				// wait and came back once after the resume; never once per ack wait of the outage.
				if times > 2 {
					t.Errorf("%s applied %d times: redelivered through the outage", id, times)
				}
			}
			if d := x.delivery[first]; d != 1 {
				t.Errorf("the message held through the outage was applied on delivery %d, want 1 (kept in progress, never counted)", d)
			}
		})
	}
}

// While every dependency serves, a failure is the message's own: it counts toward MaxDeliver and
// dead-letters as before.
func TestOwnFaultStillDeadLetters(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	x := newDB()
	cfg := fast("ownfault")
	cfg.Dependencies = []bus.Dependency{x.dependency()}
	sub, err := b.Client.Subscribe(ctx, cfg, func(context.Context, bus.Delivery) error {
		return errors.New("customer row violates a check constraint")
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	if err := b.Client.Publish(ctx, subjIn, received(t, 1)); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 5*time.Second, "dead letter", func() bool { return b.StoredCount(t, bus.StreamDLQ, ">") == 1 })
	dl, err := b.Client.ListDeadLetters(ctx, bus.DeadLetterFilter{})
	if err != nil || len(dl) != 1 || dl[0].Deliveries != 3 {
		t.Fatalf("dead letters %+v %v, want one after MaxDeliver=3", dl, err)
	}
}

// A handler that marks its error bus.Unavailable pauses the consumer without any
// dependency check; a consumer closing while paused hands the message back, never dead-letters it.
func TestUnavailableErrorPausesAndCloseHandsBack(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	var calls atomic.Int32
	var up atomic.Bool
	h := func(_ context.Context, d bus.Delivery) error {
		calls.Add(1)
		if !up.Load() {
			return bus.Unavailable(errors.New("salesforce: circuit breaker open"))
		}
		return nil
	}
	sub, err := b.Client.Subscribe(ctx, fast("vendor"), h)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Client.Publish(ctx, subjIn, received(t, 1)); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 5*time.Second, "retries while paused", func() bool { return calls.Load() >= 5 })
	if !sub.Paused() {
		t.Fatal("not paused")
	}
	sub.Stop()
	<-sub.Closed()
	if got := b.StoredCount(t, bus.StreamDLQ, ">"); got != 0 {
		t.Fatalf("%d dead letters after closing while paused", got)
	}
	// A new subscription gets the message back and applies it once the vendor is up.
	up.Store(true)
	applied := make(chan uint64, 1)
	sub2, err := b.Client.Subscribe(ctx, fast("vendor"), func(_ context.Context, d bus.Delivery) error {
		select {
		case applied <- d.NumDelivered:
		default:
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Stop()
	select {
	case n := <-applied:
		if n != 2 {
			t.Errorf("redelivered as delivery %d, want 2 (one per subscription, however many retries)", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("message not handed back")
	}
}

// Redrive hands a dead letter back to the consumer that failed it, once: an event dead-lettered
// by two consumers of the same stream reaches each of them once more, a third consumer that
// handled it never sees it again, and the original stream gets no copy.
func TestRedriveTargetsTheFailingConsumer(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	var healthy atomic.Bool
	type seen struct {
		mu  sync.Mutex
		got []bus.Delivery
	}
	rec := map[string]*seen{"unifier": {}, "desk": {}, "bi": {}}
	sub := func(name string, fails bool) {
		s, err := b.Client.Subscribe(ctx, fast(name), func(_ context.Context, d bus.Delivery) error {
			if fails && !healthy.Load() {
				return bus.Permanent(errors.New("schema of a newer version"))
			}
			r := rec[name]
			r.mu.Lock()
			r.got = append(r.got, d)
			r.mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
	}
	sub("unifier", true)
	sub("desk", true)
	sub("bi", false)
	const n = 3
	for i := range n {
		if err := b.Client.Publish(ctx, subjIn, received(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	bustest.WaitFor(t, 5*time.Second, "two dead letters per event", func() bool { return b.StoredCount(t, bus.StreamDLQ, ">") == 2*n })
	healthy.Store(true)
	got, err := b.Client.Redrive(ctx, bus.DeadLetterFilter{})
	if err != nil || got != 2*n {
		t.Fatalf("redrive: %d %v", got, err)
	}
	count := func(name string) int { r := rec[name]; r.mu.Lock(); defer r.mu.Unlock(); return len(r.got) }
	bustest.WaitFor(t, 5*time.Second, "each failing consumer handles each event once", func() bool {
		return count("unifier") == n && count("desk") == n
	})
	time.Sleep(300 * time.Millisecond) // room for a stray copy to arrive
	if count("unifier") != n || count("desk") != n || count("bi") != n {
		t.Fatalf("handled: unifier %d, desk %d, bi %d; want %d each", count("unifier"), count("desk"), count("bi"), n)
	}
	if in := b.StoredCount(t, bus.StreamIn, ">"); in != n {
		t.Fatalf("OMNI_IN holds %d messages after the redrive, want %d (no copies)", in, n)
	}
	r := rec["unifier"]
	r.mu.Lock()
	d := r.got[0]
	r.mu.Unlock()
	if bus.SubjectTemplate(d.Subject) != subjIn || d.Stream != bus.StreamIn || d.StreamSeq == 0 {
		t.Errorf("redriven delivery names %s/%s/%d, want its original subject, stream and sequence", d.Subject, d.Stream, d.StreamSeq)
	}
	if left := b.StoredCount(t, bus.StreamDLQ, ">"); left != 0 {
		t.Fatalf("%d dead letters left", left)
	}
	if q := b.StoredCount(t, bus.StreamRedrive, ">"); q != 0 {
		t.Fatalf("%d redrives left in the work queue after their acks", q)
	}
	// A redrive whose consumer is gone stays in the DLQ and is named.
	healthy.Store(false)
	if err := b.Client.Publish(ctx, subjIn, received(t, 99)); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 5*time.Second, "new dead letters", func() bool { return b.StoredCount(t, bus.StreamDLQ, ">") == 2 })
	if err := b.Client.JetStream().DeleteConsumer(ctx, bus.StreamIn, "desk"); err != nil {
		t.Fatal(err)
	}
	healthy.Store(true)
	got, err = b.Client.Redrive(ctx, bus.DeadLetterFilter{})
	if got != 1 || err == nil {
		t.Fatalf("redrive with a deleted consumer: %d %v, want 1 and an error naming desk", got, err)
	}
	if left := b.StoredCount(t, bus.StreamDLQ, ">"); left != 1 {
		t.Fatalf("%d dead letters left, want the deleted consumer's one", left)
	}
}
