package cache_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/cache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a manual clock.
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

type testBundle struct {
	clock *clock
	loads atomic.Int64
}

func setup(t *testing.T, o cache.Options) (*cache.Cache[string, string], *testBundle) {
	t.Helper()
	b := &testBundle{clock: &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	o.Now = b.clock.Now
	return cache.New[string, string](o), b
}

func (b *testBundle) loader(val string, err error) cache.Loader[string, string] {
	return func(ctx context.Context, key string) (string, error) {
		b.loads.Add(1)
		if err != nil {
			return "", err
		}
		return val + ":" + key, nil
	}
}

func TestHitDoesNotCallLoader(t *testing.T) {
	t.Parallel()
	c, b := setup(t, cache.Options{TTL: time.Minute})
	ctx := context.Background()
	for i := range 5 {
		r, err := c.Fetch(ctx, "k", b.loader("v", nil))
		if err != nil || r.Value != "v:k" {
			t.Fatalf("Fetch = %+v, %v", r, err)
		}
		if r.Hit != (i > 0) {
			t.Fatalf("call %d: Hit = %v", i, r.Hit)
		}
	}
	if n := b.loads.Load(); n != 1 {
		t.Fatalf("loads = %d, want 1", n)
	}
	// Past the TTL the next Get loads again.
	b.clock.Advance(time.Minute)
	if _, err := c.Get(ctx, "k", b.loader("v2", nil)); err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Peek("k"); !ok || v != "v2:k" || b.loads.Load() != 2 {
		t.Fatalf("after TTL: %q %v loads=%d", v, ok, b.loads.Load())
	}
}

func TestConcurrentMissesLoadOnce(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, cache.Options{})
	const n = 64
	var loads atomic.Int64
	release := make(chan struct{})
	load := func(ctx context.Context, key string) (string, error) {
		loads.Add(1)
		<-release
		return "v", nil
	}
	var wg sync.WaitGroup
	var started sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			v, err := c.Get(context.Background(), "same", load)
			if err == nil && v != "v" {
				err = fmt.Errorf("value %q", v)
			}
			errs <- err
		}()
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond) // let the callers reach the flight before it completes
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := loads.Load(); got != 1 {
		t.Fatalf("loader called %d times for %d concurrent misses, want 1", got, n)
	}
}

func TestLRUBound(t *testing.T) {
	t.Parallel()
	c, b := setup(t, cache.Options{MaxEntries: 3})
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		_, _ = c.Get(ctx, k, b.loader("v", nil))
	}
	_, _ = c.Get(ctx, "a", b.loader("v", nil)) // a is now most recent
	_, _ = c.Get(ctx, "d", b.loader("v", nil)) // evicts b
	if c.Len() != 3 {
		t.Fatalf("Len = %d", c.Len())
	}
	if _, ok := c.Peek("b"); ok {
		t.Fatal("b should have been evicted (least recently used)")
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := c.Peek(k); !ok {
			t.Fatalf("%s evicted", k)
		}
	}
}

func TestStaleIfError(t *testing.T) {
	t.Parallel()
	c, b := setup(t, cache.Options{TTL: time.Minute, StaleIfError: time.Hour})
	ctx := context.Background()
	boom := errors.New("vendor down")
	if _, err := c.Get(ctx, "k", b.loader("v", nil)); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(2 * time.Minute)
	r, err := c.Fetch(ctx, "k", b.loader("", boom))
	if err != nil || !r.Stale || r.Value != "v:k" || !errors.Is(r.LoadErr, boom) || r.Age != 2*time.Minute {
		t.Fatalf("stale fetch = %+v, %v", r, err)
	}
	// Beyond TTL + StaleIfError nothing is served.
	b.clock.Advance(time.Hour)
	if _, err := c.Get(ctx, "k", b.loader("", boom)); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the load error", err)
	}
	// Without StaleIfError, a failed load is an error.
	plain, pb := setup(t, cache.Options{TTL: time.Minute})
	_, _ = plain.Get(ctx, "k", pb.loader("v", nil))
	pb.clock.Advance(2 * time.Minute)
	if _, err := plain.Get(ctx, "k", pb.loader("", boom)); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the load error", err)
	}
}

