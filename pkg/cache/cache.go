// Package cache is a read-through cache for hot vendor lookups (customer profile, product info):
// entries live for a TTL, the cache holds at most MaxEntries (least recently used out first), one
// load per key is in flight at a time however many callers miss together, and, optionally, a
// value past its TTL is served when the load fails (stale-if-error).
//
//	profiles := cache.New[string, Profile](cache.Options{Name: "crm_profile", TTL: time.Minute,
//		MaxEntries: 10_000, StaleIfError: time.Hour})
//	p, err := profiles.Get(ctx, phone, func(ctx context.Context, phone string) (Profile, error) {
//		return lookUp(ctx, phone) // e.g. resilience.Do through the CRM route
//	})
//
// A load runs in its own goroutine under the first caller's trace and deadline but not its
// cancellation, so a caller that gives up does not fail the others waiting on the same key; each
// caller waits only as long as its own context allows. Metrics: omnibus_cache_requests_total
// {cache, result=hit|miss|stale|error}.
package cache

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Options configure a Cache. Zero fields take the defaults shown.
type Options struct {
	// Name labels the cache's metrics. Default "default".
	Name string
	// TTL is how long a loaded value is served without a new load. Default 1 minute.
	TTL time.Duration
	// MaxEntries bounds the number of entries (fresh and stale). Default 10 000.
	MaxEntries int
	// StaleIfError is how long past its TTL a value is still served when a load fails or the
	// caller's context ends first. 0 (the default) never serves a stale value.
	StaleIfError time.Duration
	// Now is the clock (tests inject one). Default time.Now.
	Now func() time.Time
	// MeterProvider for the metrics. Default otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
}

// Loader loads the value of key from its source.
type Loader[K comparable, V any] func(ctx context.Context, key K) (V, error)

// Result is what Fetch returns.
type Result[V any] struct {
	Value V
	// Hit is true when the value came from the cache without a load.
	Hit bool
	// Stale is true when the load failed (or the caller's context ended) and an expired value
	// within StaleIfError was served instead; LoadErr says why.
	Stale   bool
	LoadErr error
	// Age is how long ago the value was loaded.
	Age time.Duration
}

type entry[K comparable, V any] struct {
	key    K
	value  V
	stored time.Time
}

type flight[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// Cache is a size-bounded TTL cache with single-flight loads. It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	opts    Options
	mu      sync.Mutex
	ll      *list.List // of *entry, most recently used first
	items   map[K]*list.Element
	flights map[K]*flight[V]
	reqs    metric.Int64Counter
	attrs   map[string]metric.MeasurementOption
}

// New returns an empty cache.
func New[K comparable, V any](o Options) *Cache[K, V] {
	if o.Name == "" {
		o.Name = "default"
	}
	if o.TTL <= 0 {
		o.TTL = time.Minute
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MeterProvider == nil {
		o.MeterProvider = otel.GetMeterProvider()
	}
	c := &Cache[K, V]{opts: o, ll: list.New(), items: map[K]*list.Element{}, flights: map[K]*flight[V]{},
		attrs: map[string]metric.MeasurementOption{}}
	c.reqs, _ = o.MeterProvider.Meter("github.com/omnibus-dev/omnibus/pkg/cache").Int64Counter("omnibus.cache.requests",
		metric.WithDescription("Cache lookups by result: hit, miss (loaded), stale (served past TTL after a failed load), error."),
		metric.WithUnit("{request}"))
	for _, r := range []string{"hit", "miss", "stale", "error"} {
		c.attrs[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("cache", o.Name), attribute.String("result", r)))
	}
	return c
}

func (c *Cache[K, V]) count(ctx context.Context, result string) {
	if c.reqs != nil {
		c.reqs.Add(ctx, 1, c.attrs[result])
	}
}

// Get returns the value of key, loading it with load on a miss; with StaleIfError it serves an
// expired value when the load fails. The error is load's error (or the context's) when nothing
// could be served.
func (c *Cache[K, V]) Get(ctx context.Context, key K, load Loader[K, V]) (V, error) {
	r, err := c.Fetch(ctx, key, load)
	return r.Value, err
}

// Fetch is Get that also tells where the value came from.
func (c *Cache[K, V]) Fetch(ctx context.Context, key K, load Loader[K, V]) (Result[V], error) {
	rs, errs := c.FetchMany(ctx, []K{key}, func(ctx context.Context, keys []K) ([]V, []error) {
		v, err := load(ctx, keys[0])
		return []V{v}, []error{err}
	})
	return rs[0], errs[0]
}

// ManyLoader loads several keys in one call (a vendor's batch endpoint); vals[i] and errs[i]
// answer keys[i].
type ManyLoader[K comparable, V any] func(ctx context.Context, keys []K) (vals []V, errs []error)

