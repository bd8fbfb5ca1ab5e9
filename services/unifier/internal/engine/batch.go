package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/identity"
)

// The set-based path: a run of consecutive inbound messages applied in one transaction with a
// fixed number of statements, whatever the run's length.
//
//  1. One round trip records every event in processed_events (those already there are skipped:
//     redeliveries and replays) and looks up every identity of every event.
//  2. One round trip locks all the customers those identities belong to, in id order — every
//     transaction locks its customers in one statement in the same order, so two of them never
//     wait on each other in a cycle — and reads their open conversations.
//  3. In Go, the events are applied in order to that snapshot: new customers and identities,
//     display names, idle closes, new and touched conversations, messages, and the desk events
//     with the views they carry. The result is exactly what the per-event handlers would have
//     written, one event after the other.
//  4. One round trip writes it all: one multi-row INSERT ... SELECT FROM unnest(...) or UPDATE per
//     table, the outbox rows in event order.
//
// Merges are the exception: an event whose identities belong to two or more customers is applied
// by the per-event handler (resolve.go), in the same transaction, as soon as nothing that comes
// before it in the run touches those customers; otherwise it waits for the next round, and so
// does every later event that touches its customers or identities. Events that touch disjoint
// customers and identities commute, so the result is still that of applying the run in order.
// A round runs steps 2 to 4 again for the events that waited: usually one or two rounds.
//
// Failures: deadlocks, serialization failures and unique violations (two transactions attaching
// the same new identity) rerun the transaction. Any other failure splits the run in two and
// applies each half on its own, down to the single events that fail: the others commit.

// msgEvent is an inbound message, or a delivery status of an outbound one, of a batch, decoded
// and normalised before any database work.
type msgEvent struct {
	i      int // index in the batch
	ev     event.Event
	m      MessageReceived // a message
	st     *StatusUpdated  // a status (m is then zero)
	toErr  error           // a status: why its recipient is not a valid identity (matters if it is the first news)
	ids    []identity.ID   // normalised, the sender (recipient) first
	sorted []identity.ID   // ids in byte order: the order resolve attaches them in
	at     time.Time       // when it was sent (UTC), as the handlers use it
	atDB   time.Time       // at as Postgres stores it and pgx returns it
	// What the messages row and the desk event hold: for a message, the event itself; for a
	// status that is the first news of a reply, that reply.
	msgID, channel string
	body           json.RawMessage
}

// prepareMessage decodes and normalises a message; its errors are permanent.
func (en *Engine) prepareMessage(i int, d bus.Delivery) (*msgEvent, error) {
	var m MessageReceived
	if err := decode(d.Event, &m); err != nil {
		return nil, err
	}
	ids, err := en.normalize(m.From, m.Identities)
	if err != nil {
		return nil, err
	}
	if len(m.Message) == 0 {
		return nil, bus.Permanent(errors.New("the message has no body"))
	}
	at := eventTime(d.Event, m.SentAt)
	return &msgEvent{i: i, ev: d.Event, m: m, ids: ids, sorted: sortIDs(ids), at: at, atDB: dbTime(at),
		msgID: d.Event.ID(), channel: m.Channel, body: m.Message}, nil
}

// prepareStatus decodes and normalises a delivery status; its errors are permanent.
func (en *Engine) prepareStatus(i int, d bus.Delivery) (*msgEvent, error) {
	var s StatusUpdated
	if err := decode(d.Event, &s); err != nil {
		return nil, err
	}
	at := eventTime(d.Event, s.At)
	e := &msgEvent{i: i, ev: d.Event, st: &s, at: at, atDB: dbTime(at), msgID: s.MessageID, channel: s.Channel, body: s.Message}
	if s.To != nil {
		if e.ids, e.toErr = en.normalize(*s.To, nil); e.toErr == nil {
			e.sorted = e.ids
		}
	}
	return e, nil
}

// firstNews says whether a status whose reply the store does not know carries what it takes to
// record that reply (otherwise it changes nothing).
func (e *msgEvent) firstNews() bool { return e.st.To != nil && len(e.st.Message) > 0 }

// dbTime is t as a timestamptz round trip returns it: microseconds, in time.Local.
func dbTime(t time.Time) time.Time {
	return time.Unix(t.Unix(), int64(t.Nanosecond())/1000*1000)
}

// applyRun applies a run of messages, setting errs of those that fail. The first transaction
// skips the customers other transactions hold (a worker on another partition writing to the same
// customer): it applies the rest without waiting, and a second transaction then waits for those
// customers and applies the events left over.
func (en *Engine) applyRun(ctx context.Context, evs []*msgEvent, errs []error) {
	en.applyRunTx(ctx, evs, errs, true)
}

func (en *Engine) applyRunTx(ctx context.Context, evs []*msgEvent, errs []error, skipLocked bool) {
	var leftover []*msgEvent
	err := en.inTx(ctx, func(tx pgx.Tx) (int, error) {
		r := &runTx{en: en, tx: tx, skipLocked: skipLocked}
		n, err := r.apply(ctx, evs)
		leftover = r.leftover
		return n, err
	})
	if err == nil {
		if len(leftover) > 0 {
			en.applyRunTx(ctx, leftover, errs, false)
		}
		return
	}
	var pgErr *pgconn.PgError
	aboutEvents := errors.As(err, &pgErr) || bus.IsPermanent(err)
	if len(evs) == 1 || ctx.Err() != nil || !aboutEvents {
		// One event, or a failure that is not about the events (a lost connection): every
		// event of the run gets it and is retried.
		for _, e := range evs {
			errs[e.i] = fmt.Errorf("%s %s: %w", e.ev.Type(), e.ev.ID(), err)
		}
		return
	}
	en.log.Debug("run failed; splitting it to find the events that fail", "size", len(evs), "err", err)
	half := len(evs) / 2
	en.applyRunTx(ctx, evs[:half], errs, false)
	en.applyRunTx(ctx, evs[half:], errs, false)
}

