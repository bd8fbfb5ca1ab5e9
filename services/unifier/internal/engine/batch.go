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

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/identity"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

// The one path: a batch's events applied in one transaction with a fixed number of statements
// per round, whatever the batch's length.
//
//  1. One round trip records every event in processed_events (those already there are skipped:
//     redeliveries and replays) and looks up every identity of every event, the replies its
//     statuses are about, and the conversations, merges and customers its commands name.
//  2. One round trip locks all the customers those identities belong to, in id order — every
//     transaction locks its customers in one statement in the same order, so two of them never
//     wait on each other in a cycle — and reads their open conversations.
//  3. In Go, the events are applied in order to that snapshot: new customers and identities,
//     display names, idle closes, new and touched conversations, messages, and the desk events
//     with the views they carry. The result is exactly what applying the events one after the
//     other would have written (the stores recorded in testdata hold it to that).
//  4. One round trip writes it all: one multi-row INSERT ... SELECT FROM unnest(...) or UPDATE per
//     table, the outbox rows in event order.
//
// Merges are applied on the snapshot too (merge.go): an event whose identities belong to two or
// more customers reads what the merge moves, folds the customers into the oldest in Go, and
// queues the merge's writes ahead of the round's others — as soon as nothing that comes before it
// in the run touches those customers; otherwise it waits for the next round, and so does every
// later event that touches its customers or identities. Events that touch disjoint customers and
// identities commute, so the result is still that of applying the run in order. A round runs
// steps 2 to 4 again for the events that waited: usually one or two rounds. A command (a desk
// command or a tool result, commands.go) ends the round before it and has one of its own.
//
// Failures: deadlocks, serialization failures and unique violations (two transactions attaching
// the same new identity) rerun the transaction. Any other failure splits the run in two and
// applies each half on its own, down to the single events that fail: the others commit.

// msgEvent is an event of a batch — an inbound message, a delivery status of an outbound one,
// or a command — decoded and normalised before any database work.
type msgEvent struct {
	i      int // index in the batch
	ev     event.Event
	m      MessageReceived // a message
	st     *StatusUpdated  // a status (m is then zero)
	toErr  error           // a status: why its recipient is not a valid identity (matters if it is the first news)
	ids    []identity.ID   // normalised (Engine.key), the sender (recipient) first
	sorted []identity.ID   // ids in byte order: the order they are attached in
	// secrets of the Indexed ids (Engine.normalize): what their sealed column is made of.
	secrets map[identity.ID]string
	at      time.Time // when it was sent (UTC); a command's event time
	atDB    time.Time // at as Postgres stores it and pgx returns it
	// What the messages row and the desk event hold: for a message, the event itself; for a
	// status that is the first news of a reply, that reply.
	msgID, channel string
	body           json.RawMessage
	trace          string     // W3C traceparent of its delivery's consumer span: what its outputs continue
	cmd            *command   // a command (then m is zero and st nil)
	call           *callEvent // a call event (calls.go; then m is zero and st nil)
}

