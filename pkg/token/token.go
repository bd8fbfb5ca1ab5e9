// Package token caches vendor access tokens (WeCom's access_token now; any vendor whose API takes
// an app token fetched with a secret and valid for expires_in seconds).
//
// A Cache holds one token per key (a corp id, an app id). Get returns the cached token while it is
// fresh; once a token has lived past its refresh point (by default 80% of its lifetime, or 5
// minutes before expiry if that comes first), Get still returns it at once and refreshes it in the
// background, so callers never wait for a refresh while the old token is still valid. A token is
// never returned at or after its expiry: then Get waits for a fetch. However many goroutines ask
// for a key at once, at most one fetch per key is in flight (a singleflight), and a caller whose
// context ends stops waiting without cancelling the fetch the others wait for.
//
// When the vendor rejects a token before its expiry (WeCom 40014 invalid, 42001 expired, 40001),
// call Reject(key, value) (or Invalidate(key)) and Get again: the next Get fetches a new one.
// Reject names the rejected value, so a late rejection of an old token does not throw away the
// token that already replaced it.
//
// Errors are not cached: the next Get after a failed fetch tries again (a failed background
// refresh is retried no sooner than the retry interval, while the old token stays in use).
// A Cache is safe for concurrent use.
package token

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Token is what a Fetcher returns: the token and how long it is valid from when the fetch began.
type Token struct {
	Value string
	TTL   time.Duration
}

// Fetcher gets a new token for key from the vendor. ctx carries the fetch timeout.
type Fetcher func(ctx context.Context, key string) (Token, error)

// Sentinels.
var (
	// ErrInvalidOption is wrapped by New for a bad option.
	ErrInvalidOption = errors.New("invalid token cache option")
	// ErrInvalidToken is wrapped when a Fetcher returns an empty value or a TTL <= 0.
	ErrInvalidToken = errors.New("fetcher returned an unusable token")
)

type options struct {
	refreshFraction float64
	refreshBefore   time.Duration
	fetchTimeout    time.Duration
	retryInterval   time.Duration
	now             func() time.Time
}

// Option configures a Cache.
type Option func(*options) error

// WithRefreshFraction sets the share of a token's lifetime after which it is refreshed in the
// background (default 0.8). It must be within (0, 1].
func WithRefreshFraction(f float64) Option {
	return func(o *options) error {
		if f <= 0 || f > 1 {
			return fmt.Errorf("%w: refresh fraction must be within (0, 1], got %v", ErrInvalidOption, f)
		}
		o.refreshFraction = f
		return nil
	}
}

// WithRefreshBefore refreshes a token at the latest d before its expiry (default 5m), when that
// comes before the refresh fraction. Tokens living no longer than d use the fraction alone.
func WithRefreshBefore(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("%w: refresh-before must be >= 0, got %s", ErrInvalidOption, d)
		}
		o.refreshBefore = d
		return nil
	}
}

// WithFetchTimeout bounds one fetch (default 10s). The fetch runs detached from any one caller's
// cancellation, bounded by this timeout.
func WithFetchTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: fetch timeout must be > 0, got %s", ErrInvalidOption, d)
		}
		o.fetchTimeout = d
		return nil
	}
}

// WithRetryInterval sets how long after a failed background refresh the next one may start
// (default 5s). Callers that need a token because there is no valid one always fetch at once.
func WithRetryInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("%w: retry interval must be >= 0, got %s", ErrInvalidOption, d)
		}
		o.retryInterval = d
		return nil
	}
}

// WithClock sets the clock (default time.Now); tests move time without sleeping.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidOption)
		}
		o.now = now
		return nil
	}
}

// Cache is an access-token cache keyed by string.
type Cache struct {
	fetch Fetcher
	opts  options

	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	value      string
	refreshAt  time.Time
	expiresAt  time.Time
	inflight   *call
	retryAfter time.Time // no background refresh before this (after a failed one)
}

type call struct {
	done  chan struct{}
	value string
	err   error
}