// runTx is one transaction of the set-based path.
type runTx struct {
	en     *Engine
	tx     pgx.Tx
	idents map[identity.ID]uuid.UUID // identity -> customer, as last looked up
	// known holds the replies (message ids) the statuses of the run are about that the store
	// has, as last looked up; statuses says the lookup asked.
	known    map[string]bool
	statuses bool
	// skipLocked makes the transaction leave out the events of customers another transaction
	// holds (they are returned as left over) instead of waiting for it.
	skipLocked bool
	leftover   []*msgEvent
}

const (
	sqlRecord = `INSERT INTO processed_events (event_id, type) SELECT * FROM unnest($1::text[], $2::text[])
		ON CONFLICT DO NOTHING RETURNING event_id`
	// A primary-key probe per identity whatever plan is cached: the statement is prepared once per
	// connection, and Postgres keeps the generic plan it chose while identities was still small
	// (until an ANALYZE), which for a plain join is a hash join over a scan of the whole table —
	// 1.2 ms per lookup at 1,000 events/s in the bench, most of Postgres's time. OFFSET 0 keeps
	// the subquery from being flattened into such a join, so each identity is one index probe
	// (0.06 ms). Every statement below that reads rows by a list of keys is written the same way,
	// for the same reason (id = ANY($1) on a table that was small became a scan of customers
	// per transaction: 200 rows read per event at 3,000 events/s).
	sqlLookup = `SELECT i.kind, i.value, i.customer_id FROM unnest($1::text[], $2::text[]) AS q(kind, value)
		CROSS JOIN LATERAL (SELECT kind, value, customer_id FROM identities WHERE kind = q.kind AND value = q.value OFFSET 0) i`
	sqlUnrecord = `DELETE FROM processed_events WHERE event_id = ANY($1)`
	// The open conversation of each customer and, when the customer may need a new one (none is
	// open, or the open one may be idle by $2), its latest conversation, which a new one follows.
	sqlConversations = `SELECT q.id, o.id, o.status, o.channels, o.opened_at, o.closed_at, o.close_reason, o.last_event_at,
			o.assignee, o.previous_id, coalesce(o.id IS NULL OR o.last_event_at <= $2, false), l.id, l.opened_at
		FROM unnest($1::uuid[]) AS q(id)
		LEFT JOIN LATERAL (SELECT * FROM conversations WHERE customer_id = q.id AND status = 'open' OFFSET 0) o ON true
		LEFT JOIN LATERAL (SELECT c.id, c.opened_at FROM conversations c
			WHERE c.customer_id = q.id AND c.status <> 'merged' AND (o.id IS NULL OR o.last_event_at <= $2)
			ORDER BY c.opened_at DESC, c.id DESC LIMIT 1) l ON true`
	sqlIdentitiesOf = `SELECT i.customer_id, i.kind, i.value, i.source, i.first_seen FROM unnest($1::uuid[]) AS q(id)
		CROSS JOIN LATERAL (SELECT * FROM identities WHERE customer_id = q.id OFFSET 0) i`

	sqlInsertCustomers = `INSERT INTO customers (id, created_at, created_by_event, updated_at, display_name)
		SELECT id, at, ev, at, name FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[]) AS u(id, at, ev, name)`
	sqlSetNames = `UPDATE customers c SET display_name = u.name FROM unnest($1::uuid[], $2::text[]) AS u(id, name)
		WHERE c.id = u.id AND c.display_name IS NULL`
	sqlInsertIdentities = `INSERT INTO identities (kind, value, customer_id, source, first_seen, event_id)
		SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[], $6::text[])`
	sqlUpdateConversations = `UPDATE conversations c SET status = u.status, closed_at = u.closed_at, close_reason = u.close_reason,
			channels = ARRAY(SELECT jsonb_array_elements_text(u.channels::jsonb)), last_event_at = u.last_event_at,
			first_response_at = coalesce(c.first_response_at, u.first_response_at)
		FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])
			AS u(id, status, closed_at, close_reason, channels, last_event_at, first_response_at)
		WHERE c.id = u.id`
	sqlInsertConversations = `INSERT INTO conversations (id, customer_id, status, opened_at, opened_by_event, channels, last_event_at,
			previous_id, closed_at, close_reason, first_response_at)
		SELECT id, customer_id, status, opened_at, ev, ARRAY(SELECT jsonb_array_elements_text(channels::jsonb)), last_event_at,
			previous_id, closed_at, close_reason, first_response_at
		FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::timestamptz[], $8::uuid[],
			$9::timestamptz[], $10::text[], $11::timestamptz[])
			AS u(id, customer_id, status, opened_at, ev, channels, last_event_at, previous_id, closed_at, close_reason, first_response_at)`
	// Inbound messages, and outbound ones first seen through a status (status set: it is also
	// their status_at, as the status handler writes them).
	sqlInsertMessages = `INSERT INTO messages (event_id, conversation_id, customer_id, channel, direction, identity_kind,
			identity_value, body, sent_at, status, status_at)
		SELECT ev, conv, cust, channel, CASE WHEN st IS NULL THEN 'inbound' ELSE 'outbound' END, kind, value, body::jsonb, at,
			st, st_at
		FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::text[],
			$10::timestamptz[])
			AS u(ev, conv, cust, channel, kind, value, body, at, st, st_at)`
	// Which of the replies statuses are about the store has: one primary-key probe each.
	sqlKnownMessages = `SELECT m.event_id FROM unnest($1::text[]) AS q(id)
		CROSS JOIN LATERAL (SELECT event_id FROM messages WHERE event_id = q.id OFFSET 0) m`
	sqlInsertOutbox = `INSERT INTO outbox_batches (n, events) VALUES ($1, $2)`
)

