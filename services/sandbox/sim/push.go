package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Group runs a simulator's background work (delayed pushes, re-pushes) and stops it on Close.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// NewGroup returns a running group.
func NewGroup() *Group {
	ctx, cancel := context.WithCancel(context.Background())
	return &Group{ctx: ctx, cancel: cancel}
}

// Go runs f unless the group is closed; f's context ends on Close.
func (g *Group) Go(f func(ctx context.Context)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f(g.ctx)
	}()
}

// Close cancels pending work and waits for it.
func (g *Group) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.cancel()
	g.wg.Wait()
}

// Sleep waits d and reports true, or reports false as soon as ctx ends.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// PushOptions configure a Pusher.
type PushOptions struct {
	// Name is the push in log lines (the vendor's name for it: "SmsReport", "status callback").
	Name string
	// URL is the connector's webhook; "" turns the pusher off (Add drops the items).
	URL string
	// Client sends the pushes. Default http.DefaultClient.
	Client *http.Client
	// Delay is how long items are collected before they are pushed together.
	Delay time.Duration
	// Retry are the waits before each re-push of a refused batch; after the last the batch is
	// dropped, as the vendors give up.
	Retry []time.Duration
	// Max is the most items in one push; more are split into several. Default 100.
	Max int
	// Log. Default: discarded.
	Log *slog.Logger
}

// Pusher is a vendor's HTTP batch push (delivery receipts, status callbacks): items added within
// Delay are POSTed as one JSON array of at most Max items; a non-2xx answer or a transport error
// re-pushes the same batch after each wait of Retry, after which the batch is dropped. Its work
// runs in a Group and stops when the group is closed.
type Pusher[T any] struct {
	o PushOptions
	g *Group

	mu      sync.Mutex
	pending []T
	armed   bool
}

// NewPusher returns a pusher whose pushes run in g.
func NewPusher[T any](g *Group, o PushOptions) *Pusher[T] {
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.Max <= 0 {
		o.Max = 100
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Pusher[T]{o: o, g: g}
}

// Add queues items for the next push, which leaves Delay after the first item queued since the
// last one left.
func (p *Pusher[T]) Add(items ...T) {
	if p.o.URL == "" || len(items) == 0 {
		return
	}
	p.mu.Lock()
	p.pending = append(p.pending, items...)
	arm := !p.armed
	p.armed = true
	p.mu.Unlock()
	if arm {
		p.g.Go(p.flushAfterDelay)
	}
}

func (p *Pusher[T]) flushAfterDelay(ctx context.Context) {
	ok := Sleep(ctx, p.o.Delay)
	p.mu.Lock()
	items := p.pending
	p.pending, p.armed = nil, false
	p.mu.Unlock()
	if !ok {
		return
	}
	for len(items) > 0 {
		n := min(len(items), p.o.Max)
		batch := items[:n:n]
		items = items[n:]
		p.g.Go(func(ctx context.Context) { p.deliver(ctx, batch) })
	}
}

func (p *Pusher[T]) deliver(ctx context.Context, batch []T) {
	body, err := json.Marshal(batch)
	if err != nil {
		p.o.Log.Error("sandbox push: marshal", "push", p.o.Name, "err", err)
		return
	}
	for attempt := 0; ; attempt++ {
		err := PostJSON(ctx, p.o.Client, p.o.URL, body)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		if attempt >= len(p.o.Retry) {
			p.o.Log.Warn("sandbox push dropped after retries", "push", p.o.Name, "items", len(batch), "err", err)
			return
		}
		p.o.Log.Info("sandbox push failed; will re-push", "push", p.o.Name, "in", p.o.Retry[attempt], "err", err)
		if !Sleep(ctx, p.o.Retry[attempt]) {
			return
		}
	}
}

// PostJSON sends body as JSON to url and returns nil on a 2xx answer, else an error with the
// answer's status and (the start of) its body.
func PostJSON(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("connector answered %d: %s", resp.StatusCode, bytes.TrimSpace(answer))
	}
	return nil
}
