package resilience

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// BatchFunc calls the vendor once for several keys (e.g. SF Express route query takes up to 10
// waybills) and returns the answer of each key it knows. A key missing from the map gets
// ErrNotInBatch; an error fails every key of the batch.
type BatchFunc[K comparable, V any] func(ctx context.Context, keys []K) (map[K]V, error)

// BatchOptions configure a Batcher. Zero fields take the defaults shown.
type BatchOptions struct {
	// MaxSize is the most keys in one call (the vendor's limit). Default 10.
	MaxSize int
	// MaxWait is how long the first key of a batch waits for others. Default 5ms.
	MaxWait time.Duration
	// Route, when set, paces batches to that route's rate limit (the vendor's quota): a new
	// batch reserves the permit of its call and goes out MaxWait after its first key or when
	// the permit comes, whichever is later, gathering the keys that arrive meanwhile; a full
	// batch waits for its permit too, and later keys start the next batch. Under the quota a
	// lookup waits MaxWait; over it, about one permit interval, never behind a queue of permits,
	// and retries (which take permits too) make the following batches larger instead of later.
	// The batch function must make its vendor call through Route with the ctx it is given.
	Route *Route
}

// Batcher coalesces the requests for one vendor operation that arrive together into batch calls:
// a batch is sent when it holds MaxSize distinct keys or MaxWait after its first key, and each
// caller gets its own key's answer. Callers asking for the same key in one batch share it, and
// keys asked together with GetMany always share a call (up to MaxSize), whatever the timing.
//
//	tracks := resilience.NewBatcher(resilience.BatchOptions{MaxSize: 10, MaxWait: 5 * time.Millisecond},
//		func(ctx context.Context, waybills []string) (map[string]Track, error) {
//			return queryRoutes(ctx, waybills) // one Route.HTTP call: one audit record per batch
//		})
//	track, err := tracks.Get(ctx, waybill)
//
// The batch call runs under the first caller's trace, without any caller's cancellation, until
// the latest deadline among its callers; each caller waits only within its own context.
type Batcher[K comparable, V any] struct {
	o   BatchOptions
	fn  BatchFunc[K, V]
	mu  sync.Mutex
	cur *batch[K, V]
}

type batch[K comparable, V any] struct {
	ctx      context.Context // the first caller's, for values
	deadline time.Time       // the latest caller deadline; zero if a caller has none
	keys     []K
	waiters  map[K][]chan batchResult[V]
	timer    *time.Timer
	permit   bool // it holds a reserved rate-limit permit (BatchOptions.Route)
	paced    bool // it waits for that permit, not only for MaxWait
	sent     bool
}

type batchResult[V any] struct {
	v   V
	err error
}

// NewBatcher returns a Batcher calling fn.
func NewBatcher[K comparable, V any](o BatchOptions, fn BatchFunc[K, V]) *Batcher[K, V] {
	if o.MaxSize <= 0 {
		o.MaxSize = 10
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 5 * time.Millisecond
	}
	return &Batcher[K, V]{o: o, fn: fn}
}

// Get returns key's answer from the batch it joins. Errors: the batch call's error,
// ErrNotInBatch, or ctx's error.
func (b *Batcher[K, V]) Get(ctx context.Context, key K) (V, error) {
	ch := make(chan batchResult[V], 1)
	b.mu.Lock()
	bt, leave := b.join(ctx, key, ch)
	b.mu.Unlock()
	if leave {
		b.leave(bt)
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// GetMany returns the answers of keys, in their order, joining them to the current batch
// together: keys asked at once share a call whatever the timing (up to MaxSize; the rest start
// the next batch at once). Each errs[i] is nil or keys[i]'s error, as for Get.
func (b *Batcher[K, V]) GetMany(ctx context.Context, keys []K) (vals []V, errs []error) {
	chans := make([]chan batchResult[V], len(keys))
	var leaving []*batch[K, V]
	b.mu.Lock()
	for i, k := range keys {
		chans[i] = make(chan batchResult[V], 1)
		if bt, leave := b.join(ctx, k, chans[i]); leave {
			leaving = append(leaving, bt)
		}
	}
	b.mu.Unlock()
	for _, bt := range leaving {
		b.leave(bt)
	}
	vals, errs = make([]V, len(keys)), make([]error, len(keys))
	for i, ch := range chans {
		select {
		case r := <-ch:
			vals[i], errs[i] = r.v, r.err
		case <-ctx.Done():
			errs[i] = ctx.Err()
		}
	}
	return vals, errs
}

// join adds key, answered on ch, to the current batch (starting one if there is none) and
// reports whether that batch is now full and must leave without waiting for its timer. b.mu is
// held.
func (b *Batcher[K, V]) join(ctx context.Context, key K, ch chan batchResult[V]) (*batch[K, V], bool) {
	bt := b.cur
	if bt == nil {
		bt = &batch[K, V]{ctx: ctx, waiters: map[K][]chan batchResult[V]{}}
		if dl, ok := ctx.Deadline(); ok {
			bt.deadline = dl
		}
		b.cur = bt
		wait := b.o.MaxWait
		if rt := b.o.Route; rt != nil && rt.limiter != nil {
			// No permit within the route's MaxWait: the batch goes out without one and its
			// call waits for a permit like any other (or is throttled).
			if w := rt.limiter.TryReservePermit(rt.settings.MaxWait); w >= 0 {
				bt.permit, bt.paced = true, w > 0
				wait = max(wait, w)
			}
		}
		bt.timer = time.AfterFunc(wait, func() { b.flush(bt) })
	} else if dl, ok := ctx.Deadline(); !ok {
		bt.deadline = time.Time{}
	} else if !bt.deadline.IsZero() && dl.After(bt.deadline) {
		bt.deadline = dl
	}
	if _, seen := bt.waiters[key]; !seen {
		bt.keys = append(bt.keys, key)
	}
	bt.waiters[key] = append(bt.waiters[key], ch)
	if len(bt.keys) < b.o.MaxSize {
		return bt, false
	}
	b.cur = nil // later callers start the next batch
	// A full batch leaves now, unless it waits for its turn (its timer sends it then).
	return bt, !bt.paced
}

// leave sends a full batch now instead of at its timer.
func (b *Batcher[K, V]) leave(bt *batch[K, V]) {
	bt.timer.Stop()
	go b.flush(bt)
}

func (b *Batcher[K, V]) flush(bt *batch[K, V]) {
	b.mu.Lock()
	if bt.sent {
		b.mu.Unlock()
		return
	}
	bt.sent = true
	if b.cur == bt {
		b.cur = nil
	}
	b.mu.Unlock()

	ctx := context.WithoutCancel(bt.ctx)
	if bt.permit {
		ctx = withReservedPermit(ctx)
	}
	if !bt.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, bt.deadline)
		defer cancel()
	}
	res, err := func() (res map[K]V, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("batch call panicked: %v", r)
			}
		}()
		return b.fn(ctx, bt.keys)
	}()
	for k, chans := range bt.waiters {
		var r batchResult[V]
		switch v, ok := res[k]; {
		case err != nil:
			r.err = err
		case !ok:
			r.err = fmt.Errorf("%w: %v", ErrNotInBatch, k)
		default:
			r.v = v
		}
		for _, ch := range chans {
			ch <- r
		}
	}
}