// New returns a Cache that gets tokens with fetch.
func New(fetch Fetcher, opts ...Option) (*Cache, error) {
	if fetch == nil {
		return nil, fmt.Errorf("%w: nil fetcher", ErrInvalidOption)
	}
	o := options{refreshFraction: 0.8, refreshBefore: 5 * time.Minute, fetchTimeout: 10 * time.Second,
		retryInterval: 5 * time.Second, now: time.Now}
	for _, fn := range opts {
		if err := fn(&o); err != nil {
			return nil, err
		}
	}
	return &Cache{fetch: fetch, opts: o, entries: map[string]*entry{}}, nil
}

// Get returns a valid token for key: the cached one while it has not expired (starting a
// background refresh once it is past its refresh point), else a fresh one, waiting for the one
// fetch in flight for key. It returns ctx.Err() when ctx ends first, and the fetch error
// (wrapped) when the fetch fails.
func (c *Cache) Get(ctx context.Context, key string) (string, error) {
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		e = &entry{}
		c.entries[key] = e
	}
	now := c.opts.now()
	if e.value != "" && now.Before(e.expiresAt) {
		if !now.Before(e.refreshAt) && e.inflight == nil && !now.Before(e.retryAfter) {
			c.start(ctx, key, e)
		}
		v := e.value
		c.mu.Unlock()
		return v, nil
	}
	cl := e.inflight
	if cl == nil {
		cl = c.start(ctx, key, e)
	}
	c.mu.Unlock()
	select {
	case <-cl.done:
		return cl.value, cl.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// start begins the fetch of key; c.mu is held.
func (c *Cache) start(ctx context.Context, key string, e *entry) *call {
	cl := &call{done: make(chan struct{})}
	e.inflight = cl
	// The fetch serves every waiter: it keeps ctx's values (trace context) but not its
	// cancellation, and is bounded by the fetch timeout instead.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.fetchTimeout)
	go func() {
		defer cancel()
		began := c.opts.now()
		tok, err := c.safeFetch(fctx, key)
		if err == nil && (tok.Value == "" || tok.TTL <= 0) {
			err = fmt.Errorf("%w: value empty=%t, ttl %s", ErrInvalidToken, tok.Value == "", tok.TTL)
		}
		c.mu.Lock()
		e.inflight = nil
		if err != nil {
			cl.err = fmt.Errorf("token %q: fetch: %w", key, err)
			e.retryAfter = c.opts.now().Add(c.opts.retryInterval)
		} else {
			cl.value = tok.Value
			e.value = tok.Value
			e.expiresAt = began.Add(tok.TTL)
			e.refreshAt = began.Add(c.refreshOffset(tok.TTL))
			e.retryAfter = time.Time{}
		}
		c.mu.Unlock()
		close(cl.done)
	}()
	return cl
}

func (c *Cache) safeFetch(ctx context.Context, key string) (tok Token, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("fetcher panicked: %v", r)
		}
	}()
	return c.fetch(ctx, key)
}

// refreshOffset is when, after the fetch began, a token of lifetime ttl is refreshed.
func (c *Cache) refreshOffset(ttl time.Duration) time.Duration {
	off := time.Duration(float64(ttl) * c.opts.refreshFraction)
	if early := ttl - c.opts.refreshBefore; early > 0 && early < off {
		off = early
	}
	return off
}

// Put caches tok for key as if a fetch begun at began had returned it (a token the connector
// got another way, such as its start check), unless a fetch of key is in flight (its answer is
// as fresh). It fails with ErrInvalidToken for an empty value or a TTL <= 0.
func (c *Cache) Put(key string, tok Token, began time.Time) error {
	if tok.Value == "" || tok.TTL <= 0 {
		return fmt.Errorf("%w: value empty=%t, ttl %s", ErrInvalidToken, tok.Value == "", tok.TTL)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil {
		e = &entry{}
		c.entries[key] = e
	}
	if e.inflight != nil {
		return nil
	}
	e.value, e.expiresAt, e.refreshAt, e.retryAfter = tok.Value, began.Add(tok.TTL), began.Add(c.refreshOffset(tok.TTL)), time.Time{}
	return nil
}

// Invalidate drops the cached token of key, whatever it is; the next Get fetches a new one.
func (c *Cache) Invalidate(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil {
		e.value = ""
	}
}

// Reject drops the cached token of key if it is still value (the one the vendor just rejected),
// and reports whether it did. A token that already replaced value is kept.
func (c *Cache) Reject(key, value string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil && e.value != "" && e.value == value {
		e.value = ""
		return true
	}
	return false
}
