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
// publish. The delete
// commits without waiting for its WAL flush: losing it in a crash only republishes rows, which
// JetStream drops as duplicates.
type Relay struct {
	pool  *pgxpool.Pool
	pub   *bus.Client
	log   *slog.Logger
	wake  chan struct{}
	batch int   // events per flush, about: whole outbox rows are read until this many
	after int64 // the highest seq this relay deleted: a fast flush reads past it
	more  bool  // the last flush left rows it could have read: flush again at once
}

// NewRelay returns a relay.
func NewRelay(pool *pgxpool.Pool, pub *bus.Client, log *slog.Logger) *Relay {
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

// flush relays what read returns: from the head of the outbox when full, else past r.after. It
// returns how many events it relayed.
func (r *Relay) flush(ctx context.Context, full bool) (n int, held bool, err error) {
	var lastDone int64
	var rows, read int // outbox rows and events read
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, relayLock).Scan(&held); err != nil || !held {
			return err
		}
		after := max(0, r.after-lateWindow)
		if full {
			after = 0
		}
		batches, err := r.read(ctx, tx, after)
		if err != nil || len(batches) == 0 {
			return err
		}
		var out []bus.Outgoing
		var from, at []int // the batch of each event of out, and its place in it
		for i, b := range batches {
			for j, e := range b.events {
				ev, err := e.cloudEvent()
				if err != nil {
					return fmt.Errorf("outbox batch %d, event %s: %w", b.seq, e.id, err)
				}
				out = append(out, bus.Outgoing{Subject: e.subject, Event: ev})
				from, at = append(from, i), append(at, j)
			}
		}
		rows, read = len(batches), len(out)
		// Events JetStream acked are done; events the bus refused as invalid are dead-lettered
		// and done, so they never block the ones behind them; events that failed otherwise
		// stay in their batch for the next flush.
		left := make([][]outboxEvent, len(batches))
		var berr *bus.BatchError
		if err := r.pub.PublishBatch(ctx, out); errors.As(err, &berr) {
			for k := range out {
				ferr, failed := berr.Failed[k]
				if !failed {
					continue
				}
				reason := fmt.Sprintf("unifier produced an invalid %s: %v", out[k].Event.Type(), ferr)
				if errors.Is(ferr, schema.ErrInvalid) || errors.Is(ferr, schema.ErrUnknownType) {
					r.log.Error("outbox event dead-lettered", "batch", batches[from[k]].seq, "id", out[k].Event.ID(), "reason", reason)
					if derr := r.pub.DeadLetterEvent(ctx, "unifier", out[k].Subject, out[k].Event, reason); derr == nil {
						continue
					}
				}
				left[from[k]] = append(left[from[k]], batches[from[k]].events[at[k]])
			}
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		var done []int64
		stay := 0
		for i, b := range batches {
			if len(left[i]) == 0 {
				done = append(done, b.seq)
				continue
			}
			stay += len(left[i])
			enc, err := encodeOutboxEvents(left[i])
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE outbox_batches SET n = $2, events = $3 WHERE seq = $1`, b.seq, len(left[i]), enc); err != nil {
				return err
			}
		}
		if stay > 0 {
			err := fmt.Errorf("%d of %d outbox events not published; they stay for the next flush: %w", stay, len(out), berr)
			if stay == len(out) {
				return err
			}
			r.log.Warn("outbox relay", "err", err)
		}
		if len(done) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM outbox_batches WHERE seq = ANY($1)`, done); err != nil {
				return err
			}
			lastDone = done[len(done)-1]
		}
		n = len(out) - stay
		return nil
	})
	if err == nil && lastDone > 0 {
		// done is in seq order: its last is the highest relayed.
		r.after = max(r.after, lastDone)
	}
	r.more = err == nil && (rows == relayMaxRows || read >= r.batch)
	return n, held, err
}

// relayMaxRows bounds the outbox rows of one flush (r.batch bounds their events).
const relayMaxRows = 64

// read reads the outbox rows past seq after, in order, up to relayMaxRows and as many as it takes
// to reach r.batch events, and decodes them. Only the rows it returns are detoasted.
func (r *Relay) read(ctx context.Context, tx pgx.Tx, after int64) ([]relayBatch, error) {
	rows, err := tx.Query(ctx, `SELECT seq, events FROM (
			SELECT seq, events, sum(n) OVER (ORDER BY seq) - n AS before FROM outbox_batches WHERE seq > $1 ORDER BY seq LIMIT $2
		) q WHERE before < $3 ORDER BY seq`, after, relayMaxRows, r.batch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []relayBatch
	for rows.Next() {
		var b relayBatch
		var raw []byte
		if err := rows.Scan(&b.seq, &raw); err != nil {
			return nil, err
		}
		if b.events, err = decodeOutbox(raw); err != nil {
			return nil, fmt.Errorf("outbox batch %d: %w", b.seq, err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
