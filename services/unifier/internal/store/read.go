package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// The reads of the engine's rounds. Each Queue function queues one statement on a batch and
// hands its rows, scanned, to fn when the batch's results are read (in queue order, on Close).
//
// Every statement that reads rows by a list of keys is written as a lateral subquery per key with
// OFFSET 0: a primary-key or index probe per key whatever plan is cached. The statements are
// prepared once per connection, and Postgres keeps the generic plan it chose while a table was
// still small (until an ANALYZE), which for a plain join or = ANY($1) is a scan of the whole
// table — 1.2 ms per identity lookup at 1,000 events/s in the bench, most of Postgres's time,
// where a probe costs 0.06 ms. OFFSET 0 keeps the subquery from being flattened into such a join.

// Customer is a customer as a round locks it.
type Customer struct {
	ID               uuid.UUID
	CreatedAt        time.Time
	MergedInto       *uuid.UUID
	Name             *string
	Profile, Sources []byte // JSON objects
}

// Conversation is a conversation as the desk shows it.
type Conversation struct {
	ID, Customer uuid.UUID
	Status       string
	Channels     []string
	OpenedAt     time.Time
	ClosedAt     *time.Time
	CloseReason  string
	LastEventAt  time.Time
	Assignee     string
	PreviousID   *uuid.UUID
}

// ConversationRef is what a new conversation or a merge needs of a conversation.
type ConversationRef struct {
	ID       uuid.UUID
	Status   string
	OpenedAt time.Time
}

// OpenConversation is a customer's open conversation, if any, and — when it has none, or it was
// idle by the threshold read with it — its latest conversation that was not merged.
type OpenConversation struct {
	Customer    uuid.UUID
	Open        *Conversation
	LatestKnown bool             // Latest was read
	Latest      *ConversationRef // nil: the customer has none
}

// Identity is an identities row.
type Identity struct {
	Kind, Value string // Value: normalised, or identity.Indexed where personal data is sealed
	Sealed      string // the ciphertext of the normalised value of an Indexed identity (written, not read)
	Customer    uuid.UUID
	Source      string
	FirstSeen   time.Time
	EventID     string // written, not read
}

// Key is an identity's primary key, as merges record it.
type Key struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// MovedMessage is a message a merge moved into the surviving customer's open conversation.
type MovedMessage struct {
	EventID        string    `json:"event_id"`
	ConversationID uuid.UUID `json:"conversation_id"`
}

// MergeRecord is what a merge recorded: what moved, and the surviving customer's profile before.
type MergeRecord struct {
	Moved                        []Key
	Conversations                []uuid.UUID
	Messages                     []MovedMessage
	MergedConversation           *uuid.UUID
	ProfileBefore, SourcesBefore json.RawMessage
	UndoneAt                     *time.Time
}

