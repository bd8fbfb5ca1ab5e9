package resilience_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/cache"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Personal data the fake vendor echoes, to prove none of it reaches records or logs.
const (
	mobile   = "13800138000"
	idCard   = "11010519491231002X"
	bankCard = "6222021234567890128"
)

// vendor is a real HTTP server that behaves like a faulty vendor: its handler gets the request
// number (1-based) and decides.
type vendor struct {
	*httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex
	handler func(n int64, w http.ResponseWriter, r *http.Request)
	arrived []time.Time
}

func newVendor(t *testing.T) *vendor {
	t.Helper()
	v := &vendor{handler: ok}
	v.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := v.hits.Add(1)
		v.mu.Lock()
		v.arrived = append(v.arrived, time.Now())
		h := v.handler
		v.mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		h(n, w, r)
	}))
	t.Cleanup(v.Close)
	return v
}

func (v *vendor) set(h func(n int64, w http.ResponseWriter, r *http.Request)) {
	v.mu.Lock()
	v.handler = h
	v.mu.Unlock()
}

// ok answers like a vendor that served the request, echoing personal data.
func ok(_ int64, w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"errcode":0,"owner":{"mobile":"%s","id_no":"%s","note":"card %s"}}`, mobile, idCard, bankCard)
}

func fail500(_ int64, w http.ResponseWriter, _ *http.Request) {
	http.Error(w, `{"errcode":-1,"errmsg":"system busy, call 13900139000"}`, http.StatusInternalServerError)
}

// slow answers after d unless the client gives up first.
func slow(d time.Duration) func(int64, http.ResponseWriter, *http.Request) {
	return func(n int64, w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
			ok(n, w, r)
		case <-r.Context().Done():
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type testBundle struct {
	vendor *vendor
	mem    *audit.Memory
	logs   *syncBuffer
	client *http.Client
}

func setup(t *testing.T, env map[string]string) (*resilience.Registry, *testBundle) {
	t.Helper()
	b := &testBundle{vendor: newVendor(t), mem: &audit.Memory{}, logs: &syncBuffer{},
		client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}}
	t.Cleanup(b.client.CloseIdleConnections)
	reg, err := resilience.New(resilience.Options{
		Service: "logistics", Audit: b.mem, HTTPClient: b.client,
		Log: slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close(context.Background()) })
	return reg, b
}

// request builds a POST to the vendor with personal data in the body.
func (b *testBundle) request() resilience.NewRequest {
	return func(ctx context.Context) (*http.Request, error) {
		body := `{"receiverMobile":"` + mobile + `","idNo":"` + idCard + `","waybill":"SF1234567890"}`
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.vendor.URL+"/route", strings.NewReader(body))
		if req != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	}
}

func spec(op string, idempotent bool, s resilience.Settings) resilience.RouteSpec {
	return resilience.RouteSpec{
		Vendor: "sfexpress", Op: op, Idempotent: idempotent, Settings: s,
		CodeOf: resilience.JSONCode("errcode"),
		Codes:  resilience.Codes{"0": resilience.ClassSuccess, "45009": resilience.ClassRateLimited, "40001": resilience.ClassPermanent, "-1": resilience.ClassRetryable},
		Fallback: func(c resilience.Call, _ error) *resilience.Fallback {
			return &resilience.Fallback{ManualURL: "https://www.sf-express.com/waybill/" + c.Key}
		},
	}
}

// noLeaks fails when audit records or logs hold unmasked personal data.
func (b *testBundle) noLeaks(t *testing.T) {
	t.Helper()
	for _, r := range b.mem.Records() {
		j, _ := json.Marshal(r)
		if pii.Contains(string(j)) {
			t.Fatalf("audit record leaks personal data: %s", j)
		}
	}
	if pii.Contains(b.logs.String()) {
		t.Fatalf("logs leak personal data: %s", b.logs.String())
	}
}

func TestBreakerOpensFallsBackWithinBudgetAndRecovers(t *testing.T) {
	t.Parallel()
	reg, b := setup(t, nil)
	rt := reg.MustRoute(spec("route_query", true, resilience.Settings{
		BreakerMinCalls: 6, BreakerWindow: time.Minute, BreakerOpenFor: time.Second, BreakerProbes: 2}))
	// 50 % errors, and the rest 2 s late.
	b.vendor.set(func(n int64, w http.ResponseWriter, r *http.Request) {
		if n%2 == 1 {
			fail500(n, w, r)
			return
		}
		slow(2*time.Second)(n, w, r)
	})
	const budget = time.Second
	calls := 0
	call := func() error {
		calls++
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		start := time.Now()
		_, err := rt.HTTP(ctx, resilience.Call{CustomerID: "c1", Key: "SF1234567890"}, b.request(), nil)
		if took := time.Since(start); took > budget+250*time.Millisecond {
			t.Errorf("call %d answered after %s, budget %s", calls, took, budget)
		}
		return err
	}
	opened := false
	for range 30 {
		err := call()
		var fail *resilience.Error
		if !errors.As(err, &fail) {
			t.Fatalf("call %d: err = %v, want a *resilience.Error", calls, err)
		}
		if fail.Fallback == nil || fail.Fallback.ManualURL != "https://www.sf-express.com/waybill/SF1234567890" {
			t.Fatalf("call %d: fallback %+v", calls, fail.Fallback)
		}
		if errors.Is(err, resilience.ErrCircuitOpen) {
			if fail.Attempts != 0 {
				t.Fatalf("a call refused by the open breaker sent %d requests", fail.Attempts)
			}
			if !bus.IsUnavailable(err) || bus.IsPermanent(err) {
				t.Fatalf("an open breaker's failure %v is not bus.Unavailable: a consumer would spend the message's deliveries", err)
			}
			opened = true
			break
		}
	}
	if !opened || rt.BreakerState() != "open" {
		t.Fatalf("breaker %s after %d failing calls", rt.BreakerState(), calls)
	}
	// While open, calls are answered without reaching the vendor.
	before := b.vendor.hits.Load()
	for range 5 {
		if err := call(); errors.Is(err, resilience.ErrCircuitOpen) {
			continue
		}
		break // the open delay passed on a slow machine: half-open probes may go through
	}
	if rt.BreakerState() == "open" && b.vendor.hits.Load() != before {
		t.Fatalf("the vendor got %d requests while the breaker was open", b.vendor.hits.Load()-before)
	}
	// The vendor recovers; after the open delay, half-open probes close the breaker.
	b.vendor.set(ok)
	deadline := time.Now().Add(15 * time.Second)
	for rt.BreakerState() != "closed" {
		if time.Now().After(deadline) {
			t.Fatalf("breaker still %s after the vendor recovered", rt.BreakerState())
		}
		_ = call()
		time.Sleep(50 * time.Millisecond)
	}
	if err := call(); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if n := len(b.mem.Records()); n != calls {
		t.Fatalf("%d audit records for %d calls", n, calls)
	}
	b.noLeaks(t)
}

func TestIdempotentRetriesTransientFailures(t *testing.T) {
	t.Parallel()
	reg, b := setup(t, nil)
	rt := reg.MustRoute(spec("route_query", true, resilience.Settings{Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}))
	b.vendor.set(func(n int64, w http.ResponseWriter, r *http.Request) {
		if n < 3 {
			fail500(n, w, r)
			return
		}
		ok(n, w, r)
	})
	var out struct {
		Owner struct {
			Mobile string `json:"mobile"`
		} `json:"owner"`
	}
	reply, err := rt.HTTP(context.Background(), resilience.Call{CustomerID: "c1"}, b.request(), &out)
	if err != nil || reply.Status != 200 || reply.Code != "0" || out.Owner.Mobile != mobile {
		t.Fatalf("reply %+v out %+v err %v", reply, out, err)
	}
	recs := b.mem.Records()
	if len(recs) != 1 || recs[0].Attempts != 3 || recs[0].Outcome != audit.OutcomeOK || recs[0].Status != 200 || recs[0].Code != "0" {
		t.Fatalf("records %+v, want one ok record with 3 attempts", recs)
	}
	r := recs[0]
	if r.Request == nil || !strings.Contains(r.Request.Text, `"receiverMobile":"138****8000"`) || r.Response == nil ||
		!strings.Contains(r.Response.Text, `"mobile":"138****8000"`) || r.Request.ContentType != "application/json" {
		t.Fatalf("bodies %+v %+v", r.Request, r.Response)
	}
	b.noLeaks(t)
}

func TestNonIdempotentCallIsNeverRepeated(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		h          func(int64, http.ResponseWriter, *http.Request)
		tookEffect bool // MayHaveTakenEffect: the vendor may have done the work
	}{
		"server error": {fail500, true},
		"timeout":      {slow(2 * time.Second), true},
		"rate limited": {func(_ int64, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		}, false},
		"refused": {func(_ int64, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
		}, false},
	} {
		h := tc.h
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reg, b := setup(t, nil)
			rt := reg.MustRoute(spec("create_order", false, resilience.Settings{MaxAttempts: 5, Backoff: time.Millisecond}))
			b.vendor.set(h)
			_, err := rt.HTTP(context.Background(), resilience.Call{}, b.request(), nil)
			if err == nil {
				t.Fatal("call succeeded")
			}
			if n := b.vendor.hits.Load(); n != 1 {
				t.Fatalf("the vendor got %d requests of a non-idempotent call, want 1", n)
			}
			if recs := b.mem.Records(); len(recs) != 1 || recs[0].Attempts != 1 || recs[0].Idempotent {
				t.Fatalf("records %+v", recs)
			}
			var fail *resilience.Error
			if !errors.As(err, &fail) || fail.MayHaveTakenEffect() != tc.tookEffect {
				t.Fatalf("%v: MayHaveTakenEffect = %v, want %v", err, fail != nil && fail.MayHaveTakenEffect(), tc.tookEffect)
			}
		})
	}
}

func TestNonIdempotentCallRetriesWhatNeverLeft(t *testing.T) {
	t.Parallel()
	reg, b := setup(t, nil)
	rt := reg.MustRoute(spec("create_order", false, resilience.Settings{MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every dial is refused
	_, err = rt.HTTP(context.Background(), resilience.Call{}, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/order", strings.NewReader("{}"))
	}, nil)
	var fail *resilience.Error
	if !errors.As(err, &fail) || fail.Attempts != 3 || fail.Outcome != audit.OutcomeError {
		t.Fatalf("err = %v (%+v), want 3 attempts of a refused dial", err, fail)
	}
	if fail.MayHaveTakenEffect() {
		t.Fatal("no request left, yet the call may have taken effect")
	}
	// Not sent at all: the route's own rate limit had no permit in time.
	slow := reg.MustRoute(spec("cancel_order", false, resilience.Settings{RateLimit: 0.1, MaxWait: time.Millisecond}))
	b.vendor.set(fail500)
	_, _ = slow.HTTP(context.Background(), resilience.Call{}, b.request(), nil) // takes the one permit
	_, err = slow.HTTP(context.Background(), resilience.Call{}, b.request(), nil)
	if !errors.As(err, &fail) || fail.Outcome != audit.OutcomeThrottled || fail.MayHaveTakenEffect() {
		t.Fatalf("throttled call: %v (%+v), want throttled and not taken effect", err, fail)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	t.Run("within the budget: waits and retries", func(t *testing.T) {
		t.Parallel()
		reg, b := setup(t, nil)
		rt := reg.MustRoute(spec("route_query", true, resilience.Settings{}))
		b.vendor.set(func(n int64, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			ok(n, w, r)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := rt.HTTP(ctx, resilience.Call{}, b.request(), nil); err != nil {
			t.Fatal(err)
		}
		b.vendor.mu.Lock()
		gap := b.vendor.arrived[1].Sub(b.vendor.arrived[0])
		b.vendor.mu.Unlock()
		if b.vendor.hits.Load() != 2 || gap < 900*time.Millisecond {
			t.Fatalf("%d requests, the retry came %s after the 429 with Retry-After: 1", b.vendor.hits.Load(), gap)
		}
	})
	t.Run("beyond the budget: returned at once with the delay", func(t *testing.T) {
		t.Parallel()
		reg, b := setup(t, nil)
		rt := reg.MustRoute(spec("route_query", true, resilience.Settings{}))
		b.vendor.set(func(_ int64, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		_, err := rt.HTTP(context.Background(), resilience.Call{}, b.request(), nil)
		d, ok := bus.RetryDelay(err)
		if !ok || d != 30*time.Second || !errors.Is(err, resilience.ErrRateLimited) || bus.IsPermanent(err) {
			t.Fatalf("err = %v, delay %s %v", err, d, ok)
		}
		if b.vendor.hits.Load() != 1 {
			t.Fatalf("%d requests", b.vendor.hits.Load())
		}
	})
	t.Run("vendor rate-limit code", func(t *testing.T) {
		t.Parallel()
		reg, b := setup(t, nil)
		rt := reg.MustRoute(spec("route_query", true, resilience.Settings{MaxAttempts: 1}))
		b.vendor.set(func(_ int64, w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `{"errcode":45009,"errmsg":"api freq out of limit"}`)
		})
		_, err := rt.HTTP(context.Background(), resilience.Call{}, b.request(), nil)
		var fail *resilience.Error
		if !errors.As(err, &fail) || fail.Outcome != audit.OutcomeRateLimited || fail.Code() != "45009" {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestPermanentCodeIsNotRetried(t *testing.T) {
	t.Parallel()
	reg, b := setup(t, nil)
	rt := reg.MustRoute(spec("route_query", true, resilience.Settings{}))
	b.vendor.set(func(_ int64, w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"errcode":40001,"errmsg":"invalid credential for 13800138000"}`)
	})
	_, err := rt.HTTP(context.Background(), resilience.Call{}, b.request(), nil)
	if !bus.IsPermanent(err) || !errors.Is(err, resilience.ErrRejected) || b.vendor.hits.Load() != 1 {
		t.Fatalf("err = %v after %d requests", err, b.vendor.hits.Load())
	}
	if recs := b.mem.Records(); len(recs) != 1 || recs[0].Outcome != audit.OutcomePermanent || recs[0].Fallback != audit.FallbackManual {
		t.Fatalf("records %+v", recs)
	}
	b.noLeaks(t)
}

