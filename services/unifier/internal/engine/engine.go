// Package engine applies events to the session store: identity resolution and merges, one
// open conversation per customer across channels, enrichment, tool results, and the desk events
// that describe each change, written to the transactional outbox in the same transaction.
//
// Every effect is keyed by the consumed event's id (processed_events), and every id the engine
// creates — customers, conversations, merges, desk events — is derived from event ids, so a
// redelivered event changes nothing and replaying the log into an empty store rebuilds the same
// rows.
//
// Two paths apply events. The per-event handlers (handlers.go, resolve.go) apply any event with
// a few statements each. Inbound messages and the delivery statuses of replies, nearly all of
// the traffic, take the set-based path (batch.go): a run of them costs a fixed handful of
// statements whatever its length, and writes exactly what the handlers would have written
// applying the same events one by one (TestBatchedEqualsPerEvent holds it to that). Merges, and
// statuses of replies already stored, go through the handlers inside a run.
//
// Locking: every writer of a customer's identities, conversations and messages first locks the
// customer's row, and a transaction locks all its customers in one statement in id order, so
// transactions do not deadlock. The set-based path skips customers another transaction holds
// (SKIP LOCKED) and applies their events in a second transaction, so consumers of different
// partitions writing to one cross-channel customer do not wait for each other's whole batch.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/identity"
)

// Config tunes the engine.
type Config struct {
	IdleTimeout   time.Duration // an open conversation idle this long is closed; the next message opens a new one
	DefaultRegion string        // for phone numbers without a country code
}

// Engine applies events. It is safe for concurrent use; concurrency control is in Postgres.
type Engine struct {
	cfg  Config
	norm identity.Normalizer
	log  *slog.Logger
	pool *pgxpool.Pool
	// Committed is called after a transaction that wrote outbox rows committed.
	Committed func()
	// perEvent makes ApplyBatch run every event through its handler (the reference the
	// set-based path is tested against).
	perEvent bool
	// beforeWrite, if set (tests), runs before a round writes.
	beforeWrite func()
	// roundConflicts counts rounds redone after a unique-key conflict; txRetries counts
	// transactions run again (deadlocks, serialization failures, conflicts past the rounds').
	roundConflicts, txRetries atomic.Int64
}

// New returns an engine on pool.
func New(pool *pgxpool.Pool, cfg Config, log *slog.Logger) *Engine {
	return &Engine{cfg: cfg, norm: identity.Normalizer{DefaultRegion: cfg.DefaultRegion}, log: log, pool: pool, Committed: func() {}}
}

// ns is the namespace of every id the engine derives from event ids (UUIDv5).
var ns = uuid.MustParse("6f6d6e69-6275-7300-8000-756e69666965")

func derive(parts ...string) uuid.UUID { return uuid.NewSHA1(ns, []byte(strings.Join(parts, "\x00"))) }

// ApplyBatch applies a batch and returns nil or one error per delivery.
//
// Inbound messages and delivery statuses, the bulk of the traffic, take the set-based path
// (batch.go): each run of them is applied with a handful of statements whatever its length.
// Every other event (desk commands, unmerges, tool results) is applied on its own, in order, by
// the per-event handlers. The whole batch — its runs and other events, in order — is first
// tried as one transaction (one commit, where a transaction per status had made a reply's
// delivery statuses cost a commit each and cut the runs around them); when that fails, each run
// and each other event gets its own transaction, so events that fail get their own error and the
// others commit.
func (en *Engine) ApplyBatch(ctx context.Context, batch []bus.Delivery) []error {
	if en.perEvent {
		return en.applyPerEvent(ctx, batch)
	}
	errs := make([]error, len(batch))
	first := map[string]int{} // event id -> index of its first copy in the batch
	dups := map[int]int{}
	var segs []segment
	for i, d := range batch {
		if j, ok := first[d.Event.ID()]; ok {
			dups[i] = j // a second copy changes nothing: it shares the first one's outcome
			continue
		}
		first[d.Event.ID()] = i
		var m *msgEvent
		var err error
		switch d.Event.Type() {
		case TypeMessageReceived:
			m, err = en.prepareMessage(i, d)
		case TypeStatusUpdated:
			m, err = en.prepareStatus(i, d)
		default:
			segs = append(segs, segment{i: i})
			continue
		}
		if err != nil {
			errs[i] = fmt.Errorf("%s %s: %w", d.Event.Type(), d.Event.ID(), err)
			continue
		}
		if n := len(segs); n > 0 && segs[n-1].run != nil {
			segs[n-1].run = append(segs[n-1].run, m)
		} else {
			segs = append(segs, segment{run: []*msgEvent{m}})
		}
	}
	if together := len(segs) > 1 && en.applyTogether(ctx, batch, segs) == nil; !together {
		for _, sg := range segs {
			if sg.run != nil {
				en.applyRun(ctx, sg.run, errs)
				continue
			}
			d := batch[sg.i]
			if err := en.inTx(ctx, func(tx pgx.Tx) (int, error) { return en.apply(ctx, tx, d, nil) }); err != nil {
				errs[sg.i] = fmt.Errorf("%s %s: %w", d.Event.Type(), d.Event.ID(), err)
			}
		}
	}
	failed := false
	for i := range batch {
		if j, ok := dups[i]; ok {
			errs[i] = errs[j]
		}
		failed = failed || errs[i] != nil
	}
	if !failed {
		return nil
	}
	return errs
}

