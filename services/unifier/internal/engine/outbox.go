package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
)

// Source is the CloudEvents source of everything the unifier emits.
const Source = "/services/unifier"

// Relay publishes outbox rows to NATS after their transaction committed and deletes them once
// JetStream acked them. One relay at a time flushes (a transaction-scoped advisory lock), so desk
// events leave in outbox order whichever replica relays them, and rows need no row locks; a
// replica that finds the lock taken tries again shortly. A crash between the publish and the
// delete republishes the same ids, which JetStream drops as duplicates (Nats-Msg-Id) — the desk
// event is neither lost nor doubled.
//
// The outbox is a queue table: its head is a run of deleted rows until vacuum removes them, and
// an ORDER BY seq scan from the head reads them all. So a flush after a commit (Wake) reads only
// from lateWindow seqs before the last row this relay relayed: concurrent transactions take
// their seqs in one order and commit in another, and a row committed late lands behind rows
// already relayed (only ever rows of other customers: one customer's transactions are serialised
// by its row locks). The periodic flush reads from the head and picks up what a fast one can
// still miss — a row later than the window, rows another replica left, rows that failed to
// publish. The delete commits without waiting for its WAL flush: losing it in a crash only
// republishes rows, which JetStream drops as duplicates.
type Relay struct {
	pool  *pgxpool.Pool
	pub   RelayBus
	log   *slog.Logger
	wake  chan struct{}
	batch int   // events per flush, about: whole outbox rows are read until this many
	after int64 // the highest seq this relay deleted: a fast flush reads past it
	more  bool  // the last flush left rows it could have read: flush again at once
	// sent holds the ids of events this relay published whose rows' removal has not
	// committed (at most maxUncommitted): they are removed, not published, when read again.
	sent map[string]struct{}
	// afterPublish, when set (by tests), runs between the publish and the commit of the delete,
	// with the pid of the relay's Postgres backend.
	afterPublish func(pid uint32)
}

// maxUncommitted bounds the relay's memory of published events whose removal failed to commit:
// past it, it forgets them (they are republished, and JetStream drops those still within its
// duplicate window).
const maxUncommitted = 100_000

// RelayBus is what a Relay needs of the bus: publishing the rows, and dead-lettering an event
// its stream refuses for good (bus.DeadLetters' DeadLetterEvent). *bus.Client is one.
type RelayBus interface {
	bus.Publisher
	DeadLetterEvent(ctx context.Context, service, subject string, e event.Event, reason string) error
}

// NewRelay returns a relay.
func NewRelay(pool *pgxpool.Pool, pub RelayBus, log *slog.Logger) *Relay {
	return &Relay{pool: pool, pub: pub, log: log, wake: make(chan struct{}, 1), batch: 1000}
}

// Wake asks the relay to flush now (called after a commit that wrote outbox rows).
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run flushes until ctx is cancelled, then flushes once more.
func (r *Relay) Run(ctx context.Context) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	failures := 0
	full := true // the first flush after start reads the whole outbox
	for {
		_, held, err := r.flush(context.WithoutCancel(ctx), full)
		full = false
		switch {
		case err == nil && !held:
			// Another replica is relaying, maybe not our latest rows: look again soon.
			select {
			case <-ctx.Done():
				_, err := r.Flush(context.WithoutCancel(ctx))
				return err
			case <-time.After(20 * time.Millisecond):
			}
			continue
		case err != nil:
			failures++
			r.log.Warn("outbox relay failed; retrying", "err", err, "failures", failures)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(min(time.Duration(failures)*200*time.Millisecond, 5*time.Second)):
			}
			continue
		case r.more:
			failures = 0
			continue // more waiting
		}
		failures = 0
		select {
		case <-ctx.Done():
			_, err := r.Flush(context.WithoutCancel(ctx))
			return err
		case <-r.wake:
		case <-tick.C:
			full = true
		}
	}
}