const (
	sqlRecord = `INSERT INTO processed_events (event_id, type) SELECT * FROM unnest($1::text[], $2::text[])
		ON CONFLICT DO NOTHING RETURNING event_id`
	sqlUnrecord = `DELETE FROM processed_events WHERE event_id = ANY($1)`
	sqlLookup   = `SELECT i.kind, i.value, i.customer_id FROM unnest($1::text[], $2::text[]) AS q(kind, value)
		CROSS JOIN LATERAL (SELECT kind, value, customer_id FROM identities WHERE kind = q.kind AND value = q.value OFFSET 0) i`
	sqlKnownMessages = `SELECT m.event_id FROM unnest($1::text[]) AS q(id)
		CROSS JOIN LATERAL (SELECT event_id FROM messages WHERE event_id = q.id OFFSET 0) m`
	// The open conversation of each customer and, when the customer may need a new one (none is
	// open, or the open one may be idle by $2), its latest conversation, which a new one follows.
	sqlOpenConversations = `SELECT q.id, o.id, o.status, o.channels, o.opened_at, o.closed_at, o.close_reason, o.last_event_at,
			o.assignee, o.previous_id, coalesce(o.id IS NULL OR o.last_event_at <= $2, false), l.id, l.opened_at
		FROM unnest($1::uuid[]) AS q(id)
		LEFT JOIN LATERAL (SELECT * FROM conversations WHERE customer_id = q.id AND status = 'open' OFFSET 0) o ON true
		LEFT JOIN LATERAL (SELECT c.id, c.opened_at FROM conversations c
			WHERE c.customer_id = q.id AND c.status <> 'merged' AND (o.id IS NULL OR o.last_event_at <= $2)
			ORDER BY c.opened_at DESC, c.id DESC LIMIT 1) l ON true`
	sqlIdentitiesOf = `SELECT i.customer_id, i.kind, i.value, i.source, i.first_seen FROM unnest($1::uuid[]) AS q(id)
		CROSS JOIN LATERAL (SELECT * FROM identities WHERE customer_id = q.id OFFSET 0) i`
	sqlConversationsOf = `SELECT c.customer_id, c.id, c.status, c.opened_at FROM unnest($1::uuid[]) AS q(id)
		CROSS JOIN LATERAL (SELECT customer_id, id, status, opened_at FROM conversations WHERE customer_id = q.id OFFSET 0) c`
	sqlMessagesOf = `SELECT m.conversation_id, m.event_id FROM unnest($1::uuid[]) AS q(id)
		CROSS JOIN LATERAL (SELECT conversation_id, event_id FROM messages WHERE conversation_id = q.id OFFSET 0) m`
	sqlConversationCustomers = `SELECT c.id, c.customer_id FROM unnest($1::uuid[]) AS q(id)
		CROSS JOIN LATERAL (SELECT id, customer_id FROM conversations WHERE id = q.id OFFSET 0) c`
	sqlMergeCustomers = `SELECT m.id, m.from_id, m.into_id FROM unnest($1::uuid[]) AS q(id)
		CROSS JOIN LATERAL (SELECT id, from_id, into_id FROM customer_merges WHERE id = q.id OFFSET 0) m`
	sqlRoot = `WITH RECURSIVE chain(id, merged_into, depth) AS (
			SELECT id, merged_into, 0 FROM customers WHERE id = $1
			UNION ALL SELECT c.id, c.merged_into, chain.depth + 1 FROM customers c JOIN chain ON c.id = chain.merged_into WHERE chain.depth < 100)
		SELECT id FROM chain WHERE merged_into IS NULL LIMIT 1`
	sqlConversation = `SELECT id, customer_id, status, channels, opened_at, closed_at, close_reason, last_event_at, assignee, previous_id
		FROM conversations WHERE id = $1`
	sqlMerge = `SELECT moved_identities, moved_conversations, moved_messages, merged_conversation,
			into_profile_before, into_sources_before, undone_at FROM customer_merges WHERE id = $1 FOR UPDATE`
	// The identities a merge moved, wherever they are now.
	sqlMovedIdentities = `SELECT i.customer_id, i.kind, i.value, i.source, i.first_seen FROM customer_merges m
		CROSS JOIN LATERAL jsonb_to_recordset(m.moved_identities) AS q(kind text, value text)
		JOIN identities i ON i.kind = q.kind AND i.value = q.value WHERE m.id = $1`
	sqlIdleConversations = `SELECT id, customer_id FROM conversations WHERE status = 'open' AND last_event_at < $1 LIMIT $2`
)

// lockCustomersSQL is the statement that locks the customers whose ids $1 holds, in the order it
// holds them (callers sort them: every transaction locks its customers in id order, so none
// waits on another in a cycle), and returns them in that order: one primary-key probe and lock
// per id, whatever plan Postgres cached. With skipLocked, customers another transaction holds
// are left out.
func lockCustomersSQL(skipLocked bool) string {
	lock := "FOR UPDATE"
	if skipLocked {
		lock += " SKIP LOCKED"
	}
	return `SELECT id, created_at, merged_into, display_name, profile, profile_sources FROM unnest($1::uuid[]) WITH ORDINALITY AS q(key, n)
		CROSS JOIN LATERAL (SELECT * FROM customers WHERE id = q.key ` + lock + `) c ORDER BY q.n`
}

var sqlLock, sqlLockSkip = lockCustomersSQL(false), lockCustomersSQL(true)

// each returns the batch callback that scans every row with scan and hands it to fn.
func each[T any](scan func(pgx.Rows, *T) error, fn func(T)) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			var v T
			if err := scan(rows, &v); err != nil {
				return err
			}
			fn(v)
		}
		return rows.Err()
	}
}

// QueueRecord records events ids (of types) as processed; fn gets those that were not already.
func QueueRecord(b *pgx.Batch, ids, types []string, fn func(id string)) {
	b.Queue(sqlRecord, ids, types).Query(each(func(r pgx.Rows, id *string) error { return r.Scan(id) }, fn))
}

// Unrecord forgets that events ids were processed (a transaction leaves them to another).
func Unrecord(ctx context.Context, tx pgx.Tx, ids []string) error {
	_, err := tx.Exec(ctx, sqlUnrecord, ids)
	return err
}

