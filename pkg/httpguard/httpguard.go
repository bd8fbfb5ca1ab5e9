// Package httpguard holds the abuse limits every public HTTP entry of omnibus shares: a token
// bucket per key (a client address, a connector and address, a desk token) with bounded memory
// (Limiter), the client address of a request behind explicitly trusted proxies (Proxies), the
// 429 and 413 answers with a one-line reason, and the rejections counted on /metrics as
// omnibus_http_rejected_total{entry, reason}.
//
// The server-wide limits — slow-loris timeouts and the body cap every request gets — are set by
// pkg/service (Serve), which every process serves through.
package httpguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"

	"github.com/omnibus-dev/omnibus/pkg/webhook"
)

// ErrInvalidRate is wrapped by ParseRate for a value that is not "N/s", "N/m", "N/h" or "off".
var ErrInvalidRate = errors.New("invalid rate")

// Reasons counted on omnibus_http_rejected_total.
const (
	ReasonRateLimited = "rate_limited"
	ReasonTooLarge    = "too_large"
	ReasonTimeout     = "timeout"
)

// Rate is a sustained rate with a burst. The zero Rate is off: nothing is limited.
type Rate struct {
	Every rate.Limit // tokens per second; 0 with Burst 0: off
	Burst int
	text  string
}

// Off reports whether r limits nothing.
func (r Rate) Off() bool { return r.Burst == 0 }

// String is the rate as configured ("30/m, burst 10" or "off").
func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	return r.text + ", burst " + strconv.Itoa(r.Burst)
}

// ParseRate reads "N/s", "N/m" or "N/h" (N may be fractional) with burst, or "off" ("" and "0"
// too). A burst
// below 1 is an error unless the rate is off.
func ParseRate(s string, burst int) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "off" || s == "0" {
		return Rate{}, nil
	}
	n, unit, ok := strings.Cut(s, "/")
	var per time.Duration
	switch unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		ok = false
	}
	f, err := strconv.ParseFloat(n, 64)
	if !ok || err != nil || f <= 0 {
		return Rate{}, fmt.Errorf("%w: %q: want N/s, N/m, N/h (e.g. 30/m) or off", ErrInvalidRate, s)
	}
	if burst < 1 {
		return Rate{}, fmt.Errorf("%w: burst must be >= 1, got %d", ErrInvalidRate, burst)
	}
	return Rate{Every: rate.Limit(f / per.Seconds()), Burst: burst, text: s}, nil
}

// MustRate is ParseRate that panics, for constants in tests and tools.
func MustRate(s string, burst int) Rate {
	r, err := ParseRate(s, burst)
	if err != nil {
		panic(err)
	}
	return r
}

// DefaultMaxKeys bounds the buckets a Limiter keeps (some 20 MB at most): past it, idle buckets are swept
// at once, and if every bucket is busy the least recently used ones are dropped.
const DefaultMaxKeys = 100_000

// Limiter is a token bucket per key for one entry (webhook/sms, webchat/visitors, desk/api).
// Buckets that have been idle long enough to be full again are swept, so memory follows the
// keys active in the last minutes, bounded by MaxKeys. A Limiter is safe for concurrent use;
// a nil or off Limiter allows everything.
type Limiter struct {
	entry   string
	rate    Rate
	maxKeys int
	now     func() time.Time
	idle    time.Duration
	counter *Counter

	mu        sync.Mutex
	m         map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	l    *rate.Limiter
	last time.Time
}

// Option configures a Limiter.
type Option func(*Limiter)

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(l *Limiter) { l.now = now } }

// WithMaxKeys bounds the buckets kept (default DefaultMaxKeys).
func WithMaxKeys(n int) Option { return func(l *Limiter) { l.maxKeys = n } }

// WithCounter counts the limiter's rejections on c (default: a counter of the OTel global
// meter provider).
func WithCounter(c *Counter) Option { return func(l *Limiter) { l.counter = c } }

// NewLimiter returns a limiter for entry (the metric's entry label) at r.
func NewLimiter(entry string, r Rate, opts ...Option) *Limiter {
	l := &Limiter{entry: entry, rate: r, maxKeys: DefaultMaxKeys, now: time.Now, m: map[string]*bucket{}}
	for _, o := range opts {
		o(l)
	}
	if l.counter == nil {
		l.counter = NewCounter(nil)
	}
	if !r.Off() {
		// A bucket idle this long is full again: dropping it changes nothing.
		l.idle = time.Duration(float64(r.Burst)/float64(r.Every)*float64(time.Second)) + time.Minute
	}
	return l
}