func TestCallerDeadlineDoesNotFailOthers(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, cache.Options{})
	release := make(chan struct{})
	var loads atomic.Int64
	load := func(ctx context.Context, key string) (string, error) {
		loads.Add(1)
		select {
		case <-release:
			return "v", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	impatient, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.Get(impatient, "k", load); done <- err }()
	bustWait(t, func() bool { return loads.Load() == 1 })
	patient := make(chan string, 1)
	go func() { v, _ := c.Get(context.Background(), "k", load); patient <- v }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("impatient caller: %v", err)
	}
	close(release)
	if v := <-patient; v != "v" {
		t.Fatalf("patient caller got %q: the first caller's cancel failed the shared load", v)
	}
	if loads.Load() != 1 {
		t.Fatalf("loads = %d", loads.Load())
	}
}

func TestLoaderPanicIsAnError(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, cache.Options{})
	_, err := c.Get(context.Background(), "k", func(context.Context, string) (string, error) { panic("boom") })
	if err == nil {
		t.Fatal("a panicking loader returned no error")
	}
}

func bustWait(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFetchMany: keys asked together are answered in order; fresh keys are hits, a key already
// being loaded by another caller waits for that load, and all the other misses are loaded by one
// call; a key the loader fails is that key's error alone (or its stale value), and a loader that
// answers the wrong number of values fails every key it was asked for.
func TestFetchMany(t *testing.T) {
	t.Parallel()
	c, b := setup(t, cache.Options{TTL: time.Minute, StaleIfError: time.Hour})
	ctx := context.Background()
	if _, err := c.Get(ctx, "fresh", b.loader("v", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "old", b.loader("v", nil)); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(2 * time.Minute) // both stale now
	if _, err := c.Get(ctx, "fresh", b.loader("v", nil)); err != nil {
		t.Fatal(err)
	}
	// Another caller is loading "busy" and holds it until released.
	release, started := make(chan struct{}), make(chan struct{})
	busy := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, "busy", func(ctx context.Context, k string) (string, error) {
			close(started)
			<-release
			return "other:" + k, nil
		})
		busy <- err
	}()
	<-started
	var calls [][]string
	var mu sync.Mutex
	load := func(ctx context.Context, keys []string) ([]string, []error) {
		mu.Lock()
		calls = append(calls, keys)
		mu.Unlock()
		vals, errs := make([]string, len(keys)), make([]error, len(keys))
		for i, k := range keys {
			if k == "old" || k == "bad" {
				errs[i] = fmt.Errorf("vendor failed %s", k)
				continue
			}
			vals[i] = "many:" + k
		}
		return vals, errs
	}
	go func() { time.Sleep(10 * time.Millisecond); close(release) }()
	keys := []string{"a", "fresh", "busy", "b", "old", "a", "bad"}
	res, errs := c.FetchMany(ctx, keys, load)
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || fmt.Sprint(calls[0]) != "[a b old bad]" {
		t.Fatalf("loader calls %v, want one for [a b old bad]", calls)
	}
	want := []struct {
		val       string
		hit, old  bool
		wantError bool
	}{{"many:a", false, false, false}, {"v:fresh", true, false, false}, {"other:busy", false, false, false},
		{"many:b", false, false, false}, {"v:old", false, true, false}, {"many:a", false, false, false}, {"", false, false, true}}
	for i, w := range want {
		r, err := res[i], errs[i]
		if (err != nil) != w.wantError || r.Value != w.val || r.Hit != w.hit || r.Stale != w.old {
			t.Errorf("%s: %+v, %v; want %+v", keys[i], r, err, w)
		}
	}
	if v, ok := c.Peek("b"); !ok || v != "many:b" {
		t.Fatalf("loaded key not stored: %q %v", v, ok)
	}
	// A loader answering the wrong number of values.
	_, errs = c.FetchMany(ctx, []string{"x", "y"}, func(ctx context.Context, keys []string) ([]string, []error) {
		return []string{"only one"}, nil
	})
	if errs[0] == nil || errs[1] == nil {
		t.Fatalf("short answer: errors %v", errs)
	}
	if _, ok := c.Peek("x"); ok {
		t.Fatal("a key of a malformed answer was stored")
	}
}