// QueueLookup looks up the customers of the identities (kinds[i], values[i]); fn gets those that
// have one.
func QueueLookup(b *pgx.Batch, kinds, values []string, fn func(Identity)) {
	b.Queue(sqlLookup, kinds, values).Query(each(func(r pgx.Rows, i *Identity) error {
		return r.Scan(&i.Kind, &i.Value, &i.Customer)
	}, fn))
}

// QueueKnownMessages looks up which of the messages ids the store has; fn gets those.
func QueueKnownMessages(b *pgx.Batch, ids []string, fn func(id string)) {
	b.Queue(sqlKnownMessages, ids).Query(each(func(r pgx.Rows, id *string) error { return r.Scan(id) }, fn))
}

// KnownCall is a call the store has: its conversation and customer.
type KnownCall struct {
	ID                     string
	Conversation, Customer uuid.UUID
	Ended                  bool // the store knows it ended
}

// QueueKnownCalls looks up which of the calls ids the store has; fn gets those.
func QueueKnownCalls(b *pgx.Batch, ids []string, fn func(KnownCall)) {
	b.Queue(`SELECT call_id, conversation_id, customer_id, ended_at IS NOT NULL FROM calls
		WHERE call_id = ANY($1)`, ids).Query(each(func(r pgx.Rows, c *KnownCall) error {
		return r.Scan(&c.ID, &c.Conversation, &c.Customer, &c.Ended)
	}, fn))
}

// CallParty is the customer's side of a stored call: the caller of an inbound call, the callee
// of an outbound one, as the call's row recorded it (normalised).
type CallParty struct {
	CallID      string
	Kind, Value string
}

