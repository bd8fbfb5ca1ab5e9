// Package engine applies events to the session store: identity resolution and merges, one
// open conversation per customer across channels, enrichment, tool results, and the desk events
// that describe each change, written to the transactional outbox in the same transaction.
//
// Every effect is keyed by the consumed event's id (processed_events), and every id the engine
// creates — customers, conversations, merges, desk events — is derived from event ids, so a
// redelivered event changes nothing and replaying the log into an empty store rebuilds the same
// rows.
//
// One path applies every event, set-based (batch.go): a batch is one run, applied in rounds that
// each lock and read a snapshot of the customers and conversations of their events, apply the
// events to it in Go, and write the differences in one round trip — a fixed handful of
// statements whatever the run's length. Merges (merge.go) are applied on the snapshot too;
// desk commands, unmerges and tool results (commands.go) each get a round of their own. The
// result is exactly what applying the events one after the other would write (the stores
// recorded in testdata hold it to that).
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
	"github.com/omnibus-dev/omnibus/pkg/identity"
	"github.com/omnibus-dev/omnibus/pkg/pii"
)

// Config tunes the engine.
type Config struct {
	IdleTimeout   time.Duration // an open conversation idle this long is closed; the next message opens a new one
	DefaultRegion string        // for phone numbers without a country code
	// PII, if set, seals what the store keeps of identities of pii.SealedKinds: they are stored
	// and matched under identity.Indexed IDs (blind index and mask), their ciphertext beside.
	// nil: identities are stored normalised, in clear, unless the events came sealed.
	PII *pii.Keys
}

// Engine applies events. It is safe for concurrent use; concurrency control is in Postgres.
type Engine struct {
	cfg    Config
	norm   identity.Normalizer
	log    *slog.Logger
	pool   *pgxpool.Pool
	sealer *pii.Events // nil without keys
	// Committed is called after a transaction that wrote outbox rows committed.
	Committed func()
	// beforeWrite, if set (tests), runs before a round writes.
	beforeWrite func()
	// roundConflicts counts rounds redone after a unique-key conflict; txRetries counts
	// transactions run again (deadlocks, serialization failures, conflicts past the rounds').
	roundConflicts, txRetries atomic.Int64
}

// New returns an engine on pool.
func New(pool *pgxpool.Pool, cfg Config, log *slog.Logger) *Engine {
	en := &Engine{cfg: cfg, norm: identity.Normalizer{DefaultRegion: cfg.DefaultRegion}, log: log, pool: pool, Committed: func() {}}
	if cfg.PII != nil {
		en.sealer = pii.NewEvents(cfg.PII)
	}
	return en
}

// ns is the namespace of every id the engine derives from event ids (UUIDv5).
var ns = uuid.MustParse("6f6d6e69-6275-7300-8000-756e69666965")

func derive(parts ...string) uuid.UUID { return uuid.NewSHA1(ns, []byte(strings.Join(parts, "\x00"))) }

// ApplyBatch applies a batch and returns nil or one error per delivery.
//
// Every event is decoded and checked first (what fails there fails alone, permanently); the
// rest are applied in order, as one run of the set-based path (batch.go): a transaction that
// applies them in rounds of a handful of statements each, split down to the events that fail
// when it fails, so that the others commit.
func (en *Engine) ApplyBatch(ctx context.Context, batch []bus.Delivery) []error {
	errs := make([]error, len(batch))
	first := map[string]int{} // event id -> index of its first copy in the batch
	dups := map[int]int{}
	run := make([]*msgEvent, 0, len(batch))
	var segs map[*msgEvent]*Segment
	var transfers []transferEvent
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
		case TypeCallStarted, TypeCallAnswered, TypeCallEnded:
			m, err = en.prepareCall(i, d)
		case TypeCallTransferred, TypeCallTransferFailed, TypeCallTranscribed:
			prepare := prepareTransfer
			if d.Event.Type() == TypeCallTranscribed {
				prepare = prepareTranscribed
			}
			t, err := prepare(i, d)
			if err != nil {
				errs[i] = fmt.Errorf("%s %s: %w", d.Event.Type(), d.Event.ID(), err)
				continue
			}
			transfers = append(transfers, t)
			continue
		case TypeSegment:
			var seg *Segment
			if m, seg, err = en.prepareSegment(i, d); err == nil && m == nil {
				continue // not kept
			}
			if seg != nil {
				if segs == nil {
					segs = map[*msgEvent]*Segment{}
				}
				segs[m] = seg
			}
		default:
			m, err = en.prepareCommand(i, d)
		}
		if err != nil {
			errs[i] = fmt.Errorf("%s %s: %w", d.Event.Type(), d.Event.ID(), err)
			continue
		}
		m.trace = traceParent(d)
		run = append(run, m)
	}
	run = en.resolveSegments(ctx, run, segs, errs)
	if len(run) > 0 {
		en.applyRun(ctx, run, errs)
	}
	en.applyTransfers(ctx, transfers, errs)
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

type outboxRow struct {
	id, subject, typ, ceSubject, partitionKey, corr string
	at                                              time.Time
	data                                            any
}

// traceParent is the W3C trace context a delivery's outputs continue: its consumer span, else
// the context its event was created in.
func traceParent(d bus.Delivery) string {
	if sc := d.SpanContext; sc.IsValid() {
		return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
	}
	return event.Ext(d.Event, event.ExtTraceParent)
}

