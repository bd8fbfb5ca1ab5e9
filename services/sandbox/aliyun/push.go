package aliyun

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

// group runs the simulator's background work (delayed pushes, re-pushes) and stops it on Close.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func newGroup() *group {
	ctx, cancel := context.WithCancel(context.Background())
	return &group{ctx: ctx, cancel: cancel}
}

// Go runs f unless the group is closed.
func (g *group) Go(f func(ctx context.Context)) {
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
func (g *group) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.cancel()
	g.wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// pusher is Aliyun's HTTP batch push: items are collected for delay and POSTed as one JSON
// array (at most max items); a non-2xx answer or a transport error re-pushes the same batch
// after each wait of retry, after which the batch is dropped (as Aliyun gives up).
type pusher[T any] struct {
	name   string
	url    string
	client *http.Client
	delay  time.Duration
	retry  []time.Duration
	max    int
	log    *slog.Logger
	g      *group

	mu      sync.Mutex
	pending []T
	armed   bool
}

func (p *pusher[T]) add(items ...T) {
	if p.url == "" || len(items) == 0 {
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

func (p *pusher[T]) flushAfterDelay(ctx context.Context) {
	ok := sleep(ctx, p.delay)
	p.mu.Lock()
	items := p.pending
	p.pending, p.armed = nil, false
	p.mu.Unlock()
	if !ok {
		return
	}
	for len(items) > 0 {
		n := min(len(items), p.max)
		batch := items[:n:n]
		items = items[n:]
		p.g.Go(func(ctx context.Context) { p.deliver(ctx, batch) })
	}
}

func (p *pusher[T]) deliver(ctx context.Context, batch []T) {
	body, err := json.Marshal(batch)
	if err != nil {
		p.log.Error("sandbox push: marshal", "push", p.name, "err", err)
		return
	}
	for attempt := 0; ; attempt++ {
		err := post(ctx, p.client, p.url, body)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		if attempt >= len(p.retry) {
			p.log.Warn("sandbox push dropped after retries", "push", p.name, "items", len(batch), "err", err)
			return
		}
		p.log.Info("sandbox push failed; will re-push", "push", p.name, "in", p.retry[attempt], "err", err)
		if !sleep(ctx, p.retry[attempt]) {
			return
		}
	}
}

// post sends body as JSON and returns nil on a 2xx answer, else an error with the answer.
func post(ctx context.Context, client *http.Client, url string, body []byte) error {
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