// segment is a run of consecutive inbound messages and statuses (run set) or one other event
// (batch[i]).
type segment struct {
	run []*msgEvent
	i   int
}

// applyTogether applies every segment, in order, in one transaction. It waits for customers
// other transactions hold rather than leaving their events over (the set-based path's first
// transaction does), so nothing is left for a second one.
func (en *Engine) applyTogether(ctx context.Context, batch []bus.Delivery, segs []segment) error {
	err := en.inTx(ctx, func(tx pgx.Tx) (int, error) {
		total := 0
		for _, sg := range segs {
			var n int
			var err error
			if sg.run != nil {
				n, err = (&runTx{en: en, tx: tx}).apply(ctx, sg.run)
			} else {
				n, err = en.apply(ctx, tx, batch[sg.i], nil)
			}
			if err != nil {
				return 0, err
			}
			total += n
		}
		return total, nil
	})
	if err != nil {
		en.log.Debug("batch failed as one transaction; applying its runs and events one by one", "segments", len(segs), "err", err)
	}
	return err
}

// applyPerEvent is the reference implementation the set-based path is tested against: every
// event through its handler, in one transaction, falling back to one transaction per event
// when that fails.
func (en *Engine) applyPerEvent(ctx context.Context, batch []bus.Delivery) []error {
	err := en.inTx(ctx, func(tx pgx.Tx) (int, error) {
		total := 0
		for _, d := range batch {
			n, err := en.apply(ctx, tx, d, nil)
			if err != nil {
				return 0, fmt.Errorf("%s %s: %w", d.Event.Type(), d.Event.ID(), err)
			}
			total += n
		}
		return total, nil
	})
	if err == nil {
		return nil
	}
	errs := make([]error, len(batch))
	if len(batch) == 1 {
		errs[0] = err
		return errs
	}
	en.log.Debug("batch failed; applying one by one", "size", len(batch), "err", err)
	for i, d := range batch {
		errs[i] = en.inTx(ctx, func(tx pgx.Tx) (int, error) { return en.apply(ctx, tx, d, nil) })
	}
	return errs
}

// inTx runs fn in a transaction, retrying deadlocks and serialization failures. fn returns how
// many outbox rows it wrote; Committed is called after a commit that wrote some.
func (en *Engine) inTx(ctx context.Context, fn func(pgx.Tx) (int, error)) error {
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		var wrote int
		err = pgx.BeginFunc(ctx, en.pool, func(tx pgx.Tx) error {
			var ferr error
			wrote, ferr = fn(tx)
			return ferr
		})
		if err == nil {
			if wrote > 0 {
				en.Committed()
			}
			return nil
		}
		if retryable(err) {
			en.txRetries.Add(1)
			time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
			continue
		}
		return err
	}
	return err
}

// retryable reports whether err is a deadlock, a serialization failure, or two transactions
// attaching the same new identity: the transaction is worth running again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001" || pgErr.Code == "23505")
}

// apply applies one event inside tx and returns how many outbox rows it wrote. With hold set,
// the outbox rows are appended to *hold instead of being written (the set-based path writes
// them with its own, in order).
func (en *Engine) apply(ctx context.Context, tx pgx.Tx, d bus.Delivery, hold *[]outboxRow) (int, error) {
	e := d.Event
	tag, err := tx.Exec(ctx, `INSERT INTO processed_events (event_id, type) VALUES ($1, $2) ON CONFLICT DO NOTHING`, e.ID(), e.Type())
	if err != nil {
		return 0, err
	}
	if tag.RowsAffected() == 0 {
		return 0, nil // already applied: a redelivery or a replay
	}
	return en.dispatch(ctx, tx, e, hold)
}

