package wechatkf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/wire/wecom"
)

// puller moves messages from WeCom's kf/sync_msg queue onto the bus, one kf account at a time.
//
// The cursor of each kf account lives in a JetStream KV bucket (key cursor.<open_kfid>). A pull
// publishes a page and waits for JetStream's acks before it advances the cursor, with a
// compare-and-set on the key's revision. So a crash or stop anywhere leaves the cursor at or
// before the first unpublished message: the next pull (the next callback, or the catch-up every
// instance runs at start) fetches it again, and the event id wechatkf:<msgid>, sent as
// Nats-Msg-Id, makes JetStream drop what was already stored within its duplicate window (2 min
// by default); past the window the unifier's event-id keys drop it. The CAS keeps two instances
// (replicas, or an old and a new one) from moving a cursor backwards.
type puller struct {
	api     *client
	kv      jetstream.KeyValue
	norm    *normalizer
	publish func(ctx context.Context, batch ...bus.Outgoing) error
	limit   int
	log     *slog.Logger
	now     func() time.Time

	mu    sync.Mutex
	locks map[string]chan struct{} // one pull per kf account at a time (in this process)
	jobs  map[string]*job          // kf accounts the background loop owes a pull
	wake  chan struct{}
}

type job struct {
	token     string    // the latest callback Token, "" if none (or used up)
	notBefore time.Time // retry backoff
	failures  int
}

func newPuller(api *client, kv jetstream.KeyValue, norm *normalizer, publish func(context.Context, ...bus.Outgoing) error, limit int, log *slog.Logger) *puller {
	return &puller{api: api, kv: kv, norm: norm, publish: publish, limit: limit, log: log, now: time.Now,
		locks: map[string]chan struct{}{}, jobs: map[string]*job{}, wake: make(chan struct{}, 1)}
}

const cursorPrefix = "cursor."

// lock takes the kf account's pull lock, waiting at most wait (0: until ctx ends).
func (p *puller) lock(ctx context.Context, kfID string, wait time.Duration) (func(), bool) {
	p.mu.Lock()
	l := p.locks[kfID]
	if l == nil {
		l = make(chan struct{}, 1)
		p.locks[kfID] = l
	}
	p.mu.Unlock()
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case l <- struct{}{}:
		return func() { <-l }, true
	case <-timeout:
		return nil, false
	case <-ctx.Done():
		return nil, false
	}
}

func (p *puller) load(ctx context.Context, kfID string) (string, uint64, error) {
	e, err := p.kv.Get(ctx, cursorPrefix+kfID)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return "", 0, nil
	case err != nil:
		return "", 0, fmt.Errorf("load cursor of %s: %w", kfID, err)
	}
	return string(e.Value()), e.Revision(), nil
}

// store advances the cursor if it is still at revision rev (0: absent).
func (p *puller) store(ctx context.Context, kfID, cursor string, rev uint64) (uint64, error) {
	if rev == 0 {
		return p.kv.Create(ctx, cursorPrefix+kfID, []byte(cursor))
	}
	return p.kv.Update(ctx, cursorPrefix+kfID, []byte(cursor), rev)
}