// newOutboxRow is the outbox row of a desk event or tool request caused by ev; its id is derived
// from ev's id, the type and a discriminator.
func newOutboxRow(ev event.Event, typ, subject, ceSubject, disc string, data any) outboxRow {
	return outboxRow{
		id: "unifier:" + strings.TrimPrefix(typ, "omni.") + ":" + ev.ID() + disc, subject: subject, typ: typ,
		ceSubject: ceSubject, partitionKey: event.PartitionKey(ev), corr: ev.ID(), at: ev.Time().UTC(), data: data,
	}
}

// key returns the ID identity x is stored and matched under: normalised; for a kind of
// pii.SealedKinds where personal data is sealed, identity.Indexed — computed from the
// normalised value with the engine's keys, or taken from the event's index and mask when it came
// sealed and the engine holds no keys that open it. secret is what the identities row's sealed
// column is made of: the normalised value in clear (sealed when written) or the event's
// ciphertext; "" for an ID in clear.
func (en *Engine) key(x Identity) (id identity.ID, secret string, err error) {
	if pii.IsCiphertext(x.Value) {
		if !identity.ValidKind(x.Kind) || x.Index == "" || x.Masked == "" {
			return identity.ID{}, "", fmt.Errorf("%w: %s: a sealed value without its index and mask", identity.ErrInvalid, x.Kind)
		}
		return identity.Indexed(x.Kind, x.Index, x.Masked), x.Value, nil
	}
	if id, err = en.norm.Normalize(x.Kind, x.Value); err != nil {
		return id, "", err
	}
	if en.cfg.PII == nil || !pii.SealedKinds[id.Kind] {
		return id, "", nil
	}
	return identity.Indexed(id.Kind, en.cfg.PII.BlindIndex(id.Kind, id.Value), identity.Mask(id)), id.Value, nil
}

// sealed returns the ciphertext of the normalised value of an identity of kind whose secret
// key returned ("" for none): the value sealed by the engine's keys; a producer's ciphertext
// (the value as written) is opened, normalised and sealed again, or kept as it is by an engine
// whose keys do not open it. This is the one place the engine opens a value — when it links a
// new identity, to keep and look up its normalised form — never to match.
func (en *Engine) sealed(kind, secret string) (string, error) {
	if secret == "" || en.cfg.PII == nil {
		return secret, nil
	}
	v := secret
	if pii.IsCiphertext(secret) {
		clear, err := en.cfg.PII.Decrypt(secret)
		if err != nil {
			return secret, nil
		}
		v = clear
		if id, err := en.norm.Normalize(kind, clear); err == nil {
			v = id.Value
		}
	}
	return en.cfg.PII.Encrypt(v)
}

// normalize returns the keys (see key) of an event's identities, the first one being the
// sender, and the secrets of the Indexed ones. An invalid sender is a permanent error; invalid
// extra identities are skipped.
func (en *Engine) normalize(from Identity, extra []Identity) ([]identity.ID, map[identity.ID]string, error) {
	f, fs, err := en.key(from)
	if err != nil {
		return nil, nil, bus.Permanent(fmt.Errorf("sender identity: %w", err))
	}
	var secrets map[identity.ID]string
	keep := func(id identity.ID, s string) {
		if s != "" {
			if secrets == nil {
				secrets = map[identity.ID]string{}
			}
			secrets[id] = s
		}
	}
	keep(f, fs)
	out := []identity.ID{f}
	seen := map[identity.ID]bool{f: true}
	for _, x := range extra {
		id, s, err := en.key(x)
		if err != nil {
			en.log.Warn("identity skipped", "kind", x.Kind, "err", err)
			continue
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
			keep(id, s)
		}
	}
	return out, secrets, nil
}

func sortIDs(ids []identity.ID) []identity.ID {
	s := append([]identity.ID(nil), ids...)
	sort.Slice(s, func(i, j int) bool { return s[i].String() < s[j].String() })
	return s
}

// lookupQuery is the identity a CRM lookup asks about: id in clear where the engine keeps
// identities in clear; sealed (ciphertext, index, mask) where it keeps them Indexed, so that the
// request carries the value only for the CRM connector's keys.
func (en *Engine) lookupQuery(id identity.ID, secret string) (Identity, error) {
	index, masked, ok := id.IsIndexed()
	if !ok {
		return Identity{Kind: id.Kind, Value: id.Value}, nil
	}
	ct, err := en.sealed(id.Kind, secret)
	if err != nil {
		return Identity{}, err
	}
	if ct == "" {
		return Identity{}, fmt.Errorf("identity %s %s: no value to look up", id.Kind, masked)
	}
	return Identity{Kind: id.Kind, Value: ct, Index: index, Masked: masked}, nil
}

// sealBody returns a tool result's data as the store keeps it: with the identities of
// pii.SealedKinds sealed where the engine holds keys (as the log holds it), else as the tool
// sent it.
func (en *Engine) sealBody(data []byte) []byte {
	if en.sealer == nil {
		return data
	}
	out, err := en.sealer.Seal(data)
	if err != nil { // not JSON: the bus validated it, so this does not happen
		return data
	}
	return out
}

// sealPartitionKeys replaces personal values in the partition keys of rows by their blind
// indexes where the engine holds keys. Events that came through a bus with keys carry sealed
// keys already; this covers the others, so that the outbox never holds one in clear.
func (en *Engine) sealPartitionKeys(rows []outboxRow) {
	if en.sealer == nil {
		return
	}
	for i := range rows {
		rows[i].partitionKey = en.sealer.SealPartitionKey(rows[i].partitionKey)
	}
}
