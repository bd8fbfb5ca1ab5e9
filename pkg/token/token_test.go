package token_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/token"
)

// clock is a manual clock: tests move time instead of sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// vendor is a fake token endpoint: each fetch returns tok-<n>; gate, when set, holds fetches
// until closed; fail makes fetches fail.
type vendor struct {
	calls atomic.Int64
	ttl   time.Duration
	mu    sync.Mutex
	gate  chan struct{}
	fail  error
	seen  chan string // receives the key of every fetch that started, if set
}

func (v *vendor) fetch(ctx context.Context, key string) (token.Token, error) {
	n := v.calls.Add(1)
	v.mu.Lock()
	gate, fail, seen := v.gate, v.fail, v.seen
	v.mu.Unlock()
	if seen != nil {
		seen <- key
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return token.Token{}, ctx.Err()
		}
	}
	if fail != nil {
		return token.Token{}, fail
	}
	return token.Token{Value: fmt.Sprintf("%s-tok-%d", key, n), TTL: v.ttl}, nil
}

func (v *vendor) set(f func(v *vendor)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	f(v)
}

func newCache(t *testing.T, v *vendor, clk *clock, opts ...token.Option) *token.Cache {
	t.Helper()
	c, err := token.New(v.fetch, append([]token.Option{token.WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func get(t *testing.T, c *token.Cache, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := c.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	return v
}

// waitFetches waits until the background fetches have settled to want calls and a Get returns
// want's token (background refreshes finish asynchronously).
func waitValue(t *testing.T, c *token.Cache, key, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := get(t, c, key); got == want {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("token of %s is %s, want %s", key, got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSingleFlightUnderConcurrency(t *testing.T) {
	t.Parallel()
	v := &vendor{ttl: 2 * time.Hour, gate: make(chan struct{})}
	c := newCache(t, v, newClock())
	const n = 200
	var wg sync.WaitGroup
	got := make([]string, n)
	errs := make([]error, n)
	ready := make(chan struct{}, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready <- struct{}{}
			got[i], errs[i] = c.Get(context.Background(), "corp")
		}()
	}
	for range n {
		<-ready
	}
	// Let the waiters pile up on the one fetch, then release it.
	for v.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(v.gate)
	wg.Wait()
	if calls := v.calls.Load(); calls != 1 {
		t.Fatalf("%d concurrent Gets made %d fetches, want 1", n, calls)
	}
	for i := range n {
		if errs[i] != nil || got[i] != "corp-tok-1" {
			t.Fatalf("Get %d = %q, %v; want corp-tok-1", i, got[i], errs[i])
		}
	}
}

func TestKeysAreIndependent(t *testing.T) {
	t.Parallel()
	v := &vendor{ttl: time.Hour}
	c := newCache(t, v, newClock())
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("corp%d", i%4)
			if got := get(t, c, key); len(got) < len(key) || got[:len(key)] != key {
				t.Errorf("Get(%s) = %s", key, got)
			}
		}()
	}
	wg.Wait()
	if calls := v.calls.Load(); calls != 4 {
		t.Fatalf("4 keys fetched %d times, want 4", calls)
	}
}

func TestRefreshAheadServesOldTokenWhileRefreshing(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := &vendor{ttl: 7200 * time.Second}
	c := newCache(t, v, clk)
	if got := get(t, c, "corp"); got != "corp-tok-1" {
		t.Fatalf("first Get = %s", got)
	}
	// 7200s: refresh at 80% = 5760s (earlier than 5 min before expiry).
	clk.Add(5759 * time.Second)
	if got := get(t, c, "corp"); got != "corp-tok-1" || v.calls.Load() != 1 {
		t.Fatalf("before the refresh point: %s after %d fetches", got, v.calls.Load())
	}
	// Past the refresh point: the old token is returned at once while the refresh is held.
	gate := make(chan struct{})
	v.set(func(v *vendor) { v.gate = gate })
	clk.Add(2 * time.Second)
	for range 10 {
		if got := get(t, c, "corp"); got != "corp-tok-1" {
			t.Fatalf("during the refresh Get = %s, want the still valid corp-tok-1", got)
		}
	}
	close(gate)
	waitValue(t, c, "corp", "corp-tok-2")
	if calls := v.calls.Load(); calls != 2 {
		t.Fatalf("refresh ahead made %d fetches in all, want 2", calls)
	}
}

func TestRefreshBeforeExpiryWhenEarlierThanFraction(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := &vendor{ttl: 20 * time.Minute}
	c := newCache(t, v, clk) // 80% = 16m, 5 min before = 15m: refresh at 15m
	get(t, c, "k")
	clk.Add(14*time.Minute + 59*time.Second)
	get(t, c, "k")
	if v.calls.Load() != 1 {
		t.Fatalf("refreshed before 15m")
	}
	clk.Add(2 * time.Second)
	get(t, c, "k")
	waitValue(t, c, "k", "k-tok-2")
}

func TestExpiredTokenIsNeverReturned(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := &vendor{ttl: time.Minute}
	c := newCache(t, v, clk, token.WithRefreshFraction(1))
	get(t, c, "k")
	clk.Add(time.Minute) // exactly at expiry
	gate := make(chan struct{})
	v.set(func(v *vendor) { v.gate = gate })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if got, err := c.Get(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get of an expired token = %q, %v; want to wait for the fetch", got, err)
	}
	close(gate)
	if got := get(t, c, "k"); got != "k-tok-2" {
		t.Fatalf("after expiry Get = %s, want k-tok-2", got)
	}
}

func TestRejectAndInvalidate(t *testing.T) {
	t.Parallel()
	v := &vendor{ttl: time.Hour}
	c := newCache(t, v, newClock())
	old := get(t, c, "corp")
	if !c.Reject("corp", old) {
		t.Fatal("Reject of the cached token reported false")
	}
	fresh := get(t, c, "corp")
	if fresh == old {
		t.Fatalf("Get after Reject returned the rejected %s", old)
	}
	// A late rejection of the old token keeps the fresh one.
	if c.Reject("corp", old) {
		t.Fatal("Reject of a replaced token dropped the new one")
	}
	if got := get(t, c, "corp"); got != fresh {
		t.Fatalf("after a stale Reject Get = %s, want %s", got, fresh)
	}
	c.Invalidate("corp")
	if got := get(t, c, "corp"); got == fresh {
		t.Fatal("Invalidate kept the token")
	}
	c.Invalidate("unknown")
	if c.Reject("unknown", "x") {
		t.Fatal("Reject of an unknown key reported true")
	}
	if calls := v.calls.Load(); calls != 3 {
		t.Fatalf("%d fetches, want 3", calls)
	}
}

func TestWaiterCancellationDoesNotCancelTheFetch(t *testing.T) {
	t.Parallel()
	v := &vendor{ttl: time.Hour, gate: make(chan struct{}), seen: make(chan string, 4)}
	c := newCache(t, v, newClock())
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, "corp")
		errc <- err
	}()
	<-v.seen // the fetch started
	other := make(chan string, 1)
	go func() { other <- get(t, c, "corp") }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter got %v, want context.Canceled", err)
	}
	close(v.gate)
	if got := <-other; got != "corp-tok-1" {
		t.Fatalf("the other waiter got %s", got)
	}
	if calls := v.calls.Load(); calls != 1 {
		t.Fatalf("%d fetches, want 1", calls)
	}
}

func TestErrorsAreSharedButNotCached(t *testing.T) {
	t.Parallel()
	boom := errors.New("errcode 40001 invalid credential")
	v := &vendor{ttl: time.Hour, fail: boom, gate: make(chan struct{})}
	c := newCache(t, v, newClock())
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Get(context.Background(), "corp")
		}()
	}
	for v.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(v.gate)
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, boom) {
			t.Fatalf("waiter %d got %v, want the fetch error", i, err)
		}
	}
	v.set(func(v *vendor) { v.fail = nil })
	if got := get(t, c, "corp"); got == "" {
		t.Fatal("no token after the vendor recovered")
	}
	if calls := v.calls.Load(); calls < 2 {
		t.Fatalf("the error was cached: %d fetches", calls)
	}
}