// Entry returns the entry the limiter counts rejections under.
func (l *Limiter) Entry() string { return l.entry }

// Rate returns the limiter's rate.
func (l *Limiter) Rate() Rate { return l.rate }

// Allow takes a token of key's bucket, or reports how long until one is available.
func (l *Limiter) Allow(key string) (ok bool, retry time.Duration) {
	if l == nil || l.rate.Off() {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[key]
	if b == nil {
		if len(l.m) >= l.maxKeys || now.Sub(l.lastSweep) > time.Minute {
			l.sweepLocked(now)
		}
		b = &bucket{l: rate.NewLimiter(l.rate.Every, l.rate.Burst)}
		l.m[key] = b
	}
	b.last = now
	r := b.l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Keys returns how many buckets the limiter holds.
func (l *Limiter) Keys() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// sweepLocked drops the buckets idle long enough to be full; if the map is still at its bound,
// it drops the least recently used half.
func (l *Limiter) sweepLocked(now time.Time) {
	l.lastSweep = now
	for k, b := range l.m {
		if now.Sub(b.last) > l.idle {
			delete(l.m, k)
		}
	}
	if len(l.m) < l.maxKeys {
		return
	}
	// Every bucket is busy (a flood of distinct keys): drop the older half. The cost is
	// amortised over the maxKeys/2 inserts before the next such sweep.
	lasts := make([]time.Time, 0, len(l.m))
	for _, b := range l.m {
		lasts = append(lasts, b.last)
	}
	cut := median(lasts)
	for k, b := range l.m {
		if !b.last.After(cut) {
			delete(l.m, k)
		}
	}
}

func median(ts []time.Time) time.Time {
	slices.SortFunc(ts, time.Time.Compare) // rare, and bounded by maxKeys
	return ts[len(ts)/2]
}

// Refuse answers 429 with Retry-After (whole seconds, at least 1) and {"error", "reason"}, and
// counts the rejection.
func (l *Limiter) Refuse(w http.ResponseWriter, r *http.Request, retry time.Duration, reason string) {
	l.counter.Add(r.Context(), l.entry, ReasonRateLimited)
	TooMany(w, retry, reason)
}

// Count counts a rejection the caller answers itself (a WebSocket close, an error frame).
func (l *Limiter) Count(ctx context.Context) { l.counter.Add(ctx, l.entry, ReasonRateLimited) }

// Guard lets through the requests whose key (key(r); "" is not limited) has a token and
// refuses the others with Refuse and reason.
func (l *Limiter) Guard(key func(r *http.Request) string, reason string, next http.Handler) http.Handler {
	if l == nil || l.rate.Off() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k := key(r); k != "" {
			if ok, retry := l.Allow(k); !ok {
				l.Refuse(w, r, retry, reason)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// RetryAfter is the Retry-After value for d: whole seconds, rounded up, at least 1.
func RetryAfter(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

// TooMany answers 429 with Retry-After and reason.
func TooMany(w http.ResponseWriter, retry time.Duration, reason string) {
	w.Header().Set("Retry-After", RetryAfter(retry))
	writeJSON(w, http.StatusTooManyRequests, "Too Many Requests", reason)
}

// Counter counts rejected requests: omnibus_http_rejected_total{entry, reason}.
type Counter struct{ c metric.Int64Counter }

// NewCounter returns the rejection counter of mp (nil: the OTel global).
func NewCounter(mp metric.MeterProvider) *Counter {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	c, _ := mp.Meter("github.com/omnibus-dev/omnibus/pkg/httpguard").Int64Counter("omnibus.http.rejected",
		metric.WithDescription("Requests refused by an abuse limit, by entry (webhook/<connector>, webchat/..., desk/api, audit/api, server) and reason (rate_limited, too_large, timeout)."),
		metric.WithUnit("{request}"))
	return &Counter{c: c}
}

// Add counts one rejection.
func (c *Counter) Add(ctx context.Context, entry, reason string) {
	if c == nil || c.c == nil {
		return
	}
	c.c.Add(ctx, 1, metric.WithAttributes(attribute.String("entry", entry), attribute.String("reason", reason)))
}

func writeJSON(w http.ResponseWriter, status int, errText, reason string) {
	webhook.WriteJSON(w, status, map[string]string{"error": errText, "reason": reason})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
