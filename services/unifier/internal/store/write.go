package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The writes of the engine's rounds: each Queue function queues the statements writing its rows
// on a batch, one multi-row statement per table (INSERT ... SELECT FROM unnest(...) or UPDATE ...
// FROM unnest(...)), whatever the number of rows.

// NewCustomer is a customer a round creates.
type NewCustomer struct {
	ID        uuid.UUID
	CreatedAt time.Time
	CreatedBy string // the event
	Name      *string
}

// Named is a display name given to a customer that had none.
type Named struct {
	ID   uuid.UUID
	Name string
}

// ConversationWrite is a conversation a round opens or changes.
type ConversationWrite struct {
	ID, Customer    uuid.UUID // Customer: inserts only
	Status          string
	OpenedAt        time.Time // inserts only
	OpenedBy        string    // inserts only: the event
	Channels        []string
	LastEventAt     time.Time
	PreviousID      *uuid.UUID // inserts only
	ClosedAt        *time.Time
	CloseReason     string
	FirstResponseAt *time.Time // kept if the conversation has one
}

// Message is a message a round records: inbound, or (Status set) an outbound one first seen
// through a delivery status, Status and StatusAt being its latest.
type Message struct {
	EventID                     string
	Conversation, Customer      uuid.UUID
	Channel                     string
	IdentityKind, IdentityValue string // the sender (inbound) or the recipient (outbound)
	Body                        []byte
	SentAt                      time.Time
	Status                      *string
	StatusAt                    time.Time
}

// Merge is a merge a round makes: from folds into into.
type Merge struct {
	ID, From, Into  uuid.UUID
	Reason, EventID string
	At              time.Time
	Moved           []Key       // from's identities
	Conversations   []uuid.UUID // from's conversations
	Messages        []MovedMessage
	// MergedConversation, from's open conversation, folds into IntoOpen, into's.
	MergedConversation, IntoOpen *uuid.UUID
	ProfileBefore, SourcesBefore json.RawMessage // into's
}

// Unmerge undoes merge ID (From and Into are its customers, Record what it recorded).
type Unmerge struct {
	ID, From, Into uuid.UUID
	EventID        string
	At             time.Time
	Record         MergeRecord
}

// ToolResult is a tool's result on a conversation's timeline.
type ToolResult struct {
	EventID                string
	Conversation, Customer uuid.UUID
	Tool, Op, Outcome      string
	CorrelationID          string
	Body                   []byte // JSON, as the tool sent it
	At                     time.Time
}

const (
	sqlInsertCustomers = `INSERT INTO customers (id, created_at, created_by_event, updated_at, display_name)
		SELECT id, at, ev, at, name FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[]) AS u(id, at, ev, name)`
	sqlSetNames = `UPDATE customers c SET display_name = u.name FROM unnest($1::uuid[], $2::text[]) AS u(id, name)
		WHERE c.id = u.id AND c.display_name IS NULL`
	sqlInsertIdentities = `INSERT INTO identities (kind, value, customer_id, source, first_seen, event_id, sealed)
		SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[], $6::text[], $7::text[])`
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
	// their status_at).
	sqlInsertMessages = `INSERT INTO messages (event_id, conversation_id, customer_id, channel, direction, identity_kind,
			identity_value, body, sent_at, status, status_at)
		SELECT ev, conv, cust, channel, CASE WHEN st IS NULL THEN 'inbound' ELSE 'outbound' END, kind, value, body::jsonb, at,
			st, st_at
		FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::text[],
			$10::timestamptz[])
			AS u(ev, conv, cust, channel, kind, value, body, at, st, st_at)`
	// Records status $2 at $3 on message $1 unless it has a later one, and returns the message's
	// conversation if it did, and whether the message exists: one round trip.
	sqlStatusUpdate = `WITH u AS (UPDATE messages SET status = $2, status_at = $3
			WHERE event_id = $1 AND (status_at IS NULL OR status_at <= $3) RETURNING conversation_id::text)
		SELECT (SELECT conversation_id FROM u), EXISTS (SELECT 1 FROM messages WHERE event_id = $1)`
	// Calls: each column keeps the first value any of the call's events gave it, so the row is
	// the same whatever order its events come in.
	sqlUpsertCalls = `INSERT INTO calls AS c (call_id, conversation_id, customer_id, direction, from_kind, from_value, to_kind,
			to_value, started_at, answered_at, ended_at, hangup_side, end_reason, recording_url, event_id, transcript)
		SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[])
		ON CONFLICT (call_id) DO UPDATE SET started_at = coalesce(c.started_at, EXCLUDED.started_at),
			answered_at = coalesce(c.answered_at, EXCLUDED.answered_at), ended_at = coalesce(c.ended_at, EXCLUDED.ended_at),
			hangup_side = coalesce(c.hangup_side, EXCLUDED.hangup_side), end_reason = coalesce(c.end_reason, EXCLUDED.end_reason),
			recording_url = coalesce(c.recording_url, EXCLUDED.recording_url),
			transcript = CASE WHEN c.transcript IN ('complete', 'partial', 'none') THEN c.transcript
				WHEN EXCLUDED.transcript IN ('complete', 'partial', 'none') THEN EXCLUDED.transcript
				ELSE coalesce(c.transcript, EXCLUDED.transcript) END`
	sqlInsertOutbox = `INSERT INTO outbox_batches (n, events) VALUES ($1, $2)`
	sqlProfile      = `UPDATE customers SET profile = profile || $2, profile_sources = profile_sources || $3,
		updated_at = greatest(updated_at, $4) WHERE id = $1`
	sqlInsertToolResult = `INSERT INTO tool_results (event_id, conversation_id, customer_id, tool, op, outcome, correlation_id, body, at)
		VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), $8, $9) ON CONFLICT DO NOTHING`
)