func TestFailedBackgroundRefreshKeepsTokenAndBacksOff(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := &vendor{ttl: 100 * time.Second}
	c := newCache(t, v, clk, token.WithRetryInterval(10*time.Second))
	get(t, c, "k")
	v.set(func(v *vendor) { v.fail = errors.New("errcode -1 system busy") })
	clk.Add(81 * time.Second)
	if got := get(t, c, "k"); got != "k-tok-1" {
		t.Fatalf("Get past the refresh point = %s", got)
	}
	// Whether the failed refresh is still running or already recorded, Gets within the retry
	// interval serve the old token and start no other fetch.
	bustWait(t, func() bool { return v.calls.Load() == 2 })
	for range 5 {
		if got := get(t, c, "k"); got != "k-tok-1" {
			t.Fatalf("old token not served after a failed refresh: %s", got)
		}
	}
	if calls := v.calls.Load(); calls != 2 {
		t.Fatalf("refresh retried within the retry interval: %d fetches", calls)
	}
	// Once the vendor recovers and time moves on, a refresh (or, past expiry, a fetch) succeeds.
	v.set(func(v *vendor) { v.fail = nil })
	bustWait(t, func() bool {
		clk.Add(11 * time.Second)
		got, err := c.Get(context.Background(), "k")
		return err == nil && got != "k-tok-1"
	})
}