// prepareMessage decodes and normalises a message; its errors are permanent.
func (en *Engine) prepareMessage(i int, d bus.Delivery) (*msgEvent, error) {
	var m MessageReceived
	if err := decode(d.Event, &m); err != nil {
		return nil, err
	}
	ids, secrets, err := en.normalize(m.From, m.Identities)
	if err != nil {
		return nil, err
	}
	if len(m.Message) == 0 {
		return nil, bus.Permanent(errors.New("the message has no body"))
	}
	at := eventTime(d.Event, m.SentAt)
	return &msgEvent{i: i, ev: d.Event, m: m, ids: ids, sorted: sortIDs(ids), secrets: secrets, at: at, atDB: dbTime(at),
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
		if e.ids, e.secrets, e.toErr = en.normalize(*s.To, nil); e.toErr == nil {
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
	// has, as last looked up.
	known map[string]bool
	// skipLocked makes the transaction leave out the events of customers another transaction
	// holds (they are returned as left over) instead of waiting for it.
	skipLocked bool
	leftover   []*msgEvent
	// Whom the commands are about, as last looked up: the customer of each conversation and of
	// each merge (from, into) they name, and the live customer of each customer they name.
	convCust   map[uuid.UUID]uuid.UUID
	mergeCusts map[uuid.UUID][2]uuid.UUID
	roots      map[uuid.UUID]uuid.UUID
	// knownCalls holds the calls of the run's call events the store has, as last looked up.
	knownCalls map[string]store.KnownCall
}

// apply applies evs in tx and returns how many outbox rows it wrote.
func (r *runTx) apply(ctx context.Context, evs []*msgEvent) (int, error) {
	ids, types := make([]string, len(evs)), make([]string, len(evs))
	for i, e := range evs {
		ids[i], types[i] = e.ev.ID(), e.ev.Type()
	}
	b := &pgx.Batch{}
	fresh := make(map[string]bool, len(evs))
	store.QueueRecord(b, ids, types, func(id string) { fresh[id] = true })
	r.queueLookup(b, evs)
	if err := r.tx.SendBatch(ctx, b).Close(); err != nil {
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
			if rerr := store.RollbackRound(ctx, r.tx); rerr != nil {
				return wrote, errors.Join(err, rerr)
			}
			continue // the loop's post statement makes the next iteration look the identities up again
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
			if err := store.Unrecord(ctx, r.tx, ids); err != nil {
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
	return r.tx.SendBatch(ctx, b).Close()
}

// queueLookup queues the lookups of a round: the customers of evs's identities, which replies
// their statuses are about the store has, and whom their commands are about.
func (r *runTx) queueLookup(b *pgx.Batch, evs []*msgEvent) {
	kinds, values := identityArgs(evs)
	r.idents = map[identity.ID]uuid.UUID{}
	store.QueueLookup(b, kinds, values, func(i store.Identity) { r.idents[identity.ID{Kind: i.Kind, Value: i.Value}] = i.Customer })
	var replies []string
	for _, e := range evs {
		if e.st != nil {
			replies = append(replies, e.msgID)
		}
	}
	r.known = map[string]bool{}
	if len(replies) > 0 {
		store.QueueKnownMessages(b, replies, func(id string) { r.known[id] = true })
	}
	var calls []string
	for _, e := range evs {
		if e.call != nil {
			calls = append(calls, e.call.CallID)
		}
	}
	r.knownCalls = map[string]store.KnownCall{}
	if len(calls) > 0 {
		store.QueueKnownCalls(b, calls, func(c store.KnownCall) { r.knownCalls[c.ID] = c })
	}
	r.queueCommandLookup(b, evs)
}

// identRow is an identity as the customer view needs it.
type identRow struct {
	id        identity.ID
	customer  uuid.UUID
	source    string
	firstSeen time.Time // as Postgres returns it
	eventID   string
	secret    string // new rows: what the sealed column is made of (Engine.sealed)
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
	storedRead  bool // stored was read (by a merge)
	// A merging customer's conversations and its open conversation's messages (mergeRead).
	convs    []store.ConversationRef
	openMsgs []string
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
	// ringing, if set, makes the event an omni.desk.call.ringing with the view as its customer.
	ringing *deskCallRinging
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
	merges   []store.Merge   // in order
	// mergedInto maps the customers merged this round to the customer they were merged into.
	mergedInto map[uuid.UUID]uuid.UUID
	unmerges   []store.Unmerge
	profiles   []profileUpdate
	tools      []toolRow
	summaries  []store.Summary
	callRows   []store.Call   // one per call, in order of first event
	callIdx    map[string]int // call id -> index in callRows
	pending    []*msgEvent    // the round's events
	// saved says the savepoint "round" is set: by the first batch the round sends (load's lock,
	// before any merge it applies, or else its writes).
	saved bool
}

// traces maps the round's events' ids to the trace contexts their outputs continue.
func (rd *round) traces() map[string]string {
	out := make(map[string]string, len(rd.pending))
	for _, e := range rd.pending {
		if e.trace != "" {
			out[e.ev.ID()] = e.trace
		}
	}
	return out
}

// savepoint queues the round's savepoint at the head of b, once.
func (rd *round) savepoint(b *pgx.Batch) {
	if !rd.saved {
		rd.saved = true
		store.QueueSavepoint(b)
	}
}

// run applies what it can of pending and returns the events left for the next round, and
// whether it applied any.
func (rd *round) run(ctx context.Context, pending []*msgEvent) (next []*msgEvent, progress bool, err error) {
	// A command is applied in a round of its own: the round ends before the first command, or
	// with it when it comes first.
	var rest []*msgEvent
	for k, e := range pending {
		if e.cmd != nil {
			k = max(k, 1)
			pending, rest = pending[:k], pending[k:]
			break
		}
	}
	defer func() { next = append(next, rest...) }()
	rd.pending = pending
	if err := rd.load(ctx, pending); err != nil {
		return nil, false, err
	}
	rd.mergedInto = map[uuid.UUID]uuid.UUID{}
	if e := pending[0]; e.cmd != nil {
		cs, _ := rd.commandCustomers(e)
		for _, id := range e.ids {
			if c, ok := rd.idents[id]; ok {
				cs = append(cs, c)
			}
		}
		if anyOf(rd.busy, cs) {
			return []*msgEvent{e}, false, nil // its customers are held by another transaction
		}
		if err := rd.applyCommand(ctx, e); err != nil {
			return nil, false, fmt.Errorf("%s %s: %w", e.ev.Type(), e.ev.ID(), err)
		}
		if err := rd.buildViews(ctx); err != nil {
			return nil, false, err
		}
		return nil, true, rd.write(ctx)
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
		if e.call != nil && !tainted && len(cs) <= 1 && rd.knownCall(e) {
			progress = true
			continue
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
			// The database holds these customers' state: they merge on the snapshot now.
			into, err := rd.mergeCustomers(ctx, e, cs, "identity link via "+e.channel+" message")
			if err != nil {
				return nil, false, fmt.Errorf("%s %s: %w", e.ev.Type(), e.ev.ID(), err)
			}
			if _, err := rd.applyMessage(e, []uuid.UUID{into}); err != nil {
				return nil, false, err
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
	var threshold *time.Time // open conversations last active by then may be closed as idle
	if idle := rd.en.cfg.IdleTimeout; idle > 0 {
		latest := pending[0].at
		for _, e := range pending {
			if e.at.After(latest) {
				latest = e.at
			}
		}
		latest = latest.Add(-idle)
		threshold = &latest
	}
	for attempt := 0; ; attempt++ {
		if attempt > 3 {
			return fmt.Errorf("the customers of %d events kept being merged concurrently", len(pending))
		}
		set, mayBeMerged := map[uuid.UUID]bool{}, map[uuid.UUID]bool{}
		for _, e := range pending {
			for _, id := range e.ids {
				if c, ok := rd.idents[id]; ok {
					set[c] = true
				}
			}
			if e.cmd != nil {
				cs, merged := rd.commandCustomers(e)
				for _, c := range cs {
					set[c], mayBeMerged[c] = true, merged
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
		stale, err := rd.lock(ctx, ids, threshold, mayBeMerged)
		if err != nil || !stale {
			return err
		}
		// Merged by a concurrent transaction after the lookup: look up again.
		if err := rd.lookup(ctx, pending); err != nil {
			return err
		}
	}
}

// lock locks the customers ids (in id order) and reads them and their open conversations, and
// for those whose open conversation is idle by threshold, or that have none, their latest.
// Customers another transaction holds are busy (skipLocked). Stale says one was merged since
// it was looked up, unless mayBeMerged says it may be.
func (rd *round) lock(ctx context.Context, ids []uuid.UUID, threshold *time.Time, mayBeMerged map[uuid.UUID]bool) (stale bool, err error) {
	b := &pgx.Batch{}
	rd.saved = false // a round that loads again sets it again: nothing it did before needs undoing
	rd.savepoint(b)
	store.QueueLockCustomers(b, ids, rd.skipLocked, func(r store.Customer) {
		stale = stale || (r.MergedInto != nil && !mayBeMerged[r.ID])
		rd.custs[r.ID] = &cust{id: r.ID, createdAt: r.CreatedAt, name: r.Name, profile: r.Profile, sources: r.Sources}
	})
	store.QueueOpenConversations(b, ids, threshold, func(r store.OpenConversation) {
		c := rd.custs[r.Customer]
		if c == nil || stale {
			return // held by another transaction (skipLocked), or read again
		}
		if o := r.Open; o != nil {
			c.open = &conv{id: o.ID, customer: c.id, prev: o.PreviousID, v: conversationView(*o)}
		}
		c.latestKnown = r.LatestKnown
		if l := r.Latest; l != nil {
			c.latest = &conv{id: l.ID, v: ConversationView{OpenedAt: l.OpenedAt}}
		}
	})
	err = rd.tx.SendBatch(ctx, b).Close()
	rd.busy = map[uuid.UUID]bool{}
	for _, id := range ids {
		if rd.custs[id] == nil {
			rd.busy[id] = true
		}
	}
	return stale, err
}

// applyMessage applies message (or first news of a reply) e, whose identities belong to at
// most one customer (cs) — the event's merges are done — and returns the customer.
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
	linked := rd.link(e, c, e.channel)
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
	if e.call == nil {
		rd.msgs = append(rd.msgs, row)
	}
	if created || len(linked) > 0 { // the customer changed: its view, and the CRM asked about new phones and emails
		rd.customerUpdated(e, c)
		for _, id := range linked {
			if id.Kind != identity.Phone && id.Kind != identity.Email {
				continue
			}
			query, err := rd.en.lookupQuery(id, e.secrets[id])
			if err != nil {
				return uuid.Nil, err
			}
			rd.out = append(rd.out, newOutboxRow(e.ev, TypeCRMLookupRequested, SubjectCRMLookup, c.id.String(), ":"+derive("lookup", id.String()).String(),
				CRMLookupRequest{CustomerID: c.id.String(), ConversationID: view.ID, Query: query}))
		}
	}
	if e.call != nil {
		rd.newCall(e, c, view)
		return c.id, nil
	}
	added := addedMessage{eventID: e.msgID, conv: view, customer: c.id, channel: e.channel, inbound: e.st == nil, who: e.ids[0],
		body: e.body, at: e.at, displayName: e.m.DisplayName}
	if e.st != nil {
		added.status = e.st.Status
	}
	rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskMessageAdded, TypeDeskMessageAdded, view.ID, "", messageAddedData(added)))
	return c.id, nil
}

// touch records activity on the snapshot: it returns the view of c's open conversation
// after recording e on it, closing an idle one and opening a new one as needed.
func (rd *round) touch(e *msgEvent, c *cust) (ConversationView, error) {
	ch := e.channel
	if o := c.open; o != nil && rd.idle(o, e.at) {
		rd.closeIdle(c)
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

// idle says whether o has been idle longer than the idle timeout at time at.
func (rd *round) idle(o *conv, at time.Time) bool {
	return rd.en.cfg.IdleTimeout > 0 && at.Sub(o.v.LastEventAt) > rd.en.cfg.IdleTimeout
}

// closeIdle closes c's open conversation as idle. The closing time recorded is its last
// activity + the idle timeout, so the result does not depend on when it is noticed.
func (rd *round) closeIdle(c *cust) {
	o := c.open
	closedAt := o.v.LastEventAt.Add(rd.en.cfg.IdleTimeout)
	at := dbTime(closedAt)
	o.v.Status, o.v.ClosedAt, o.v.CloseReason = "closed", &at, "idle"
	rd.changed(o)
	rd.out = append(rd.out, outboxRow{id: "unifier:desk.conversation.closed:" + o.id.String(), subject: TypeDeskConversationClosed,
		typ: TypeDeskConversationClosed, ceSubject: o.id.String(), at: closedAt,
		data: deskConversation{Conversation: snapshot(o.v), Reason: "idle"}})
	c.open = nil
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
		if c.needStored && !c.storedRead {
			need = append(need, c.id)
		}
	}
	if len(need) > 0 {
		b := &pgx.Batch{}
		store.QueueIdentitiesOf(b, need, func(i store.Identity) {
			if c := rd.custs[i.Customer]; c != nil {
				c.stored = append(c.stored, identRowOf(i))
			}
		})
		if err := rd.tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
	}
	for _, p := range rd.views {
		c := p.c
		idents := make([]identRow, 0, len(c.stored)+p.nAdded)
		idents = append(append(idents, c.stored...), c.added[:p.nAdded]...)
		view := customerViewOf(c, idents, p.name)
		if p.ringing != nil {
			r := *p.ringing
			r.Customer = view
			rd.out[p.row].data = r
			continue
		}
		rd.out[p.row].data = deskCustomer{Customer: view}
	}
	return nil
}

// customerViewOf is what the desk shows of customer c with identities idents and name: the
// identities masked, in the order they were first seen, ties in byte order.
func customerViewOf(c *cust, idents []identRow, name *string) CustomerView {
	v := CustomerView{ID: c.id.String(), CreatedAt: c.createdAt}
	if name != nil {
		v.DisplayName = *name
	}
	_ = json.Unmarshal(c.profile, &v.Profile)
	_ = json.Unmarshal(c.sources, &v.ProfileSources)
	idents = slices.Clone(idents)
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
	return v
}

// write sends every change of the round in one round trip.
func (rd *round) write(ctx context.Context) error {
	b := &pgx.Batch{}
	saving := !rd.saved
	rd.savepoint(b)
	rd.queueMerges(b)
	rd.queueCommands(b)
	newCusts := make([]store.NewCustomer, len(rd.newCusts))
	for i, c := range rd.newCusts {
		newCusts[i] = store.NewCustomer{ID: c.id, CreatedAt: c.createdAt, CreatedBy: c.createdBy, Name: c.name}
	}
	store.QueueInsertCustomers(b, newCusts)
	names := make([]store.Named, len(rd.names))
	for i, c := range rd.names {
		names[i] = store.Named{ID: c.id, Name: *c.name}
	}
	store.QueueSetNames(b, names)
	idents := make([]store.Identity, len(rd.newIDs))
	for i, r := range rd.newIDs {
		sealed, err := rd.en.sealed(r.id.Kind, r.secret)
		if err != nil {
			return err
		}
		idents[i] = store.Identity{Kind: r.id.Kind, Value: r.id.Value, Sealed: sealed, Customer: r.customer, Source: r.source, FirstSeen: r.firstSeen, EventID: r.eventID}
	}
	store.QueueInsertIdentities(b, idents)
	var upd, ins []store.ConversationWrite
	for _, o := range rd.convs {
		w := store.ConversationWrite{ID: o.id, Customer: o.customer, Status: o.v.Status, OpenedAt: o.v.OpenedAt, OpenedBy: o.openedBy,
			Channels: o.v.Channels, LastEventAt: o.v.LastEventAt, PreviousID: o.prev, ClosedAt: o.v.ClosedAt, CloseReason: o.v.CloseReason,
			FirstResponseAt: o.firstResp}
		if o.isNew {
			ins = append(ins, w)
		} else {
			upd = append(upd, w)
		}
	}
	// Updates first: an idle conversation closes before its successor opens (one open per customer).
	if err := store.QueueUpdateConversations(b, upd); err != nil {
		return err
	}
	if err := store.QueueInsertConversations(b, ins); err != nil {
		return err
	}
	msgs := make([]store.Message, len(rd.msgs))
	for i, m := range rd.msgs {
		e := m.e
		msgs[i] = store.Message{EventID: e.msgID, Conversation: m.conv, Customer: m.cust, Channel: e.channel,
			IdentityKind: e.ids[0].Kind, IdentityValue: e.ids[0].Value, Body: e.body, SentAt: e.at}
		if e.st != nil {
			msgs[i].Status, msgs[i].StatusAt = &m.status, m.statusAt
		}
	}
	store.QueueInsertMessages(b, msgs)
	store.QueueUpsertCalls(b, rd.callRows)
	if len(rd.updates) > 0 {
		// The updates' outcomes decide which of their desk events exist: the outbox follows in
		// a second round trip.
		for i := range rd.updates {
			u := &rd.updates[i]
			store.QueueStatusUpdate(b, u.e.msgID, u.e.st.Status, u.e.at, func(conv *string) { u.updated = conv })
		}
		if err := rd.tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		rd.fillUpdates()
		b, saving = &pgx.Batch{}, false
	}
	rd.en.sealPartitionKeys(rd.out)
	if err := queueOutbox(b, rd.out, rd.traces()); err != nil {
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

// queueOutbox queues the statement writing rows as one outbox batch, in order; traces are the
// trace contexts of the events that caused them, by event id.
func queueOutbox(b *pgx.Batch, rows []outboxRow, traces map[string]string) error {
	if len(rows) == 0 {
		return nil
	}
	enc, err := encodeOutbox(rows, traces)
	if err != nil {
		return err
	}
	store.QueueOutbox(b, len(rows), enc)
	return nil
}

// identRowOf is a stored identity as a view needs it.
func identRowOf(i store.Identity) identRow {
	return identRow{id: identity.ID{Kind: i.Kind, Value: i.Value}, customer: i.Customer, source: i.Source, firstSeen: i.FirstSeen}
}