// QueueSavepoint sets the savepoint of a round, which RollbackRound returns to.
func QueueSavepoint(b *pgx.Batch) { b.Queue(`SAVEPOINT round`) }

// RollbackRound undoes what tx did since the round's savepoint.
func RollbackRound(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT round`)
	return err
}

// QueueInsertCustomers creates customers cs.
func QueueInsertCustomers(b *pgx.Batch, cs []NewCustomer) {
	if len(cs) == 0 {
		return
	}
	n := len(cs)
	ids, ats, evs, names := make([]pgtype.UUID, n), make([]time.Time, n), make([]string, n), make([]pgtype.Text, n)
	for i, c := range cs {
		ids[i], ats[i], evs[i], names[i] = pgUUID(c.ID), c.CreatedAt, c.CreatedBy, text(c.Name)
	}
	b.Queue(sqlInsertCustomers, ids, ats, evs, names)
}

// QueueSetNames gives customers that have no display name theirs.
func QueueSetNames(b *pgx.Batch, ns []Named) {
	if len(ns) == 0 {
		return
	}
	ids, names := make([]pgtype.UUID, len(ns)), make([]string, len(ns))
	for i, x := range ns {
		ids[i], names[i] = pgUUID(x.ID), x.Name
	}
	b.Queue(sqlSetNames, ids, names)
}

// QueueInsertIdentities attaches new identities.
func QueueInsertIdentities(b *pgx.Batch, rows []Identity) {
	n := len(rows)
	if n == 0 {
		return
	}
	kinds, values, custs, sources, seen, evs := make([]string, n), make([]string, n), make([]pgtype.UUID, n), make([]string, n), make([]time.Time, n), make([]string, n)
	sealed := make([]pgtype.Text, n)
	for i, r := range rows {
		kinds[i], values[i], custs[i], sources[i], seen[i], evs[i] = r.Kind, r.Value, pgUUID(r.Customer), r.Source, r.FirstSeen, r.EventID
		sealed[i] = nonEmpty(r.Sealed)
	}
	b.Queue(sqlInsertIdentities, kinds, values, custs, sources, seen, evs, sealed)
}

// QueueUpdateConversations writes the status, closing, channels, last activity and (unless the
// conversation has one) first response of conversations cs.
func QueueUpdateConversations(b *pgx.Batch, cs []ConversationWrite) error {
	n := len(cs)
	if n == 0 {
		return nil
	}
	ids, statuses, closed, reasons, channels, last := make([]pgtype.UUID, n), make([]string, n), make([]pgtype.Timestamptz, n), make([]pgtype.Text, n), make([]string, n), make([]time.Time, n)
	first := make([]pgtype.Timestamptz, n)
	for i, c := range cs {
		ids[i], statuses[i], last[i], first[i] = pgUUID(c.ID), c.Status, c.LastEventAt, timestamptz(c.FirstResponseAt)
		closed[i], reasons[i] = timestamptz(c.ClosedAt), nonEmpty(c.CloseReason)
		ch, err := json.Marshal(c.Channels)
		if err != nil {
			return err
		}
		channels[i] = string(ch)
	}
	b.Queue(sqlUpdateConversations, ids, statuses, closed, reasons, channels, last, first)
	return nil
}

// QueueInsertConversations opens conversations cs.
func QueueInsertConversations(b *pgx.Batch, cs []ConversationWrite) error {
	n := len(cs)
	if n == 0 {
		return nil
	}
	ids, custs, statuses, opened, evs, channels, last, prev, closed, reasons := make([]pgtype.UUID, n), make([]pgtype.UUID, n),
		make([]string, n), make([]time.Time, n), make([]string, n), make([]string, n), make([]time.Time, n),
		make([]pgtype.UUID, n), make([]pgtype.Timestamptz, n), make([]pgtype.Text, n)
	first := make([]pgtype.Timestamptz, n)
	for i, c := range cs {
		ids[i], custs[i], statuses[i], opened[i], evs[i], last[i] = pgUUID(c.ID), pgUUID(c.Customer), c.Status, c.OpenedAt, c.OpenedBy, c.LastEventAt
		first[i] = timestamptz(c.FirstResponseAt)
		if c.PreviousID != nil {
			prev[i] = pgUUID(*c.PreviousID)
		}
		closed[i], reasons[i] = timestamptz(c.ClosedAt), nonEmpty(c.CloseReason)
		ch, err := json.Marshal(c.Channels)
		if err != nil {
			return err
		}
		channels[i] = string(ch)
	}
	b.Queue(sqlInsertConversations, ids, custs, statuses, opened, evs, channels, last, prev, closed, reasons, first)
	return nil
}

// QueueInsertMessages records messages ms.
func QueueInsertMessages(b *pgx.Batch, ms []Message) {
	n := len(ms)
	if n == 0 {
		return
	}
	evs, convs, custs, channels, kinds, values, bodies, ats := make([]string, n), make([]pgtype.UUID, n), make([]pgtype.UUID, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n)
	sts, stAts := make([]pgtype.Text, n), make([]pgtype.Timestamptz, n)
	for i, m := range ms {
		evs[i], convs[i], custs[i], channels[i] = m.EventID, pgUUID(m.Conversation), pgUUID(m.Customer), m.Channel
		kinds[i], values[i], bodies[i], ats[i] = m.IdentityKind, m.IdentityValue, string(m.Body), m.SentAt
		if m.Status != nil {
			sts[i], stAts[i] = pgtype.Text{String: *m.Status, Valid: true}, pgtype.Timestamptz{Time: m.StatusAt, Valid: true}
		}
	}
	b.Queue(sqlInsertMessages, evs, convs, custs, channels, kinds, values, bodies, ats, sts, stAts)
}

// QueueStatusUpdate records status at time at on message id unless it has a later one; fn gets
// the message's conversation if it did, nil if not.
func QueueStatusUpdate(b *pgx.Batch, id, status string, at time.Time, fn func(conversation *string)) {
	b.Queue(sqlStatusUpdate, id, status, at).QueryRow(func(row pgx.Row) error {
		var conv *string
		var known bool
		if err := row.Scan(&conv, &known); err != nil {
			return err
		}
		fn(conv)
		return nil
	})
}

// Call is what a round learnt of a call: one row per call id (a round folds the call's events
// into one), nil times and empty strings for what it did not learn.
type Call struct {
	ID                     string
	Conversation, Customer uuid.UUID
	Direction              string
	FromKind, FromValue    string
	ToKind, ToValue        string
	StartedAt, AnsweredAt  *time.Time
	EndedAt                *time.Time
	HangupSide, EndReason  string
	RecordingURL           string
	EventID                string // the first of the round's events about the call
	// Transcript is the state of the call's transcript (migration 00011): live or pending until
	// a final state (complete, partial, none), which is never replaced (FoldTranscript).
	Transcript string
}

// FinalTranscript reports whether transcript state s is final (complete, partial or none).
func FinalTranscript(s string) bool { return s == "complete" || s == "partial" || s == "none" }

// FoldTranscript is the transcript state of a call that was in state cur when an event said
// next: the first final state stays; else the first state said.
func FoldTranscript(cur, next string) string {
	switch {
	case FinalTranscript(cur):
		return cur
	case FinalTranscript(next):
		return next
	case cur != "":
		return cur
	}
	return next
}

// QueueUpsertCalls records calls cs, keeping what the store already has of each (see sqlUpsertCalls).
func QueueUpsertCalls(b *pgx.Batch, cs []Call) {
	n := len(cs)
	if n == 0 {
		return
	}
	ids, convs, custs, dirs := make([]string, n), make([]pgtype.UUID, n), make([]pgtype.UUID, n), make([]string, n)
	fk, fv, tk, tv, evs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	started, answered, ended := make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
	sides, reasons, recs, trs := make([]pgtype.Text, n), make([]pgtype.Text, n), make([]pgtype.Text, n), make([]pgtype.Text, n)
	ts := func(t *time.Time) pgtype.Timestamptz {
		if t == nil {
			return pgtype.Timestamptz{}
		}
		return pgtype.Timestamptz{Time: *t, Valid: true}
	}
	txt := func(s string) pgtype.Text { return pgtype.Text{String: s, Valid: s != ""} }
	for i, c := range cs {
		ids[i], convs[i], custs[i], dirs[i] = c.ID, pgUUID(c.Conversation), pgUUID(c.Customer), c.Direction
		fk[i], fv[i], tk[i], tv[i], evs[i] = c.FromKind, c.FromValue, c.ToKind, c.ToValue, c.EventID
		started[i], answered[i], ended[i] = ts(c.StartedAt), ts(c.AnsweredAt), ts(c.EndedAt)
		sides[i], reasons[i], recs[i], trs[i] = txt(c.HangupSide), txt(c.EndReason), txt(c.RecordingURL), txt(c.Transcript)
	}
	b.Queue(sqlUpsertCalls, ids, convs, custs, dirs, fk, fv, tk, tv, started, answered, ended, sides, reasons, recs, evs, trs)
}

// QueueOutbox writes one outbox batch of n events (encoded as migration 00006 describes).
func QueueOutbox(b *pgx.Batch, n int, events []byte) { b.Queue(sqlInsertOutbox, n, events) }

// InsertOutbox writes one outbox batch through q, as QueueOutbox does.
func InsertOutbox(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, n int, events []byte) error {
	_, err := q.Exec(ctx, sqlInsertOutbox, n, events)
	return err
}

// QueueMerge writes merge m: identities, conversations, messages and tool results move from m.From
// to m.Into, the open conversations fold into one, the profiles combine (into's fields win), and
// the merge is recorded.
func QueueMerge(b *pgx.Batch, m Merge) {
	// A message's customer is its conversation's: move them by conversation (an array parameter,
	// so that any cached plan probes messages_conversation).
	b.Queue(`UPDATE messages SET customer_id = $2 WHERE conversation_id = ANY($1)`, UUIDs(m.Conversations), m.Into)
	if m.MergedConversation != nil {
		b.Queue(`UPDATE messages SET conversation_id = $2 WHERE conversation_id = $1`, *m.MergedConversation, *m.IntoOpen)
		b.Queue(`UPDATE conversations SET first_response_at = least(first_response_at,
			(SELECT first_response_at FROM conversations WHERE id = $1)) WHERE id = $2`, *m.MergedConversation, *m.IntoOpen)
		// Before the conversations move below: the customer keeps one open conversation.
		b.Queue(`UPDATE conversations SET status = 'merged', merged_into = $2, closed_at = $3, close_reason = 'merged'
			WHERE id = $1`, *m.MergedConversation, *m.IntoOpen, m.At)
	}
	b.Queue(`UPDATE conversations SET customer_id = $2 WHERE customer_id = $1`, m.From, m.Into)
	b.Queue(`UPDATE identities SET customer_id = $2 WHERE customer_id = $1`, m.From, m.Into)
	b.Queue(`UPDATE tool_results SET customer_id = $2 WHERE customer_id = $1`, m.From, m.Into)
	b.Queue(`UPDATE calls SET customer_id = $2 WHERE customer_id = $1`, m.From, m.Into)
	b.Queue(`UPDATE customers i SET
			profile = f.profile || i.profile, profile_sources = f.profile_sources || i.profile_sources,
			display_name = coalesce(i.display_name, f.display_name), updated_at = greatest(i.updated_at, $3)
		FROM customers f WHERE i.id = $2 AND f.id = $1`, m.From, m.Into, m.At)
	b.Queue(`UPDATE customers SET merged_into = $2, updated_at = greatest(updated_at, $3) WHERE id = $1`, m.From, m.Into, m.At)
	b.Queue(`INSERT INTO customer_merges (id, from_id, into_id, reason, event_id, at, moved_identities,
			moved_conversations, moved_messages, merged_conversation, into_profile_before, into_sources_before)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		m.ID, m.From, m.Into, m.Reason, m.EventID, m.At, m.Moved, m.Conversations, m.Messages, m.MergedConversation,
		m.ProfileBefore, m.SourcesBefore)
}