// drain pulls kf account kfID from its persisted cursor until sync_msg reports has_more 0, or,
// with a budget > 0, until the budget is spent; more reports that messages may remain. msgToken
// is the callback's Token ("" pulls without one: allowed, at a lower rate limit). The caller
// holds the account's lock.
func (p *puller) drain(ctx context.Context, kfID, msgToken string, budget time.Duration) (published int, more bool, err error) {
	var deadline time.Time
	if budget > 0 {
		deadline = p.now().Add(budget)
	}
	cursor, rev, err := p.load(ctx, kfID)
	if err != nil {
		return 0, true, err
	}
	stalls := 0
	for {
		resp, err := p.api.syncMsg(ctx, wecom.SyncMsgRequest{Cursor: cursor, Token: msgToken, Limit: p.limit, OpenKfID: kfID})
		if msgToken != "" && errors.Is(err, wecom.ErrInvalidMsgToken) {
			msgToken = "" // expired (10 min) or already used up: pull without it
			continue
		}
		if err != nil {
			return published, true, err
		}
		//nolint:contextcheck // events only decodes; the warnings it logs need no deadline
		if batch := p.norm.events(kfID, resp.MsgList); len(batch) > 0 {
			if err := p.publish(ctx, batch...); err != nil {
				return published, true, fmt.Errorf("publish %d events of %s: %w", len(batch), kfID, err)
			}
			published += len(batch)
		}
		switch {
		case resp.NextCursor != "" && resp.NextCursor != cursor:
			rev2, err := p.store(ctx, kfID, resp.NextCursor, rev)
			if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				// Another instance moved the cursor meanwhile: go on from where it is.
				p.log.DebugContext(ctx, "cursor moved by another instance", "open_kfid", kfID)
				if cursor, rev, err = p.load(ctx, kfID); err != nil {
					return published, true, err
				}
				continue
			}
			if err != nil {
				return published, true, fmt.Errorf("store cursor of %s: %w", kfID, err)
			}
			cursor, rev, stalls = resp.NextCursor, rev2, 0
		case resp.HasMore == 1:
			if stalls++; stalls >= 10 {
				return published, true, fmt.Errorf("sync_msg of %s said has_more 10 times without a new cursor", kfID)
			}
		}
		if resp.HasMore == 0 {
			return published, false, nil
		}
		if !deadline.IsZero() && !p.now().Before(deadline) {
			return published, true, nil
		}
	}
}

// schedule asks the background loop to pull kfID (with token, if the job has none newer).
func (p *puller) schedule(kfID, token string) {
	p.mu.Lock()
	j := p.jobs[kfID]
	if j == nil {
		j = &job{}
		p.jobs[kfID] = j
	}
	if token != "" {
		j.token = token
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// due takes the jobs whose backoff has passed; next is the earliest remaining backoff.
func (p *puller) due() (map[string]*job, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	out := map[string]*job{}
	var next time.Time
	for kf, j := range p.jobs {
		if !now.Before(j.notBefore) {
			out[kf] = j
			delete(p.jobs, kf)
		} else if next.IsZero() || j.notBefore.Before(next) {
			next = j.notBefore
		}
	}
	return out, next
}

// retry puts a failed job back with exponential backoff (1s doubling, at most 1 min), unless a
// newer job for the account came in meanwhile (it runs at once and carries the newer token).
func (p *puller) retry(kfID string, j *job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.jobs[kfID]; ok {
		return
	}
	j.failures++
	j.notBefore = p.now().Add(min(time.Second<<min(j.failures-1, 6), time.Minute))
	p.jobs[kfID] = j
}

// run is the background loop: at start it catches up every kf account it has a cursor for (and
// the configured one), then pulls whatever callbacks left unfinished, retrying failures.
func (p *puller) run(ctx context.Context, known ...string) error {
	if err := p.catchUp(ctx, known...); err != nil {
		p.log.WarnContext(ctx, "could not list the kf accounts to catch up", "err", err)
	}
	for {
		jobs, next := p.due()
		for kfID, j := range jobs {
			unlock, ok := p.lock(ctx, kfID, 0)
			if !ok {
				return nil
			}
			n, _, err := p.drain(ctx, kfID, j.token, 0) // no budget: until has_more is 0
			unlock()
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				p.log.ErrorContext(ctx, "kf/sync_msg pull failed; will retry", "open_kfid", kfID, "published", n, "err", err)
				j.token = ""
				p.retry(kfID, j)
			case n > 0:
				p.log.DebugContext(ctx, "pulled in the background", "open_kfid", kfID, "published", n)
			}
		}
		if len(jobs) > 0 {
			continue
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if !next.IsZero() {
			timer = time.NewTimer(max(next.Sub(p.now()), time.Millisecond))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
		case <-p.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// catchUp schedules every kf account with a stored cursor, and known ones.
func (p *puller) catchUp(ctx context.Context, known ...string) error {
	for _, kf := range known {
		if kf != "" {
			p.schedule(kf, "")
		}
	}
	lister, err := p.kv.ListKeysFiltered(ctx, cursorPrefix+">")
	if err != nil {
		return err
	}
	defer func() { _ = lister.Stop() }()
	for key := range lister.Keys() {
		if kf, ok := strings.CutPrefix(key, cursorPrefix); ok && kfIDPattern.MatchString(kf) {
			p.schedule(kf, "")
		}
	}
	return nil
}
