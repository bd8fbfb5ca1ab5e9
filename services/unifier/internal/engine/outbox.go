package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
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
// publish. The delete
// commits without waiting for its WAL flush: losing it in a crash only republishes rows, which
// JetStream drops as duplicates.
type Relay struct {
	pool  *pgxpool.Pool
	pub   *bus.Client
	log   *slog.Logger
	wake  chan struct{}
	batch int
	after int64 // the highest seq this relay deleted: a fast flush reads past it
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
		n, held, err := r.flush(context.WithoutCancel(ctx), full)
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
		case n == r.batch:
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

// lateWindow is how far behind the last relayed seq a flush after a commit looks for rows
// committed late: the rows other transactions insert between a transaction's insert and its
// commit (a few lanes of 256 events, about 3 rows each, stay well within it).
const lateWindow = 5000

// relayLock is the advisory lock key of the relay ("omnibus" and 1).
const relayLock = int64(0x6f6d6e6962757301)

// Flush publishes and deletes up to one batch of outbox rows; it returns how many (0 when another
// replica's relay holds the outbox).
func (r *Relay) Flush(ctx context.Context) (int, error) {
	n, _, err := r.flush(ctx, true)
	return n, err
}

// flush relays one batch: from the head of the outbox when full, else past r.after.
func (r *Relay) flush(ctx context.Context, full bool) (n int, held bool, err error) {
	var lastDone int64
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
		rows, err := tx.Query(ctx, `SELECT seq, id, subject, type, coalesce(ce_subject, ''), coalesce(partitionkey, ''),
				coalesce(correlationid, ''), time, data FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2`, after, r.batch)
		if err != nil {
			return err
		}
		var seqs []int64
		var out []bus.Outgoing
		for rows.Next() {
			var seq int64
			var id, subject, typ, ceSubject, pk, corr string
			var at time.Time
			var data []byte // a json column: Postgres checked it is JSON
			if err := rows.Scan(&seq, &id, &subject, &typ, &ceSubject, &pk, &corr, &at, &data); err != nil {
				rows.Close()
				return err
			}
			e, err := outboxEvent(id, typ, ceSubject, pk, corr, at, data)
			if err != nil {
				rows.Close()
				return fmt.Errorf("outbox row %d: %w", seq, err)
			}
			seqs = append(seqs, seq)
			out = append(out, bus.Outgoing{Subject: subject, Event: e})
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) == 0 {
			return nil
		}
		// Rows JetStream acked are deleted; rows the bus refused as invalid are dead-lettered and
		// deleted, so they never block the ones behind them; rows that failed otherwise stay.
		done := seqs
		var berr *bus.BatchError
		if err := r.pub.PublishBatch(ctx, out); errors.As(err, &berr) {
			done = done[:0:0]
			for i, seq := range seqs {
				ferr, failed := berr.Failed[i]
				switch {
				case !failed:
				case errors.Is(ferr, schema.ErrInvalid) || errors.Is(ferr, schema.ErrUnknownType):
					reason := fmt.Sprintf("unifier produced an invalid %s: %v", out[i].Event.Type(), ferr)
					r.log.Error("outbox row dead-lettered", "seq", seq, "id", out[i].Event.ID(), "reason", reason)
					if derr := r.pub.DeadLetterEvent(ctx, "unifier", out[i].Subject, out[i].Event, reason); derr != nil {
						continue
					}
				default:
					continue
				}
				done = append(done, seq)
			}
			if left := len(seqs) - len(done); left > 0 {
				err := fmt.Errorf("%d of %d outbox rows not published; they stay for the next flush: %w", left, len(seqs), berr)
				if len(done) == 0 {
					return err
				}
				r.log.Warn("outbox relay", "err", err)
			}
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE seq = ANY($1)`, done); err != nil {
			return err
		}
		n, lastDone = len(done), done[len(done)-1]
		return nil
	})
	if err == nil && n > 0 {
		// done is in seq order: its last is the highest relayed.
		r.after = max(r.after, lastDone)
	}
	return n, held, err
}

// outboxEvent is the CloudEvent of an outbox row. It is event.New without what a row does not
// need: a fresh id (the row's is kept) and a second check that data is JSON.
func outboxEvent(id, typ, ceSubject, pk, corr string, at time.Time, data []byte) (event.Event, error) {
	e := ce.New(ce.CloudEventsVersionV1)
	e.SetID(id)
	e.SetType(typ)
	e.SetSource(Source)
	e.SetDataContentType(event.ContentTypeJSON)
	e.DataEncoded = data
	event.WithTime(at)(&e)
	event.WithPartitionKey(pk)(&e)
	event.WithCorrelationID(corr)(&e)
	if ceSubject != "" {
		e.SetSubject(ceSubject)
	}
	if err := e.Validate(); err != nil {
		return e, fmt.Errorf("%w: %w", event.ErrInvalid, err)
	}
	return e, nil
}