// dispatch runs the handler of e's type; the caller recorded e in processed_events.
func (en *Engine) dispatch(ctx context.Context, tx pgx.Tx, e event.Event, hold *[]outboxRow) (int, error) {
	var err error
	w := &writer{en: en, tx: tx, ev: e, hold: hold}
	switch t := e.Type(); {
	case t == TypeMessageReceived:
		err = en.onMessage(ctx, w)
	case t == TypeStatusUpdated:
		err = en.onStatus(ctx, w)
	case t == TypeCloseRequested || t == TypeReopenRequested:
		err = en.onConversationCommand(ctx, w)
	case t == TypeUnmergeRequested:
		var c UnmergeCommand
		if err = decode(e, &c); err == nil {
			err = en.unmerge(ctx, w, c)
		}
	case t == TypeCRMLookupCompleted || t == TypeCRMLookupFailed:
		err = en.onCRMResult(ctx, w)
	case strings.HasPrefix(t, "omni.tool.") && (strings.HasSuffix(t, ".completed") || strings.HasSuffix(t, ".failed")):
		err = en.onToolResult(ctx, w)
	default:
		err = bus.Permanent(fmt.Errorf("unifier does not handle %s", t))
	}
	if err != nil {
		return 0, err
	}
	return len(w.out), w.flush(ctx)
}

func decode(e event.Event, v any) error {
	if err := event.DecodeData(e, v); err != nil {
		return bus.Permanent(err)
	}
	return nil
}

// eventTime is when the event happened according to its producer.
func eventTime(e event.Event, t time.Time) time.Time {
	if !t.IsZero() {
		return t.UTC()
	}
	return e.Time().UTC()
}

// writer collects the outbox rows of one event, and statements whose results nothing waits for,
// to send them in one round trip at the end.
type writer struct {
	en    *Engine
	tx    pgx.Tx
	ev    event.Event
	out   []outboxRow
	batch pgx.Batch
	hold  *[]outboxRow // when set, flush hands the outbox rows over instead of writing them
}

// queue adds a statement to the final round trip.
func (w *writer) queue(sql string, args ...any) { w.batch.Queue(sql, args...) }

type outboxRow struct {
	id, subject, typ, ceSubject, partitionKey, corr string
	at                                              time.Time
	data                                            any
}

// emit queues an outbox event whose id is derived from the consumed event and a discriminator.
func (w *writer) emit(typ, subject, ceSubject, disc string, data any) {
	w.out = append(w.out, newOutboxRow(w.ev, typ, subject, ceSubject, disc, data))
}

// newOutboxRow is the outbox row of a desk event or tool request caused by ev; its id is derived
// from ev's id, the type and a discriminator.
func newOutboxRow(ev event.Event, typ, subject, ceSubject, disc string, data any) outboxRow {
	return outboxRow{
		id: "unifier:" + strings.TrimPrefix(typ, "omni.") + ":" + ev.ID() + disc, subject: subject, typ: typ,
		ceSubject: ceSubject, partitionKey: event.PartitionKey(ev), corr: ev.ID(), at: ev.Time().UTC(), data: data,
	}
}

func (w *writer) flush(ctx context.Context) error {
	if w.hold != nil {
		*w.hold = append(*w.hold, w.out...)
		if w.batch.Len() == 0 {
			return nil
		}
		return w.tx.SendBatch(ctx, &w.batch).Close()
	}
	if len(w.out) == 0 && w.batch.Len() == 0 {
		return nil
	}
	b := &w.batch
	if err := queueOutbox(b, w.out); err != nil {
		return err
	}
	return w.tx.SendBatch(ctx, b).Close()
}

// normalize returns the normalised identities of an event, the first one being the sender.
// An invalid sender is a permanent error; invalid extra identities are skipped.
func (en *Engine) normalize(from Identity, extra []Identity) ([]identity.ID, error) {
	f, err := en.norm.Normalize(from.Kind, from.Value)
	if err != nil {
		return nil, bus.Permanent(fmt.Errorf("sender identity: %w", err))
	}
	out := []identity.ID{f}
	seen := map[identity.ID]bool{f: true}
	for _, x := range extra {
		id, err := en.norm.Normalize(x.Kind, x.Value)
		if err != nil {
			en.log.Warn("identity skipped", "kind", x.Kind, "err", err)
			continue
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

func sortIDs(ids []identity.ID) []identity.ID {
	s := append([]identity.ID(nil), ids...)
	sort.Slice(s, func(i, j int) bool { return s[i].String() < s[j].String() })
	return s
}