var (
	sqlLock     = lockCustomersSQL("id, created_at, merged_into, display_name, profile, profile_sources", false)
	sqlLockSkip = lockCustomersSQL("id, created_at, merged_into, display_name, profile, profile_sources", true)
)

// apply applies evs in tx and returns how many outbox rows it wrote.
func (r *runTx) apply(ctx context.Context, evs []*msgEvent) (int, error) {
	ids, types := make([]string, len(evs)), make([]string, len(evs))
	for i, e := range evs {
		ids[i], types[i] = e.ev.ID(), e.ev.Type()
	}
	b := &pgx.Batch{}
	b.Queue(sqlRecord, ids, types)
	r.queueLookup(b, evs)
	br := r.tx.SendBatch(ctx, b)
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return 0, err
	}
	fresh := make(map[string]bool, len(evs))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			_ = br.Close()
			return 0, err
		}
		fresh[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		_ = br.Close()
		return 0, err
	}
	if err := r.readLookup(br); err != nil {
		_ = br.Close()
		return 0, err
	}
	if err := br.Close(); err != nil {
		return 0, err
	}
	pending := make([]*msgEvent, 0, len(fresh))
	for _, e := range evs {
		if fresh[e.ev.ID()] {
			pending = append(pending, e)
		}
	}
	wrote, conflicts := 0, 0
	for first := true; len(pending) > 0; first = false {
		if !first {
			if err := r.lookup(ctx, pending); err != nil {
				return wrote, err
			}
		}
		// A round may attach an identity another transaction attached meanwhile (it was new in
		// this round's snapshot): the unique key refuses it. Only the round is undone and run
		// again, on a fresh lookup that finds the identity, not the whole transaction. The
		// round's first statements set the savepoint (savepoint), saving a round trip.
		rd := &round{runTx: r}
		next, progress, err := rd.run(ctx, pending)
		if isUniqueViolation(err) && conflicts < maxRoundConflicts {
			conflicts++
			r.en.roundConflicts.Add(1)
			if _, rerr := r.tx.Exec(ctx, `ROLLBACK TO SAVEPOINT round`); rerr != nil {
				return wrote, errors.Join(err, rerr)
			}
			first = false // the next iteration looks the identities up again
			continue
		}
		if err != nil {
			return wrote, err
		}
		wrote += len(rd.out)
		if !progress {
			// Every event left waits for customers other transactions hold: they are applied
			// by the next transaction, which waits for those locks.
			ids := make([]string, len(next))
			for i, e := range next {
				ids[i] = e.ev.ID()
			}
			if _, err := r.tx.Exec(ctx, sqlUnrecord, ids); err != nil {
				return wrote, err
			}
			r.leftover = next
			break
		}
		pending = next
	}
	return wrote, nil
}

// maxRoundConflicts bounds the rounds one transaction redoes after unique-key conflicts; past
// it the transaction fails and inTx runs it again.
const maxRoundConflicts = 3

// isUniqueViolation reports a unique-key conflict (23505).
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// identityArgs returns the distinct identities of evs as two parallel arrays.
func identityArgs(evs []*msgEvent) (kinds, values []string) {
	seen := map[identity.ID]bool{}
	for _, e := range evs {
		for _, id := range e.ids {
			if !seen[id] {
				seen[id] = true
				kinds, values = append(kinds, id.Kind), append(values, id.Value)
			}
		}
	}
	return kinds, values
}

func (r *runTx) lookup(ctx context.Context, evs []*msgEvent) error {
	b := &pgx.Batch{}
	r.queueLookup(b, evs)
	br := r.tx.SendBatch(ctx, b)
	if err := r.readLookup(br); err != nil {
		_ = br.Close()
		return err
	}
	return br.Close()
}

// queueLookup queues what readLookup reads: the customers of evs's identities and which replies
// their statuses are about the store has.
func (r *runTx) queueLookup(b *pgx.Batch, evs []*msgEvent) {
	kinds, values := identityArgs(evs)
	b.Queue(sqlLookup, kinds, values)
	var replies []string
	for _, e := range evs {
		if e.st != nil {
			replies = append(replies, e.msgID)
		}
	}
	r.statuses = len(replies) > 0
	if r.statuses {
		b.Queue(sqlKnownMessages, replies)
	}
}

func (r *runTx) readLookup(br pgx.BatchResults) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	r.idents = map[identity.ID]uuid.UUID{}
	for rows.Next() {
		var id identity.ID
		var c uuid.UUID
		if err := rows.Scan(&id.Kind, &id.Value, &c); err != nil {
			rows.Close()
			return err
		}
		r.idents[id] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil || !r.statuses {
		return err
	}
	r.known = map[string]bool{}
	rows, err = br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		r.known[id] = true
	}
	return rows.Err()
}