// lateWindow is how far behind the last relayed seq a flush after a commit looks for batches
// committed late: the batches other transactions insert between a transaction's insert and its
// commit (one per transaction, and a replica runs a handful at a time: it stays well within it).
const lateWindow = 1000

// relayLock is the advisory lock key of the relay ("omnibus" and 1).
const relayLock = int64(0x6f6d6e6962757301)

// Flush publishes and deletes up to one flush's worth of outbox batches; it returns how many
// events it relayed (0 when another replica's relay holds the outbox).
func (r *Relay) Flush(ctx context.Context) (int, error) {
	n, _, err := r.flush(ctx, true)
	return n, err
}

// relayBatch is an outbox row as the relay reads it.
type relayBatch struct {
	seq    int64
	events []outboxEvent
}

// flush relays what the outbox holds past r.after (from its head when full), up to
// relayMaxRows rows and about r.batch events. It returns how many events it relayed. A flush
// is two round trips to Postgres: one takes the relay lock and reads, the other deletes what
// JetStream acked and commits.
func (r *Relay) flush(ctx context.Context, full bool) (n int, held bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return 0, false, err
	}
	defer conn.Release()
	open := false
	defer func() {
		if open && err != nil {
			// A connection left in a transaction is closed on release, so a failed rollback
			// leaves nothing behind.
			_, _ = conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
		}
	}()
	after := max(0, r.after-lateWindow)
	if full {
		after = 0
	}
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(sqlRelayRead, relayLock, after, relayMaxRows, r.batch)
	br := conn.SendBatch(ctx, b)
	var batches []relayBatch
	var events int
	if _, err = br.Exec(); err == nil {
		open = true
		held, batches, events, err = readBatches(br)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, false, err
	}
	var lastDone int64
	end := &pgx.Batch{}
	if len(batches) > 0 {
		var done []int64
		var published []string
		defer func() {
			if err == nil {
				for _, b := range batches {
					for _, e := range b.events {
						delete(r.sent, e.id)
					}
				}
				return
			}
			// The rows stay in the outbox: remember what of them is already in JetStream.
			if len(r.sent)+len(published) > maxUncommitted {
				r.log.Warn("outbox relay: too many published events whose removal failed; forgetting them (they may be published again)", "events", len(r.sent))
				clear(r.sent)
			}
			if r.sent == nil {
				r.sent = make(map[string]struct{}, len(published))
			}
			for _, id := range published {
				r.sent[id] = struct{}{}
			}
		}()
		if n, done, published, err = r.publish(ctx, batches, end); err != nil {
			return 0, true, err
		}
		if r.afterPublish != nil {
			r.afterPublish(conn.Conn().PgConn().PID())
		}
		if len(done) > 0 {
			end.Queue(`DELETE FROM outbox_batches WHERE seq = ANY($1)`, done)
			lastDone = done[len(done)-1]
		}
		// Losing the delete in a crash only republishes rows, which JetStream drops as duplicates.
		end.Queue(`SET LOCAL synchronous_commit = off`)
	}
	end.Queue(`COMMIT`)
	if err = conn.SendBatch(ctx, end).Close(); err != nil {
		return 0, held, err
	}
	open = false
	if lastDone > 0 {
		// done is in seq order: its last is the highest relayed.
		r.after = max(r.after, lastDone)
	}
	r.more = len(batches) == relayMaxRows || events >= r.batch
	return n, held, nil
}

// sqlRelayRead takes the relay lock ($1) and, only if it got it, reads the outbox rows past seq
// $2, in order, up to $3 rows and as many as it takes to reach $4 events. It returns the lock's
// outcome and the rows (none: one row with nulls). Only the rows it returns are detoasted.
const sqlRelayRead = `WITH l AS MATERIALIZED (SELECT pg_try_advisory_xact_lock($1) AS held)
	SELECT l.held, b.seq, b.events FROM l LEFT JOIN LATERAL (
		SELECT seq, events FROM (
			SELECT seq, events, sum(n) OVER (ORDER BY seq) - n AS before FROM outbox_batches WHERE seq > $2 ORDER BY seq LIMIT $3
		) q WHERE before < $4 AND l.held
	) b ON true ORDER BY b.seq`