func TestAttemptsStayWithinTheCallersBudget(t *testing.T) {
	t.Parallel()
	reg, b := setup(t, nil)
	rt := reg.MustRoute(spec("route_query", true, resilience.Settings{}))
	b.vendor.set(slow(2 * time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	callerDeadline, _ := ctx.Deadline()
	var deadlines []time.Time
	_, err := resilience.Do(ctx, rt, resilience.Call{}, func(ctx context.Context, a *resilience.Attempt) (int, error) {
		dl, _ := ctx.Deadline()
		deadlines = append(deadlines, dl)
		req, _ := b.request()(ctx)
		resp, err := b.client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	})
	if !errors.Is(err, resilience.ErrTimeout) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if len(deadlines) == 0 {
		t.Fatal("no attempt")
	}
	for i, dl := range deadlines {
		if dl.After(callerDeadline) {
			t.Fatalf("attempt %d had deadline %s, after the caller's %s", i+1, dl, callerDeadline)
		}
	}
	if late := time.Since(callerDeadline); late > 200*time.Millisecond {
		t.Fatalf("answered %s after the caller's deadline", late)
	}
}

func TestCacheHitAndConcurrentMisses(t *testing.T) {
	t.Parallel()
	reg, b := setup(t, nil)
	rt := reg.MustRoute(spec("route_query", true, resilience.Settings{}))
	release := make(chan struct{})
	b.vendor.set(func(n int64, w http.ResponseWriter, r *http.Request) {
		<-release
		ok(n, w, r)
	})
	c := cache.New[string, string](cache.Options{TTL: time.Minute, StaleIfError: time.Hour})
	fetch := func() (cache.Result[string], error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return resilience.Cached(ctx, c, "SF1234567890", rt, resilience.Call{Key: "SF1234567890"},
			func(ctx context.Context, a *resilience.Attempt) (string, error) {
				req, _ := b.request()(ctx)
				resp, err := b.client.Do(req)
				if err != nil {
					return "", err
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				a.Response(resp.StatusCode, "", body)
				return string(body), nil
			})
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := fetch()
			errs <- err
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the callers queue behind the one load
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if hits := b.vendor.hits.Load(); hits != 1 {
		t.Fatalf("%d concurrent misses made %d vendor calls, want 1", n, hits)
	}
	r, err := fetch()
	if err != nil || !r.Hit || b.vendor.hits.Load() != 1 {
		t.Fatalf("hit = %+v, %v; vendor calls %d", r, err, b.vendor.hits.Load())
	}
	if recs := b.mem.Records(); len(recs) != 1 {
		t.Fatalf("%d audit records, want 1 (hits make no call)", len(recs))
	}
	b.noLeaks(t)
}

func TestBulkheadAndRateLimit(t *testing.T) {
	t.Parallel()
	t.Run("bulkhead", func(t *testing.T) {
		t.Parallel()
		reg, b := setup(t, nil)
		rt := reg.MustRoute(spec("route_query", true, resilience.Settings{MaxConcurrent: 1, MaxWait: 10 * time.Millisecond, MaxAttempts: 1}))
		hold, held := make(chan struct{}), make(chan struct{})
		b.vendor.set(func(n int64, w http.ResponseWriter, r *http.Request) {
			close(held)
			<-hold
			ok(n, w, r)
		})
		done := make(chan error, 1)
		go func() { _, err := rt.HTTP(context.Background(), resilience.Call{}, b.request(), nil); done <- err }()
		<-held
		_, err := rt.HTTP(context.Background(), resilience.Call{}, b.request(), nil)
		close(hold)
		var fail *resilience.Error
		if !errors.As(err, &fail) || !errors.Is(err, resilience.ErrBulkheadFull) || fail.Attempts != 0 {
			t.Fatalf("err = %v", err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		t.Parallel()
		reg, b := setup(t, nil)
		rt := reg.MustRoute(spec("route_query", true, resilience.Settings{RateLimit: 0.1, MaxWait: time.Millisecond}))
		if _, err := rt.HTTP(context.Background(), resilience.Call{}, b.request(), nil); err != nil {
			t.Fatal(err)
		}
		_, err := rt.HTTP(context.Background(), resilience.Call{}, b.request(), nil)
		if !errors.Is(err, resilience.ErrThrottled) || b.vendor.hits.Load() != 1 {
			t.Fatalf("err = %v, vendor calls %d", err, b.vendor.hits.Load())
		}
	})
}

func TestSettingsFromEnv(t *testing.T) {
	t.Parallel()
	reg, _ := setup(t, map[string]string{
		"RESILIENCE_SFEXPRESS_ROUTE_QUERY_TIMEOUT":    "500ms",
		"RESILIENCE_SFEXPRESS_ROUTE_QUERY_RATE_LIMIT": "0",
	})
	rt := reg.MustRoute(spec("route_query", true, resilience.Settings{RateLimit: 50, MaxAttempts: 2}))
	s := rt.Settings()
	if s.Timeout != 500*time.Millisecond || s.RateLimit != 0 || s.MaxAttempts != 2 || s.Budget != time.Second {
		t.Fatalf("settings %+v", s)
	}
	if _, err := reg.Route(spec("route_query", true, resilience.Settings{})); !errors.Is(err, resilience.ErrInvalidRoute) {
		t.Fatalf("a route built twice: %v", err)
	}
	errs := reg.UnknownEnv([]string{"RESILIENCE_SFEXPRESS_ROUTE_QUERY_TIMEOT=1s", "RESILIENCE_SFEXPRESS_ROUTE_QUERY_TIMEOUT=1s", "PATH=/bin"})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "did you mean RESILIENCE_SFEXPRESS_ROUTE_QUERY_TIMEOUT?") {
		t.Fatalf("UnknownEnv = %v", errs)
	}
	bad, _ := setup(t, map[string]string{"RESILIENCE_SFEXPRESS_ROUTE_QUERY_TIMEOUT": "5s"})
	if _, err := bad.Route(spec("route_query", true, resilience.Settings{})); err == nil || !strings.Contains(err.Error(), "BUDGET") {
		t.Fatalf("timeout above the budget: %v", err)
	}
	if f := resilience.Describe("sfexpress", "route_query", resilience.Settings{}); f[0].Env != "RESILIENCE_SFEXPRESS_ROUTE_QUERY_TIMEOUT" || f[0].Default != "300ms" {
		t.Fatalf("Describe: %+v", f[0])
	}
}

// trackBatch is a batch call that counts its calls, records each batch's size and answers
// "track:<key>" for every key but "missing".
func trackBatch(calls *atomic.Int64, mu *sync.Mutex, sizes *[]int) resilience.BatchFunc[string, string] {
	return func(ctx context.Context, keys []string) (map[string]string, error) {
		calls.Add(1)
		mu.Lock()
		*sizes = append(*sizes, len(keys))
		mu.Unlock()
		out := map[string]string{}
		for _, k := range keys {
			if k != "missing" {
				out[k] = "track:" + k
			}
		}
		return out, nil
	}
}

func TestBatcher(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	var mu sync.Mutex
	var sizes []int
	b := resilience.NewBatcher(resilience.BatchOptions{MaxSize: 10, MaxWait: time.Minute}, trackBatch(&calls, &mu, &sizes))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprintf("SF%010d", i)
			v, err := b.Get(context.Background(), k)
			if err != nil || v != "track:"+k {
				t.Errorf("Get(%s) = %q, %v", k, v, err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() != 2 || sizes[0] != 10 || sizes[1] != 10 {
		t.Fatalf("20 keys with MaxSize 10 made %d calls of %v, want 2 of 10", calls.Load(), sizes)
	}
	// Shared keys and missing keys, flushed by MaxWait.
	short := resilience.NewBatcher(resilience.BatchOptions{MaxSize: 10, MaxWait: 100 * time.Millisecond},
		func(ctx context.Context, keys []string) (map[string]string, error) {
			calls.Add(1)
			seen := map[string]bool{}
			for _, k := range keys {
				if seen[k] {
					t.Errorf("keys %v: a key asked twice in one batch", keys)
				}
				seen[k] = true
			}
			return map[string]string{"a": "A"}, nil
		})
	errs := make(chan error, 4)
	for _, k := range []string{"a", "a", "a", "missing"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := short.Get(context.Background(), k)
			if k == "missing" {
				if !errors.Is(err, resilience.ErrNotInBatch) {
					errs <- fmt.Errorf("missing key: %w", err)
				}
				return
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if calls.Load() > 4 {
		t.Fatalf("calls %d", calls.Load())
	}
}

// TestBatcherGetMany: keys asked together share a call whatever the timing — even a window of
// one nanosecond cannot split them — up to MaxSize, the rest going out in the next batches at once.
func TestBatcherGetMany(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	var mu sync.Mutex
	var sizes []int
	b := resilience.NewBatcher(resilience.BatchOptions{MaxSize: 10, MaxWait: time.Nanosecond}, trackBatch(&calls, &mu, &sizes))
	for round := range 200 {
		mu.Lock()
		sizes = nil
		mu.Unlock()
		keys := []string{"SF1", "SF2", "missing", "SF1"}
		vals, errs := b.GetMany(context.Background(), keys)
		if vals[0] != "track:SF1" || vals[1] != "track:SF2" || vals[3] != "track:SF1" || errs[0] != nil || errs[1] != nil || errs[3] != nil {
			t.Fatalf("round %d: %q %v", round, vals, errs)
		}
		if !errors.Is(errs[2], resilience.ErrNotInBatch) {
			t.Fatalf("missing key: %v", errs[2])
		}
		mu.Lock()
		got := fmt.Sprint(sizes)
		mu.Unlock()
		if got != "[3]" {
			t.Fatalf("round %d: 3 distinct keys asked together went out as batches %s", round, got)
		}
	}
	sizes = nil
	many := make([]string, 25)
	for i := range many {
		many[i] = fmt.Sprintf("SF%02d", i)
	}
	vals, errs := b.GetMany(context.Background(), many)
	for i := range many {
		if errs[i] != nil || vals[i] != "track:"+many[i] {
			t.Fatalf("%s: %q %v", many[i], vals[i], errs[i])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(sizes)
	if fmt.Sprint(sizes) != "[5 10 10]" {
		t.Fatalf("25 keys with MaxSize 10: batches %v, want 10, 10 and 5", sizes)
	}
}

// TestBatcherPacedByRoute: a Batcher paced by its route's rate limit keeps every attempt —
// batches and the retries of failed ones — within the quota: the n-th attempt never starts
// before n-1 permit intervals after the route was built, whatever the arrivals, and no key is
// lost or shares a batch beyond MaxSize; keys arriving faster than the quota fill batches.
func TestBatcherPacedByRoute(t *testing.T) {
	t.Parallel()
	const rate, size, keys = 50, 10, 60 // 20ms between permits
	interval := time.Second / rate
	reg, _ := setup(t, nil)
	t0 := time.Now() // the limiter's permits are spaced from its creation
	rt := reg.MustRoute(spec("route_query", true, resilience.Settings{RateLimit: rate, MaxWait: 5 * time.Second,
		Budget: 20 * time.Second, MaxAttempts: 3, Backoff: time.Millisecond}))
	var mu sync.Mutex
	var starts []time.Time
	var batches int
	b := resilience.NewBatcher(resilience.BatchOptions{MaxSize: size, MaxWait: time.Millisecond, Route: rt},
		func(ctx context.Context, ks []string) (map[string]string, error) {
			if len(ks) > size {
				t.Errorf("batch of %d keys, MaxSize %d", len(ks), size)
			}
			mu.Lock()
			batches++
			fail := batches%4 == 0 // every fourth batch fails its first attempt: a retry
			mu.Unlock()
			return resilience.Do(ctx, rt, resilience.Call{}, func(ctx context.Context, a *resilience.Attempt) (map[string]string, error) {
				mu.Lock()
				starts = append(starts, time.Now())
				mu.Unlock()
				if fail && a.Number() == 1 {
					return nil, errors.New("connection reset")
				}
				out := map[string]string{}
				for _, k := range ks {
					out[k] = "v" + k
				}
				return out, nil
			})
		})
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i%30) * time.Millisecond) // two keys a millisecond, beyond the quota
			k := strconv.Itoa(i)
			if v, err := b.Get(context.Background(), k); err != nil || v != "v"+k {
				t.Errorf("Get(%s) = %q, %v", k, v, err)
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	// Unpaced, a batch would leave every millisecond (MaxWait) and queue for its permit.
	if batches < keys/size || batches > keys/size+2 || len(starts) <= batches {
		t.Fatalf("%d batches, %d attempts for %d keys of at most %d: want full batches, paced", batches, len(starts), keys, size)
	}
	for i, s := range starts {
		if earliest := t0.Add(time.Duration(i) * interval); s.Before(earliest) {
			t.Fatalf("attempt %d started %v after the route was built, before its permit at %v: over the quota", i, s.Sub(t0), earliest.Sub(t0))
		}
	}
}

func TestErrorTextIsMasked(t *testing.T) {
	t.Parallel()
	reg, _ := setup(t, nil)
	rt := reg.MustRoute(spec("lookup", true, resilience.Settings{MaxAttempts: 1}))
	_, err := resilience.Do(context.Background(), rt, resilience.Call{}, func(context.Context, *resilience.Attempt) (int, error) {
		return 0, bus.Permanent(errors.New("no customer with phone " + mobile))
	})
	if err == nil || pii.Contains(err.Error()) || !strings.Contains(err.Error(), "138****8000") {
		t.Fatalf("error text %q", err)
	}
}