// identRow is an identity as the customer view needs it.
type identRow struct {
	id        identity.ID
	customer  uuid.UUID
	source    string
	firstSeen time.Time // as Postgres returns it
	eventID   string
}

// cust is a customer as the round sees it.
type cust struct {
	id               uuid.UUID
	createdAt        time.Time
	createdBy        string // new customers
	name             *string
	profile, sources []byte
	isNew, nameSet   bool
	open             *conv // its open conversation
	// latest is its latest conversation that was not merged (which a new one follows);
	// latestKnown says whether it was read (or the customer is new).
	latest      *conv
	latestKnown bool
	stored      []identRow // its identities in the database (read when a view needs them)
	added       []identRow // identities this round attached
	needStored  bool
}

// conv is a conversation as the round sees it: the view it would read back.
type conv struct {
	id       uuid.UUID
	customer uuid.UUID
	v        ConversationView
	isNew    bool // inserted by this round
	changed  bool // existing, updated by this round
	openedBy string
	prev     *uuid.UUID
	// firstResp is the time of the first reply this round recorded on it (written unless the
	// conversation has one).
	firstResp *time.Time
}

// pendingView is a customer.updated desk event whose customer view is built once the customer's
// stored identities are read: the view as it was after the event's first nAdded attachments.
type pendingView struct {
	c      *cust
	nAdded int
	name   *string
	row    int // index in out
}

// pendingUpdate is a status of a stored reply: its update runs with the round's writes, and
// out[slot] is its desk event's place (dropped if the reply has a later status).
type pendingUpdate struct {
	e       *msgEvent
	slot    int
	updated *string // the reply's conversation, when the update applied
}

// msgRow is a messages row.
type msgRow struct {
	e    *msgEvent
	conv uuid.UUID
	cust uuid.UUID
	// A reply's latest status in this round: its first news's, or a later status's.
	status         string
	statusAt, stDB time.Time // stDB: statusAt as Postgres compares it
}

// round applies the pending events it can to one snapshot and writes the result.
type round struct {
	*runTx
	custs    map[uuid.UUID]*cust
	busy     map[uuid.UUID]bool // customers another transaction holds (skipLocked)
	newCusts []*cust
	names    []*cust
	newIDs   []identRow
	convs    []*conv // changed or new, in order of first change
	msgs     []msgRow
	out      []outboxRow
	views    []pendingView
	newMsgs  map[string]int  // replies (message ids) this round records: their index in msgs
	updates  []pendingUpdate // statuses of stored replies, in order
	// saved says the savepoint "round" is set: by the first batch the round sends (load's lock,
	// before any merge it applies, or else its writes).
	saved bool
}

// savepoint queues the round's savepoint at the head of b, once.
func (rd *round) savepoint(b *pgx.Batch) {
	if !rd.saved {
		rd.saved = true
		b.Queue(`SAVEPOINT round`)
	}
}

// run applies what it can of pending and returns the events left for the next round, and
// whether it applied any.
func (rd *round) run(ctx context.Context, pending []*msgEvent) (next []*msgEvent, progress bool, err error) {
	if err := rd.load(ctx, pending); err != nil {
		return nil, false, err
	}
	var (
		dirty  = map[uuid.UUID]bool{}    // customers an applied event of this round touched
		taintC = map[uuid.UUID]bool{}    // customers whose snapshot is stale or that a waiting event touches
		taintI = map[identity.ID]bool{}  // identities a waiting or merging event carries
		taintM = map[string]bool{}       // replies a waiting status is about
		cs     = make([]uuid.UUID, 0, 4) // customers of the event, distinct
	)
	wait := func(e *msgEvent) {
		next = append(next, e)
		for _, c := range cs {
			taintC[c] = true
		}
		for _, id := range e.ids {
			taintI[id] = true
		}
		if e.st != nil {
			taintM[e.msgID] = true
		}
	}
	for _, e := range pending {
		cs = cs[:0]
		tainted := false
		for _, id := range e.sorted {
			tainted = tainted || taintI[id]
			if c, ok := rd.idents[id]; ok && !slices.Contains(cs, c) {
				cs = append(cs, c)
				tainted = tainted || taintC[c] || rd.busy[c]
			}
		}
		if e.st != nil {
			// A status of a reply this round records, or of one a waiting status is about,
			// waits for the next round, where it is a status of a stored reply.
			newMsg, isNew := rd.newMsgs[e.msgID]
			switch {
			case tainted || taintM[e.msgID]:
				wait(e)
				continue
			case isNew:
				// A reply this round records: the status goes on the row it will insert, as the
				// update would on the stored row (unless the row has a later status).
				if m := &rd.msgs[newMsg]; !m.stDB.After(e.atDB) {
					m.status, m.statusAt, m.stDB = e.st.Status, e.at, e.atDB
					rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskMessageUpdated, TypeDeskMessageUpdated, m.conv.String(), "",
						messageUpdatedData(*e.st, m.conv.String(), e.at)))
				}
				progress = true
				continue
			case rd.known[e.msgID]:
				// A stored reply: its update is one statement of the round's writes, in order
				// (nothing else the round writes touches that row), and its desk event takes its
				// place in the outbox once the update says whether it applied.
				rd.updates = append(rd.updates, pendingUpdate{e: e, slot: len(rd.out)})
				rd.out = append(rd.out, outboxRow{})
				progress = true
				continue
			case !e.firstNews():
				progress = true // a reply the store never saw, and nothing to record: no change
				continue
			case e.toErr != nil:
				return nil, false, fmt.Errorf("%s %s: %w", e.ev.Type(), e.ev.ID(), e.toErr)
			}
			// The first news of a reply: recorded like an inbound message.
		}
		merge := len(cs) > 1
		if tainted || merge {
			// A merge waits for the next round when something before it in this round touched
			// its customers, or a status update is pending: updates run with the round's writes,
			// after the merge, and would see the messages it moves where they were not yet.
			if tainted || anyOf(dirty, cs) || len(rd.updates) > 0 {
				wait(e)
				continue
			}
			// The database holds these customers' state: the handler merges them right now.
			if _, err := rd.en.dispatch(ctx, rd.tx, e.ev, &rd.out); err != nil {
				return nil, false, fmt.Errorf("%s %s: %w", e.ev.Type(), e.ev.ID(), err)
			}
			progress = true
			for _, c := range cs {
				taintC[c] = true
			}
			for _, id := range e.ids {
				taintI[id] = true
			}
			continue
		}
		c, err := rd.applyMessage(e, cs)
		if err != nil {
			return nil, false, err
		}
		dirty[c] = true
		progress = true
	}
	if err := rd.buildViews(ctx); err != nil {
		return nil, false, err
	}
	if rd.en.beforeWrite != nil {
		rd.en.beforeWrite()
	}
	return next, progress, rd.write(ctx)
}