// readBatches reads sqlRelayRead's result: the lock's outcome, the batches decoded and how many
// events they hold.
func readBatches(br pgx.BatchResults) (held bool, batches []relayBatch, events int, err error) {
	rows, err := br.Query()
	if err != nil {
		return false, nil, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var seq *int64
		var raw []byte
		if err := rows.Scan(&held, &seq, &raw); err != nil {
			return false, nil, 0, err
		}
		if seq == nil {
			continue
		}
		evs, err := decodeOutbox(raw)
		if err != nil {
			return held, nil, 0, fmt.Errorf("outbox batch %d: %w", *seq, err)
		}
		batches = append(batches, relayBatch{seq: *seq, events: evs})
		events += len(evs)
	}
	return held, batches, events, rows.Err()
}

// publish publishes the events of batches and returns how many are now in JetStream, the seqs of
// the batches done and the ids of the events it published or dead-lettered. Events the bus refused as invalid are
// dead-lettered and done, so they never block the ones behind them; a batch with events that
// failed otherwise is rewritten (queued on end) with just those, for the next flush. Events in
// r.sent were published by an earlier flush whose commit failed: they count as published.
func (r *Relay) publish(ctx context.Context, batches []relayBatch, end *pgx.Batch) (n int, done []int64, published []string, err error) {
	var out []bus.Outgoing
	var from, at []int // the batch of each event of out, and its place in it
	already := 0
	for i, b := range batches {
		for j, e := range b.events {
			if _, ok := r.sent[e.id]; ok {
				already++
				continue
			}
			ev, err := e.cloudEvent()
			if err != nil {
				return 0, nil, nil, fmt.Errorf("outbox batch %d, event %s: %w", b.seq, e.id, err)
			}
			out = append(out, bus.Outgoing{Subject: e.subject, Event: ev})
			from, at = append(from, i), append(at, j)
		}
	}
	left := make([][]outboxEvent, len(batches))
	stays := map[int]bool{} // the events of out that stay in the outbox
	var berr *bus.BatchError
	if err := r.pub.PublishBatch(ctx, out); errors.As(err, &berr) {
		for k := range out {
			ferr, failed := berr.Failed[k]
			if !failed {
				continue
			}
			if errors.Is(ferr, schema.ErrInvalid) || errors.Is(ferr, schema.ErrUnknownType) {
				reason := fmt.Sprintf("unifier produced an invalid %s: %v", out[k].Event.Type(), ferr)
				r.log.Error("outbox event dead-lettered", "batch", batches[from[k]].seq, "id", out[k].Event.ID(), "reason", reason)
				if derr := r.pub.DeadLetterEvent(ctx, "unifier", out[k].Subject, out[k].Event, reason); derr == nil {
					continue
				}
			}
			left[from[k]] = append(left[from[k]], batches[from[k]].events[at[k]])
			stays[k] = true
		}
	} else if err != nil {
		return 0, nil, nil, err
	}
	for k := range out {
		if !stays[k] {
			published = append(published, out[k].Event.ID())
		}
	}
	stay := 0
	for i, b := range batches {
		if len(left[i]) == 0 {
			done = append(done, b.seq)
			continue
		}
		stay += len(left[i])
		enc, err := encodeOutboxEvents(left[i])
		if err != nil {
			return 0, nil, published, err
		}
		end.Queue(`UPDATE outbox_batches SET n = $2, events = $3 WHERE seq = $1`, b.seq, len(left[i]), enc)
	}
	if stay > 0 {
		err := fmt.Errorf("%d of %d outbox events not published; they stay for the next flush: %w", stay, len(out), berr)
		if stay == len(out) && already == 0 {
			return 0, nil, published, err
		}
		r.log.Warn("outbox relay", "err", err)
	}
	return already + len(out) - stay, done, published, nil
}

// relayMaxRows bounds the outbox rows of one flush (r.batch bounds their events).
const relayMaxRows = 64