// QueueUnmerge undoes a merge: what moved goes back, the merged conversation reopens (unless
// its customer has an open one), the surviving customer's profile is restored, and the merge
// is marked undone.
func QueueUnmerge(b *pgx.Batch, u Unmerge) {
	r := u.Record
	kinds, values := make([]string, len(r.Moved)), make([]string, len(r.Moved))
	for i, m := range r.Moved {
		kinds[i], values[i] = m.Kind, m.Value
	}
	b.Queue(`UPDATE identities i SET customer_id = $1 FROM unnest($2::text[], $3::text[]) AS q(kind, value)
		WHERE i.kind = q.kind AND i.value = q.value`, u.From, kinds, values)
	b.Queue(`UPDATE conversations SET customer_id = $1 WHERE id = ANY($2)`, u.From, r.Conversations)
	if r.MergedConversation != nil {
		ids := make([]string, len(r.Messages))
		for i, m := range r.Messages {
			ids[i] = m.EventID
		}
		b.Queue(`UPDATE messages SET conversation_id = $1 WHERE event_id = ANY($2)`, *r.MergedConversation, ids)
		b.Queue(`UPDATE conversations SET status = 'open', merged_into = NULL, closed_at = NULL, close_reason = NULL
			WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM conversations WHERE customer_id = $2 AND status = 'open')`, *r.MergedConversation, u.From)
	}
	b.Queue(`UPDATE messages SET customer_id = $1 WHERE conversation_id = ANY($2)`, u.From, r.Conversations)
	b.Queue(`UPDATE tool_results SET customer_id = $1 WHERE conversation_id = ANY($2)`, u.From, r.Conversations)
	b.Queue(`UPDATE calls SET customer_id = $1 WHERE conversation_id = ANY($2)`, u.From, r.Conversations)
	b.Queue(`UPDATE customers SET merged_into = NULL, updated_at = $2 WHERE id = $1`, u.From, u.At)
	b.Queue(`UPDATE customers SET profile = $2, profile_sources = $3, updated_at = $4 WHERE id = $1`, u.Into, r.ProfileBefore, r.SourcesBefore, u.At)
	b.Queue(`UPDATE customer_merges SET undone_at = $2, undone_by_event = $3 WHERE id = $1`, u.ID, u.At, u.EventID)
}