func anyOf(set map[uuid.UUID]bool, ids []uuid.UUID) bool {
	for _, id := range ids {
		if set[id] {
			return true
		}
	}
	return false
}

// load locks the customers of pending's identities and reads them and their conversations.
func (rd *round) load(ctx context.Context, pending []*msgEvent) error {
	var threshold pgtype.Timestamptz // open conversations last active by then may be closed as idle
	if idle := rd.en.cfg.IdleTimeout; idle > 0 {
		latest := pending[0].at
		for _, e := range pending {
			if e.at.After(latest) {
				latest = e.at
			}
		}
		threshold = pgtype.Timestamptz{Time: latest.Add(-idle), Valid: true}
	}
	for attempt := 0; ; attempt++ {
		if attempt > 3 {
			return fmt.Errorf("the customers of %d events kept being merged concurrently", len(pending))
		}
		set := map[uuid.UUID]bool{}
		for _, e := range pending {
			for _, id := range e.ids {
				if c, ok := rd.idents[id]; ok {
					set[c] = true
				}
			}
		}
		ids := make([]uuid.UUID, 0, len(set))
		for c := range set {
			ids = append(ids, c)
		}
		sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
		rd.custs = make(map[uuid.UUID]*cust, len(ids))
		if len(ids) == 0 {
			return nil
		}
		b := &pgx.Batch{}
		rd.saved = false // a round that loads again sets it again: nothing it did before needs undoing
		rd.savepoint(b)
		pids := pgUUIDs(ids)
		if rd.skipLocked {
			b.Queue(sqlLockSkip, pids)
		} else {
			b.Queue(sqlLock, pids)
		}
		b.Queue(sqlConversations, pids, threshold)
		br := rd.tx.SendBatch(ctx, b)
		_, err := br.Exec() // the savepoint
		var stale bool
		if err == nil {
			stale, err = rd.readCustomers(br)
		}
		if err == nil && !stale {
			err = rd.readConversations(br)
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if !stale {
			rd.busy = map[uuid.UUID]bool{}
			for _, id := range ids {
				if rd.custs[id] == nil {
					rd.busy[id] = true
				}
			}
			return nil
		}
		// Merged by a concurrent transaction after the lookup: look up again.
		if err := rd.lookup(ctx, pending); err != nil {
			return err
		}
	}
}

func (rd *round) readCustomers(br pgx.BatchResults) (stale bool, err error) {
	rows, err := br.Query()
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		c := &cust{}
		var merged *uuid.UUID
		if err := rows.Scan(&c.id, &c.createdAt, &merged, &c.name, &c.profile, &c.sources); err != nil {
			return false, err
		}
		stale = stale || merged != nil
		rd.custs[c.id] = c
	}
	return stale, rows.Err()
}

func (rd *round) readConversations(br pgx.BatchResults) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			custID             uuid.UUID
			id, prev, latestID *uuid.UUID
			status             *string
			channels           []string
			openedAt, lastAt   *time.Time
			closedAt, latestAt *time.Time
			reason, assignee   *string
			latestKnown        bool
		)
		if err := rows.Scan(&custID, &id, &status, &channels, &openedAt, &closedAt, &reason, &lastAt, &assignee, &prev,
			&latestKnown, &latestID, &latestAt); err != nil {
			return err
		}
		c := rd.custs[custID]
		if c == nil {
			continue // held by another transaction (skipLocked)
		}
		if id != nil {
			o := &conv{id: *id, customer: custID, prev: prev}
			o.v = ConversationView{ID: id.String(), CustomerID: custID.String(), Status: *status, Channels: channels,
				OpenedAt: *openedAt, ClosedAt: closedAt, LastEventAt: *lastAt}
			if reason != nil {
				o.v.CloseReason = *reason
			}
			if assignee != nil {
				o.v.Assignee = *assignee
			}
			if prev != nil {
				o.v.PreviousID = prev.String()
			}
			c.open = o
		}
		c.latestKnown = latestKnown
		if latestID != nil {
			c.latest = &conv{id: *latestID, v: ConversationView{OpenedAt: *latestAt}}
		}
	}
	return rows.Err()
}

