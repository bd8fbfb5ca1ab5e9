package webchat

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a token bucket per visitor (messages and contact frames), shared by every socket
// and API call of the visitor on this replica. Idle buckets are swept.
type limiter struct {
	every rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*bucket
}

type bucket struct {
	l    *rate.Limiter
	last time.Time
}

func newLimiter(perMinute, burst int) *limiter {
	return &limiter{every: rate.Limit(float64(perMinute) / 60), burst: burst, m: map[string]*bucket{}}
}

// allow takes a token of visitor's bucket, or reports how long until one is available.
func (l *limiter) allow(visitor string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[visitor]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(l.every, l.burst)}
		l.m[visitor] = b
	}
	b.last = now
	r := b.l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// refill is how long an idle bucket takes to be full again: a swept bucket is not a gift.
func (l *limiter) refill() time.Duration {
	return time.Duration(float64(l.burst)/float64(l.every)*float64(time.Second)) + time.Minute
}

func (l *limiter) sweepOnce(now time.Time) {
	idle := l.refill()
	l.mu.Lock()
	defer l.mu.Unlock()
	for v, b := range l.m {
		if now.Sub(b.last) > idle {
			delete(l.m, v)
		}
	}
}

// sweep drops idle buckets every minute until ctx ends.
func (l *limiter) sweep(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			l.sweepOnce(now)
		}
	}
}
