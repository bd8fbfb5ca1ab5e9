package bus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Dependency is something a handler needs besides its message — its database, a vendor route —
// with a cheap check of whether it serves. A consumer runs its dependencies' checks when a
// handler fails, to tell a dependency's outage from the message's own fault (see
// ConsumerConfig.Dependencies).
type Dependency struct {
	// Name says what it is in logs and metrics ("postgres"). Required.
	Name string
	// Check returns nil when the dependency serves. It runs with a deadline of a few seconds.
	// Required.
	Check func(ctx context.Context) error
}

// pauseBackoff is the wait between checks of a dependency that is down: doubling from the first
// value to the last, which repeats, each with ±20% jitter.
var pauseBackoff = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second}

// dependencyCheckTimeout bounds one run of a Dependency's Check.
const dependencyCheckTimeout = 3 * time.Second

// pauseLease is how long a paused consumer stays paused on the server unless renewed: a process
// that dies while paused leaves its consumer paused this long at most.
const pauseLease = time.Minute

// downDependency reports the dependency that herr shows to be down: a failing check among the
// subscription's dependencies, or herr marked Unavailable. Permanent errors, and
// failures while every dependency serves, are the message's own: "" is returned.
func (s *Subscription) downDependency(ctx context.Context, herr error) (string, error) {
	if herr == nil || IsPermanent(herr) || isClosingUnavailable(herr) {
		return "", nil
	}
	if name, err := s.checkDependencies(ctx); err != nil {
		return name, err
	}
	if IsUnavailable(herr) {
		return "handler", herr
	}
	return "", nil
}

// checkDependencies runs every dependency's check and returns the first that fails.
func (s *Subscription) checkDependencies(ctx context.Context) (string, error) {
	for _, d := range s.cfg.Dependencies {
		cctx, cancel := context.WithTimeout(ctx, dependencyCheckTimeout)
		err := d.Check(cctx)
		cancel()
		if err != nil {
			return d.Name, err
		}
	}
	return "", nil
}

// pause is a consumer holding messages until a dependency serves again: they are kept in
// progress, so JetStream neither redelivers them nor counts a delivery, and the consumer handles
// nothing else meanwhile. The durable consumer is paused on the server too (renewed every
// pauseLease/2), so the messages the client had buffered behind the held ones are not
// redelivered again and again while their ack wait runs out; once resumed they come back once.
type pause struct {
	s       *Subscription
	ctx     context.Context
	name    string
	cause   error
	since   time.Time
	attempt int
	keep    func()
	until   time.Time // the server-side pause lasts until then
}

// pauseFor pauses s over msgs because dependency name failed with cause.
func (s *Subscription) pauseFor(ctx context.Context, msgs []jetstream.Msg, name string, cause error) *pause {
	s.paused.Add(1)
	s.c.tel.paused.Add(ctx, 1, s.pauseAttrs)
	s.c.opts.log.Warn("consumer paused: a dependency is unavailable; its messages wait without counting toward MaxDeliver",
		"consumer", s.cfg.Durable, "stream", s.cfg.Stream, "dependency", name, "err", cause, "held", len(msgs))
	p := &pause{s: s, ctx: ctx, name: name, cause: cause, since: time.Now(), keep: s.keepAlive(msgs)}
	p.renew() //nolint:contextcheck // the server-side pause outlives this batch's ctx: renew uses its own deadline
	return p
}

// renew pauses the consumer on the server for another pauseLease when half the lease is gone.
func (p *pause) renew() {
	now := time.Now()
	if p.until.Sub(now) > pauseLease/2 {
		return
	}
	p.until = now.Add(pauseLease)
	p.s.serverPause(p.until)
}

// serverPause pauses the subscription's durable consumers until t, or resumes them when t is
// zero. A server without consumer pausing (before 2.11) only costs the redeliveries it saves.
func (s *Subscription) serverPause(t time.Time) {
	streams := []string{s.cfg.Stream}
	if s.rcc != nil {
		streams = append(streams, StreamRedrive)
	}
	for _, stream := range streams {
		ctx, cancel := context.WithTimeout(context.Background(), s.c.opts.timeout)
		var err error
		if t.IsZero() {
			_, err = s.c.js.ResumeConsumer(ctx, stream, s.cfg.Durable)
		} else {
			_, err = s.c.js.PauseConsumer(ctx, stream, s.cfg.Durable, t)
		}
		cancel()
		if err != nil {
			s.c.opts.log.Debug("consumer pause on the server failed", "consumer", s.cfg.Durable, "stream", stream, "resume", t.IsZero(), "err", err)
		}
	}
}

// wait sleeps with backoff until the dependencies' checks pass, so the handler can run again.
// It returns false when the subscription closes first.
func (p *pause) wait() bool {
	for {
		t := time.NewTimer(jitter(pauseBackoff[min(p.attempt, len(pauseBackoff)-1)]))
		p.attempt++
		select {
		case <-p.s.closing:
			t.Stop()
			return false
		case <-t.C:
		}
		p.renew()
		name, err := p.s.checkDependencies(p.ctx)
		if err == nil {
			return true
		}
		p.name, p.cause = name, err
	}
}

// still records that the retried handler failed for a dependency again.
func (p *pause) still(name string, cause error) { p.name, p.cause = name, cause }

// end resumes the consumer; herr is the handler's last result.
func (p *pause) end(herr error) {
	p.keep()
	s := p.s
	s.serverPause(time.Time{})
	s.paused.Add(-1)
	s.c.tel.paused.Add(context.Background(), -1, s.pauseAttrs)
	d := time.Since(p.since).Round(time.Millisecond)
	if isClosingUnavailable(herr) {
		s.c.opts.log.Info("consumer closing while paused; held messages go back for redelivery",
			"consumer", s.cfg.Durable, "dependency", p.name, "paused", d)
		return
	}
	s.c.opts.log.Info("consumer resumed: dependency available again", "consumer", s.cfg.Durable,
		"stream", s.cfg.Stream, "dependency", p.name, "paused", d)
}

// keepAlive tells JetStream every AckWait/2 that msgs are still being worked on, so a handler
// that outlasts AckWait (a query waiting on a paused database) or a consumer that holds them
// through an outage does not get them redelivered. The returned func stops it.
func (s *Subscription) keepAlive(msgs []jetstream.Msg) (stop func()) {
	every := s.cfg.AckWait / 2
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	mu.Lock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		for _, m := range msgs {
			_ = m.InProgress()
		}
		t.Reset(every)
	})
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		t.Stop()
	}
}

// Paused reports whether the subscription holds messages until a dependency is back.
func (s *Subscription) Paused() bool { return s.paused.Load() > 0 }

// errClosingUnavailable settles a message held for a dependency when the subscription closes:
// it goes back for redelivery and is never dead-lettered for it.
var errClosingUnavailable = errors.New("subscription closed while a dependency was unavailable")

func isClosingUnavailable(err error) bool { return errors.Is(err, errClosingUnavailable) }

func closingErr(herr error) error { return fmt.Errorf("%w: %w", errClosingUnavailable, herr) }

// jitter returns d ±20%.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration(float64(d)*0.2*(2*rand.Float64()-1))
}