// applyMessage applies e, whose identities belong to at most one customer (cs), as onMessage
// would, and returns the customer.
func (rd *round) applyMessage(e *msgEvent, cs []uuid.UUID) (uuid.UUID, error) {
	var c *cust
	created := len(cs) == 0
	if created {
		c = &cust{id: derive("customer", e.ev.ID()), createdAt: e.atDB, createdBy: e.ev.ID(), isNew: true,
			profile: []byte("{}"), sources: []byte("{}"), latestKnown: true}
		rd.custs[c.id] = c
		rd.newCusts = append(rd.newCusts, c)
	} else if c = rd.custs[cs[0]]; c == nil {
		return uuid.Nil, fmt.Errorf("customer %s was not read", cs[0])
	}
	var linked []identity.ID
	for _, id := range e.sorted {
		if _, ok := rd.idents[id]; ok {
			continue
		}
		rd.idents[id] = c.id
		row := identRow{id: id, customer: c.id, source: e.channel, firstSeen: e.atDB, eventID: e.ev.ID()}
		rd.newIDs = append(rd.newIDs, row)
		c.added = append(c.added, row)
		linked = append(linked, id)
	}
	if e.m.DisplayName != "" && c.name == nil {
		name := e.m.DisplayName
		c.name = &name
		if !c.isNew && !c.nameSet {
			c.nameSet = true
			rd.names = append(rd.names, c)
		}
	}
	view, err := rd.touch(e, c)
	if err != nil {
		return c.id, err
	}
	row := msgRow{e: e, conv: c.open.id, cust: c.id}
	if e.st != nil {
		// The first reply is the conversation's first response (the database keeps an earlier one).
		if o := c.open; o.firstResp == nil {
			at := e.at
			o.firstResp = &at
		}
		if rd.newMsgs == nil {
			rd.newMsgs = map[string]int{}
		}
		rd.newMsgs[e.msgID] = len(rd.msgs)
		row.status, row.statusAt, row.stDB = e.st.Status, e.at, e.atDB
	}
	rd.msgs = append(rd.msgs, row)
	if created || len(linked) > 0 { // customerChanged
		c.needStored = c.needStored || !c.isNew
		rd.views = append(rd.views, pendingView{c: c, nAdded: len(c.added), name: c.name, row: len(rd.out)})
		rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskCustomerUpdated, TypeDeskCustomerUpdated, c.id.String(), ":"+c.id.String(), nil))
		for _, id := range linked {
			if id.Kind != identity.Phone && id.Kind != identity.Email {
				continue
			}
			rd.out = append(rd.out, newOutboxRow(e.ev, TypeCRMLookupRequested, SubjectCRMLookup, c.id.String(), ":"+derive("lookup", id.String()).String(),
				CRMLookupRequest{CustomerID: c.id.String(), ConversationID: view.ID, Query: Identity{Kind: id.Kind, Value: id.Value}}))
		}
	}
	added := addedMessage{eventID: e.msgID, conv: view, customer: c.id, channel: e.channel, inbound: e.st == nil, who: e.ids[0],
		body: e.body, at: e.at, displayName: e.m.DisplayName}
	if e.st != nil {
		added.status = e.st.Status
	}
	rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskMessageAdded, TypeDeskMessageAdded, view.ID, "", messageAddedData(added)))
	return c.id, nil
}

// touch is the handlers' touch on the snapshot: it returns the view of c's open conversation
// after recording e on it, closing an idle one and opening a new one as needed.
func (rd *round) touch(e *msgEvent, c *cust) (ConversationView, error) {
	ch := e.channel
	if o := c.open; o != nil && rd.en.cfg.IdleTimeout > 0 && e.at.Sub(o.v.LastEventAt) > rd.en.cfg.IdleTimeout {
		closedAt := o.v.LastEventAt.Add(rd.en.cfg.IdleTimeout)
		at := dbTime(closedAt)
		o.v.Status, o.v.ClosedAt, o.v.CloseReason = "closed", &at, "idle"
		rd.changed(o)
		rd.out = append(rd.out, outboxRow{id: "unifier:desk.conversation.closed:" + o.id.String(), subject: TypeDeskConversationClosed,
			typ: TypeDeskConversationClosed, ceSubject: o.id.String(), at: closedAt,
			data: deskConversation{Conversation: snapshot(o.v), Reason: "idle"}})
		c.open = nil
	}
	if c.open == nil {
		if !c.latestKnown {
			return ConversationView{}, fmt.Errorf("customer %s needs a new conversation but its latest was not read", c.id)
		}
		id := derive("conversation", e.ev.ID(), c.id.String())
		o := &conv{id: id, customer: c.id, isNew: true, openedBy: e.ev.ID()}
		o.v = ConversationView{ID: id.String(), CustomerID: c.id.String(), Status: "open", Channels: []string{ch},
			OpenedAt: e.atDB, LastEventAt: e.atDB}
		if p := c.latest; p != nil {
			o.prev, o.v.PreviousID = &p.id, p.id.String()
		}
		rd.convs = append(rd.convs, o)
		c.open = o
		if p := c.latest; p == nil || o.v.OpenedAt.After(p.v.OpenedAt) ||
			(o.v.OpenedAt.Equal(p.v.OpenedAt) && bytes.Compare(o.id[:], p.id[:]) > 0) {
			c.latest = o
		}
		view := snapshot(o.v)
		rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskConversationOpened, TypeDeskConversationOpened, id.String(), "",
			deskConversation{Conversation: view}))
		return view, nil
	}
	o := c.open
	added := !slices.Contains(o.v.Channels, ch)
	if added {
		o.v.Channels = append(slices.Clip(o.v.Channels), ch)
	}
	if e.atDB.After(o.v.LastEventAt) {
		o.v.LastEventAt = e.atDB
	}
	rd.changed(o)
	view := snapshot(o.v)
	if added {
		rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskConversationUpdated, TypeDeskConversationUpdated, o.id.String(), "",
			deskConversation{Conversation: view, Change: "channel added: " + ch}))
	}
	return view, nil
}