func bustWait(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestUnusableTokensAndPanicsAreErrors(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]token.Fetcher{
		"empty":  func(context.Context, string) (token.Token, error) { return token.Token{TTL: time.Hour}, nil },
		"no ttl": func(context.Context, string) (token.Token, error) { return token.Token{Value: "x"}, nil },
		"panic":  func(context.Context, string) (token.Token, error) { panic("boom") },
		"timeout": func(ctx context.Context, _ string) (token.Token, error) {
			<-ctx.Done()
			return token.Token{}, ctx.Err()
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := token.New(f, token.WithFetchTimeout(20*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			if v, err := c.Get(context.Background(), "k"); err == nil {
				t.Fatalf("Get = %q, want an error", v)
			}
		})
	}
}

func TestOptionsValidated(t *testing.T) {
	t.Parallel()
	f := func(context.Context, string) (token.Token, error) { return token.Token{}, nil }
	for name, opt := range map[string]token.Option{
		"fraction 0":     token.WithRefreshFraction(0),
		"fraction 1.5":   token.WithRefreshFraction(1.5),
		"negative":       token.WithRefreshBefore(-time.Second),
		"zero timeout":   token.WithFetchTimeout(0),
		"negative retry": token.WithRetryInterval(-1),
		"nil clock":      token.WithClock(nil),
	} {
		if _, err := token.New(f, opt); !errors.Is(err, token.ErrInvalidOption) {
			t.Errorf("%s: New = %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := token.New(nil); !errors.Is(err, token.ErrInvalidOption) {
		t.Errorf("nil fetcher: %v", err)
	}
}

// TestConcurrentGetRejectStress mixes Gets, Rejects and clock moves from many goroutines; run
// with -race. Every Get must return a token that was fetched, never an empty one.
func TestConcurrentGetRejectStress(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := &vendor{ttl: time.Minute}
	c := newCache(t, v, clk)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				key := fmt.Sprintf("k%d", (g+i)%3)
				tok := get(t, c, key)
				if tok == "" {
					t.Error("empty token")
					return
				}
				switch i % 17 {
				case 0:
					c.Reject(key, tok)
				case 5:
					clk.Add(7 * time.Second)
				case 11:
					c.Invalidate(key)
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkGetCached(b *testing.B) {
	c, err := token.New(func(context.Context, string) (token.Token, error) {
		return token.Token{Value: "v", TTL: time.Hour}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Get(ctx, "corp"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Get(ctx, "corp"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestPut: a token put in the cache is served without a fetch until its refresh point, and an
// unusable one is refused.
func TestPut(t *testing.T) {
	t.Parallel()
	v := &vendor{ttl: time.Hour}
	clk := newClock()
	c := newCache(t, v, clk)
	if err := c.Put("corp", token.Token{Value: "put", TTL: time.Hour}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if got := get(t, c, "corp"); got != "put" {
		t.Fatalf("Get after Put = %s, want put", got)
	}
	if calls := v.calls.Load(); calls != 0 {
		t.Fatalf("%d fetches after Put, want 0", calls)
	}
	clk.Add(time.Hour)
	if got := get(t, c, "corp"); got == "put" {
		t.Fatal("Get served the put token after its expiry")
	}
	for _, bad := range []token.Token{{Value: "", TTL: time.Hour}, {Value: "x"}} {
		if err := c.Put("corp", bad, clk.Now()); !errors.Is(err, token.ErrInvalidToken) {
			t.Fatalf("Put(%+v) = %v, want ErrInvalidToken", bad, err)
		}
	}
}