// CallParties returns the customer's side of the stored calls among ids.
func CallParties(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, ids []string) ([]CallParty, error) {
	rows, err := q.Query(ctx, `SELECT call_id,
		CASE WHEN direction = 'outbound' THEN to_kind ELSE from_kind END,
		CASE WHEN direction = 'outbound' THEN to_value ELSE from_value END
		FROM calls WHERE call_id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (CallParty, error) {
		var c CallParty
		err := r.Scan(&c.CallID, &c.Kind, &c.Value)
		return c, err
	})
}

// QueueLockCustomers locks customers ids in that order (callers sort them by id), leaving out
// those another transaction holds when skipLocked; fn gets those it locked.
func QueueLockCustomers(b *pgx.Batch, ids []uuid.UUID, skipLocked bool, fn func(Customer)) {
	sql := sqlLock
	if skipLocked {
		sql = sqlLockSkip
	}
	b.Queue(sql, UUIDs(ids)).Query(each(func(r pgx.Rows, c *Customer) error {
		return r.Scan(&c.ID, &c.CreatedAt, &c.MergedInto, &c.Name, &c.Profile, &c.Sources)
	}, fn))
}

// QueueOpenConversations reads the open conversation of each customer of ids and, for those
// that have none or whose open one was idle by threshold (if set), their latest.
func QueueOpenConversations(b *pgx.Batch, ids []uuid.UUID, threshold *time.Time, fn func(OpenConversation)) {
	var th pgtype.Timestamptz
	if threshold != nil {
		th = pgtype.Timestamptz{Time: *threshold, Valid: true}
	}
	b.Queue(sqlOpenConversations, UUIDs(ids), th).Query(each(func(r pgx.Rows, oc *OpenConversation) error {
		var (
			id, prev, latestID *uuid.UUID
			status             *string
			channels           []string
			openedAt, lastAt   *time.Time
			closedAt, latestAt *time.Time
			reason, assignee   *string
		)
		if err := r.Scan(&oc.Customer, &id, &status, &channels, &openedAt, &closedAt, &reason, &lastAt, &assignee, &prev,
			&oc.LatestKnown, &latestID, &latestAt); err != nil {
			return err
		}
		if id != nil {
			oc.Open = &Conversation{ID: *id, Customer: oc.Customer, Status: *status, Channels: channels, OpenedAt: *openedAt,
				ClosedAt: closedAt, CloseReason: deref(reason), LastEventAt: *lastAt, Assignee: deref(assignee), PreviousID: prev}
		}
		if latestID != nil {
			oc.Latest = &ConversationRef{ID: *latestID, OpenedAt: *latestAt}
		}
		return nil
	}, fn))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func scanIdentity(r pgx.Rows, i *Identity) error {
	return r.Scan(&i.Customer, &i.Kind, &i.Value, &i.Source, &i.FirstSeen)
}

// QueueIdentitiesOf reads the identities of customers ids.
func QueueIdentitiesOf(b *pgx.Batch, ids []uuid.UUID, fn func(Identity)) {
	b.Queue(sqlIdentitiesOf, UUIDs(ids)).Query(each(scanIdentity, fn))
}

// QueueMovedIdentities reads the identities merge id moved, wherever they are now.
func QueueMovedIdentities(b *pgx.Batch, id uuid.UUID, fn func(Identity)) {
	b.Queue(sqlMovedIdentities, id).Query(each(scanIdentity, fn))
}

// QueueConversationsOf reads every conversation of customers ids; fn gets each with its customer.
func QueueConversationsOf(b *pgx.Batch, ids []uuid.UUID, fn func(customer uuid.UUID, c ConversationRef)) {
	type row struct {
		customer uuid.UUID
		c        ConversationRef
	}
	b.Queue(sqlConversationsOf, UUIDs(ids)).Query(each(func(r pgx.Rows, v *row) error {
		return r.Scan(&v.customer, &v.c.ID, &v.c.Status, &v.c.OpenedAt)
	}, func(v row) { fn(v.customer, v.c) }))
}

// QueueMessagesOf reads the ids of the messages of conversations convs.
func QueueMessagesOf(b *pgx.Batch, convs []uuid.UUID, fn func(conv uuid.UUID, eventID string)) {
	type row struct {
		conv uuid.UUID
		id   string
	}
	b.Queue(sqlMessagesOf, UUIDs(convs)).Query(each(func(r pgx.Rows, v *row) error {
		return r.Scan(&v.conv, &v.id)
	}, func(v row) { fn(v.conv, v.id) }))
}

// QueueConversationCustomers reads the customer of each conversation of ids that exists.
func QueueConversationCustomers(b *pgx.Batch, ids []uuid.UUID, fn func(conv, customer uuid.UUID)) {
	b.Queue(sqlConversationCustomers, UUIDs(ids)).Query(each(func(r pgx.Rows, v *[2]uuid.UUID) error {
		return r.Scan(&v[0], &v[1])
	}, func(v [2]uuid.UUID) { fn(v[0], v[1]) }))
}

// QueueMergeCustomers reads the customers of each merge of ids that exists.
func QueueMergeCustomers(b *pgx.Batch, ids []uuid.UUID, fn func(merge, from, into uuid.UUID)) {
	b.Queue(sqlMergeCustomers, UUIDs(ids)).Query(each(func(r pgx.Rows, v *[3]uuid.UUID) error {
		return r.Scan(&v[0], &v[1], &v[2])
	}, func(v [3]uuid.UUID) { fn(v[0], v[1], v[2]) }))
}

// QueueRoot follows customer id's merges to the live customer; fn gets it, unless id is unknown.
func QueueRoot(b *pgx.Batch, id uuid.UUID, fn func(root uuid.UUID)) {
	b.Queue(sqlRoot, id).QueryRow(func(row pgx.Row) error {
		var root uuid.UUID
		err := row.Scan(&root)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err == nil {
			fn(root)
		}
		return err
	})
}

// ReadConversation reads conversation id.
func ReadConversation(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Conversation, error) {
	var c Conversation
	var reason, assignee *string
	err := tx.QueryRow(ctx, sqlConversation, id).Scan(&c.ID, &c.Customer, &c.Status, &c.Channels, &c.OpenedAt, &c.ClosedAt,
		&reason, &c.LastEventAt, &assignee, &c.PreviousID)
	c.CloseReason, c.Assignee = deref(reason), deref(assignee)
	return c, err
}

// QueueReadMerge reads and locks the record of merge id into m.
func QueueReadMerge(b *pgx.Batch, id uuid.UUID, m *MergeRecord) {
	b.Queue(sqlMerge, id).QueryRow(func(row pgx.Row) error {
		return row.Scan(&m.Moved, &m.Conversations, &m.Messages, &m.MergedConversation, &m.ProfileBefore, &m.SourcesBefore, &m.UndoneAt)
	})
}

// IdleConversation is an open conversation and its customer.
type IdleConversation struct{ ID, Customer uuid.UUID }

// IdleConversations returns up to limit open conversations whose last activity is before
// before.
func IdleConversations(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, before time.Time, limit int) ([]IdleConversation, error) {
	rows, err := q.Query(ctx, sqlIdleConversations, before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (IdleConversation, error) {
		var c IdleConversation
		return c, r.Scan(&c.ID, &c.Customer)
	})
}

// UUIDs is ids as a uuid[] parameter.
func UUIDs(ids []uuid.UUID) []pgtype.UUID {
	out := make([]pgtype.UUID, len(ids))
	for i, u := range ids {
		out[i] = pgtype.UUID{Bytes: u, Valid: true}
	}
	return out
}