func (rd *round) changed(o *conv) {
	if !o.isNew && !o.changed {
		o.changed = true
		rd.convs = append(rd.convs, o)
	}
}

// snapshot copies a view so that later changes do not show in an event already emitted.
func snapshot(v ConversationView) ConversationView {
	v.Channels = slices.Clone(v.Channels)
	if v.ClosedAt != nil {
		t := *v.ClosedAt
		v.ClosedAt = &t
	}
	return v
}

// buildViews reads the stored identities of the existing customers whose view an event
// emitted, and fills in those views.
func (rd *round) buildViews(ctx context.Context) error {
	var need []uuid.UUID
	for _, c := range rd.custs {
		if c.needStored {
			need = append(need, c.id)
		}
	}
	if len(need) > 0 {
		rows, err := rd.tx.Query(ctx, sqlIdentitiesOf, pgUUIDs(need))
		if err != nil {
			return err
		}
		for rows.Next() {
			var r identRow
			if err := rows.Scan(&r.customer, &r.id.Kind, &r.id.Value, &r.source, &r.firstSeen); err != nil {
				rows.Close()
				return err
			}
			if c := rd.custs[r.customer]; c != nil {
				c.stored = append(c.stored, r)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for _, p := range rd.views {
		c := p.c
		v := CustomerView{ID: c.id.String(), CreatedAt: c.createdAt}
		if p.name != nil {
			v.DisplayName = *p.name
		}
		_ = json.Unmarshal(c.profile, &v.Profile)
		_ = json.Unmarshal(c.sources, &v.ProfileSources)
		idents := make([]identRow, 0, len(c.stored)+p.nAdded)
		idents = append(append(idents, c.stored...), c.added[:p.nAdded]...)
		// The order of customerView: first seen, then kind and value in byte order.
		sort.SliceStable(idents, func(i, j int) bool {
			a, b := idents[i], idents[j]
			if !a.firstSeen.Equal(b.firstSeen) {
				return a.firstSeen.Before(b.firstSeen)
			}
			if a.id.Kind != b.id.Kind {
				return a.id.Kind < b.id.Kind
			}
			return a.id.Value < b.id.Value
		})
		v.Identities = make([]IdentityView, len(idents))
		for i, r := range idents {
			v.Identities[i] = IdentityView{Kind: r.id.Kind, Masked: identity.Mask(r.id), Source: r.source}
		}
		rd.out[p.row].data = deskCustomer{Customer: v}
	}
	return nil
}

// write sends every change of the round in one round trip.
func (rd *round) write(ctx context.Context) error {
	b := &pgx.Batch{}
	saving := !rd.saved
	rd.savepoint(b)
	if n := len(rd.newCusts); n > 0 {
		ids, ats, evs, names := make([]pgtype.UUID, n), make([]time.Time, n), make([]string, n), make([]pgtype.Text, n)
		for i, c := range rd.newCusts {
			ids[i], ats[i], evs[i] = pgUUID(c.id), c.createdAt, c.createdBy
			if c.name != nil {
				names[i] = pgtype.Text{String: *c.name, Valid: true}
			}
		}
		b.Queue(sqlInsertCustomers, ids, ats, evs, names)
	}
	if n := len(rd.names); n > 0 {
		ids, names := make([]pgtype.UUID, n), make([]string, n)
		for i, c := range rd.names {
			ids[i], names[i] = pgUUID(c.id), *c.name
		}
		b.Queue(sqlSetNames, ids, names)
	}
	if n := len(rd.newIDs); n > 0 {
		kinds, values, custs, sources, seen, evs := make([]string, n), make([]string, n), make([]pgtype.UUID, n), make([]string, n), make([]time.Time, n), make([]string, n)
		for i, r := range rd.newIDs {
			kinds[i], values[i], custs[i], sources[i], seen[i], evs[i] = r.id.Kind, r.id.Value, pgUUID(r.customer), r.source, r.firstSeen, r.eventID
		}
		b.Queue(sqlInsertIdentities, kinds, values, custs, sources, seen, evs)
	}
	var upd, ins []*conv
	for _, o := range rd.convs {
		if o.isNew {
			ins = append(ins, o)
		} else {
			upd = append(upd, o)
		}
	}
	// Updates first: an idle conversation closes before its successor opens (one open per customer).
	if n := len(upd); n > 0 {
		ids, statuses, closed, reasons, channels, last := make([]pgtype.UUID, n), make([]string, n), make([]pgtype.Timestamptz, n), make([]pgtype.Text, n), make([]string, n), make([]time.Time, n)
		first := make([]pgtype.Timestamptz, n)
		for i, o := range upd {
			ids[i], statuses[i], last[i], first[i] = pgUUID(o.id), o.v.Status, o.v.LastEventAt, pgTime(o.firstResp)
			closed[i], reasons[i] = closedArgs(o.v)
			ch, err := json.Marshal(o.v.Channels)
			if err != nil {
				return err
			}
			channels[i] = string(ch)
		}
		b.Queue(sqlUpdateConversations, ids, statuses, closed, reasons, channels, last, first)
	}
	if n := len(ins); n > 0 {
		ids, custs, statuses, opened, evs, channels, last, prev, closed, reasons := make([]pgtype.UUID, n), make([]pgtype.UUID, n),
			make([]string, n), make([]time.Time, n), make([]string, n), make([]string, n), make([]time.Time, n),
			make([]pgtype.UUID, n), make([]pgtype.Timestamptz, n), make([]pgtype.Text, n)
		first := make([]pgtype.Timestamptz, n)
		for i, o := range ins {
			ids[i], custs[i], statuses[i], opened[i], evs[i], last[i] = pgUUID(o.id), pgUUID(o.customer), o.v.Status, o.v.OpenedAt, o.openedBy, o.v.LastEventAt
			first[i] = pgTime(o.firstResp)
			if o.prev != nil {
				prev[i] = pgUUID(*o.prev)
			}
			closed[i], reasons[i] = closedArgs(o.v)
			ch, err := json.Marshal(o.v.Channels)
			if err != nil {
				return err
			}
			channels[i] = string(ch)
		}
		b.Queue(sqlInsertConversations, ids, custs, statuses, opened, evs, channels, last, prev, closed, reasons, first)
	}
	if n := len(rd.msgs); n > 0 {
		evs, convs, custs, channels, kinds, values, bodies, ats := make([]string, n), make([]pgtype.UUID, n), make([]pgtype.UUID, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n)
		sts, stAts := make([]pgtype.Text, n), make([]pgtype.Timestamptz, n)
		for i, m := range rd.msgs {
			e := m.e
			evs[i], convs[i], custs[i], channels[i] = e.msgID, pgUUID(m.conv), pgUUID(m.cust), e.channel
			kinds[i], values[i], bodies[i], ats[i] = e.ids[0].Kind, e.ids[0].Value, string(e.body), e.at
			if e.st != nil {
				sts[i], stAts[i] = pgtype.Text{String: m.status, Valid: true}, pgtype.Timestamptz{Time: m.statusAt, Valid: true}
			}
		}
		b.Queue(sqlInsertMessages, evs, convs, custs, channels, kinds, values, bodies, ats, sts, stAts)
	}
	if len(rd.updates) > 0 {
		// The updates' outcomes decide which of their desk events exist: the outbox follows in
		// a second round trip.
		for i := range rd.updates {
			u := &rd.updates[i]
			b.Queue(sqlStatusUpdate, u.e.msgID, u.e.st.Status, u.e.at).QueryRow(func(row pgx.Row) error {
				var known bool
				return row.Scan(&u.updated, &known)
			})
		}
		if err := rd.tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		rd.fillUpdates()
		b, saving = &pgx.Batch{}, false
	}
	if err := queueOutbox(b, rd.out); err != nil {
		return err
	}
	if b.Len() == 0 || (saving && b.Len() == 1) {
		return nil // nothing to write, so nothing to undo
	}
	return rd.tx.SendBatch(ctx, b).Close()
}

// fillUpdates puts the desk events of the status updates that applied in their places in out,
// and drops the places of those that did not (the reply had a later status).
func (rd *round) fillUpdates() {
	drop := map[int]bool{}
	for _, u := range rd.updates {
		if u.updated == nil {
			drop[u.slot] = true
			continue
		}
		rd.out[u.slot] = newOutboxRow(u.e.ev, TypeDeskMessageUpdated, TypeDeskMessageUpdated, *u.updated, "",
			messageUpdatedData(*u.e.st, *u.updated, u.e.at))
	}
	if len(drop) > 0 {
		kept := rd.out[:0]
		for i, r := range rd.out {
			if !drop[i] {
				kept = append(kept, r)
			}
		}
		rd.out = kept
	}
}

func pgUUID(u uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: u, Valid: true} }

func pgTime(t *time.Time) pgtype.Timestamptz {
	if t == nil {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: *t, Valid: true}
}

func pgUUIDs(us []uuid.UUID) []pgtype.UUID {
	out := make([]pgtype.UUID, len(us))
	for i, u := range us {
		out[i] = pgUUID(u)
	}
	return out
}

func closedArgs(v ConversationView) (pgtype.Timestamptz, pgtype.Text) {
	var at pgtype.Timestamptz
	var reason pgtype.Text
	if v.ClosedAt != nil {
		at = pgtype.Timestamptz{Time: *v.ClosedAt, Valid: true}
	}
	if v.CloseReason != "" {
		reason = pgtype.Text{String: v.CloseReason, Valid: true}
	}
	return at, reason
}

// queueOutbox queues the statement writing rows as one outbox batch, in order.
func queueOutbox(b *pgx.Batch, rows []outboxRow) error {
	if len(rows) == 0 {
		return nil
	}
	enc, err := encodeOutbox(rows)
	if err != nil {
		return err
	}
	b.Queue(sqlInsertOutbox, len(rows), enc)
	return nil
}