// QueueProfile merges fields (and their sources) into customer id's profile.
func QueueProfile(b *pgx.Batch, id uuid.UUID, fields, sources json.RawMessage, at time.Time) {
	b.Queue(sqlProfile, id, fields, sources, at)
}

// QueueInsertToolResult puts r on its conversation's timeline (once: it is keyed by its event).
func QueueInsertToolResult(b *pgx.Batch, r ToolResult) {
	b.Queue(sqlInsertToolResult, r.EventID, r.Conversation, r.Customer, r.Tool, r.Op, r.Outcome, r.CorrelationID, r.Body, r.At)
}

func pgUUID(u uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: u, Valid: true} }

func timestamptz(t *time.Time) pgtype.Timestamptz {
	if t == nil {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: *t, Valid: true}
}

func text(s *string) pgtype.Text {
	if s == nil {
		return pgtype.Text{}
	}
	return pgtype.Text{String: *s, Valid: true}
}

func nonEmpty(s string) pgtype.Text { return pgtype.Text{String: s, Valid: s != ""} }

// ProcessedCount returns how many events the store has applied.
func ProcessedCount(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var n int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM processed_events`).Scan(&n)
	return n, err
}

// ClearOutbox drops every outbox batch unpublished (a rebuild does not emit desk events again:
// they are in OMNI_DESK already).
func ClearOutbox(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `DELETE FROM outbox_batches`)
	return err
}