// FetchMany is Fetch for keys asked together: fresh keys are hits, keys another caller is
// loading wait for that load, and all the other keys are loaded by one call of load. results[i]
// and errs[i] answer keys[i].
func (c *Cache[K, V]) FetchMany(ctx context.Context, keys []K, load ManyLoader[K, V]) (results []Result[V], errs []error) {
	results, errs = make([]Result[V], len(keys)), make([]error, len(keys))
	waits := make([]*flight[V], len(keys))
	var missing []K
	var started []*flight[V]
	now := c.opts.Now()
	c.mu.Lock()
	for i, key := range keys {
		if el, ok := c.items[key]; ok {
			e := el.Value.(*entry[K, V])
			if age := now.Sub(e.stored); age < c.opts.TTL {
				c.ll.MoveToFront(el)
				results[i] = Result[V]{Value: e.value, Hit: true, Age: age}
				continue
			}
		}
		f, inflight := c.flights[key]
		if !inflight {
			f = &flight[V]{done: make(chan struct{})}
			c.flights[key] = f
			missing, started = append(missing, key), append(started, f)
		}
		waits[i] = f
	}
	c.mu.Unlock()
	if len(missing) > 0 {
		go c.load(ctx, missing, started, load)
	}
	for i, f := range waits {
		if f == nil {
			c.count(ctx, "hit")
			continue
		}
		select {
		case <-f.done:
			if f.err == nil {
				c.count(ctx, "miss")
				results[i] = Result[V]{Value: f.val}
				continue
			}
			results[i], errs[i] = c.stale(ctx, keys[i], f.err)
		case <-ctx.Done():
			results[i], errs[i] = c.stale(ctx, keys[i], ctx.Err())
		}
	}
	return results, errs
}

// load runs load for the flights of keys under ctx's values and deadline but not its
// cancellation.
func (c *Cache[K, V]) load(ctx context.Context, keys []K, flights []*flight[V], load ManyLoader[K, V]) {
	lctx := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		lctx, cancel = context.WithDeadline(lctx, dl)
		defer cancel()
	}
	var vals []V
	var errs []error
	defer func() {
		var failed error
		if r := recover(); r != nil {
			failed = fmt.Errorf("cache %s: loader panicked: %v", c.opts.Name, r)
		} else if len(vals) != len(keys) || len(errs) != len(keys) {
			failed = fmt.Errorf("cache %s: loader answered %d values and %d errors for %d keys", c.opts.Name, len(vals), len(errs), len(keys))
		}
		now := c.opts.Now()
		c.mu.Lock()
		for i, f := range flights {
			if failed != nil {
				f.err = failed
			} else {
				f.val, f.err = vals[i], errs[i]
			}
			if f.err == nil {
				c.store(keys[i], f.val, now)
			}
			delete(c.flights, keys[i])
		}
		c.mu.Unlock()
		for _, f := range flights {
			close(f.done)
		}
	}()
	vals, errs = load(lctx, keys)
}

func (c *Cache[K, V]) stale(ctx context.Context, key K, cause error) (Result[V], error) {
	if c.opts.StaleIfError > 0 {
		if v, age, ok := c.PeekStale(key); ok {
			c.count(ctx, "stale")
			return Result[V]{Value: v, Stale: true, LoadErr: cause, Age: age}, nil
		}
	}
	c.count(ctx, "error")
	return Result[V]{LoadErr: cause}, cause
}

// ServesStale reports whether the cache serves expired values when a load fails.
func (c *Cache[K, V]) ServesStale() bool { return c.opts.StaleIfError > 0 }

// Peek returns the fresh value of key without loading.
func (c *Cache[K, V]) Peek(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*entry[K, V])
		if c.opts.Now().Sub(e.stored) < c.opts.TTL {
			return e.value, true
		}
	}
	var zero V
	return zero, false
}

// PeekStale returns the value of key if it is fresh or within StaleIfError past its TTL, with its
// age. It does not load.
func (c *Cache[K, V]) PeekStale(key K) (V, time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.items[key]
	if !ok {
		return zero, 0, false
	}
	e := el.Value.(*entry[K, V])
	age := c.opts.Now().Sub(e.stored)
	if age >= c.opts.TTL+c.opts.StaleIfError {
		c.ll.Remove(el)
		delete(c.items, key)
		return zero, 0, false
	}
	return e.value, age, true
}

// Set stores v under key as freshly loaded.
func (c *Cache[K, V]) Set(key K, v V) {
	c.mu.Lock()
	c.store(key, v, c.opts.Now())
	c.mu.Unlock()
}

// Delete removes key.
func (c *Cache[K, V]) Delete(key K) {
	c.mu.Lock()
	if el, ok := c.items[key]; ok {
		c.ll.Remove(el)
		delete(c.items, key)
	}
	c.mu.Unlock()
}

// Len is the number of entries held, fresh or not.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// store inserts or refreshes key and evicts the least recently used entries past MaxEntries.
// c.mu is held.
func (c *Cache[K, V]) store(key K, v V, now time.Time) {
	if el, ok := c.items[key]; ok {
		e := el.Value.(*entry[K, V])
		e.value, e.stored = v, now
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&entry[K, V]{key: key, value: v, stored: now})
	for c.ll.Len() > c.opts.MaxEntries {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*entry[K, V]).key)
	}
}
