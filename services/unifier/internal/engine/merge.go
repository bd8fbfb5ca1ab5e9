package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Merges on the snapshot. An event whose identities belong to two or more customers folds them
// into the oldest: identities, conversations, messages and tool results move; both open
// conversations become one; profiles combine, the surviving customer's fields winning; and each
// merge is recorded with what moved, so that it can be undone. The round reads what a merge
// moves when it meets the event (mergeRead), applies it to the snapshot (fold), and writes it
// with the round's other changes (queueMerges), ahead of them.

// convRef is a conversation of a merging customer as a merge needs it.
type convRef struct {
	id       uuid.UUID
	status   string
	openedAt time.Time
}

// mergeRec is one merge of the round: the customer_merges row and what its writes move.
type mergeRec struct {
	id, from, into   uuid.UUID
	reason, eventID  string
	at               time.Time
	moved            []Identity
	convs            []uuid.UUID // from's conversations, in id order
	msgs             []movedMessage
	mergedConv       *uuid.UUID // from's open conversation, folded into intoOpen
	intoOpen         *uuid.UUID
	profile, sources json.RawMessage // into's, before the merge
}

type movedMessage struct {
	EventID        string    `json:"event_id"`
	ConversationID uuid.UUID `json:"conversation_id"`
}

const (
	sqlConversationsOf = `SELECT c.customer_id, c.id, c.status, c.opened_at FROM unnest($1::uuid[]) AS q(id)
		CROSS JOIN LATERAL (SELECT customer_id, id, status, opened_at FROM conversations WHERE customer_id = q.id OFFSET 0) c`
	sqlMessagesOf = `SELECT m.conversation_id, m.event_id FROM unnest($1::uuid[]) AS q(id)
		CROSS JOIN LATERAL (SELECT conversation_id, event_id FROM messages WHERE conversation_id = q.id OFFSET 0) m`
)

// mergeCustomers folds the customers cs of e into the oldest of them and returns it. None of
// them was changed earlier in the round: what the database holds is their state.
func (rd *round) mergeCustomers(ctx context.Context, e *msgEvent, cs []uuid.UUID, reason string) (uuid.UUID, error) {
	custs := make([]*cust, len(cs))
	for i, id := range cs {
		if custs[i] = rd.custs[id]; custs[i] == nil {
			return uuid.Nil, fmt.Errorf("customer %s was not read", id)
		}
	}
	// The oldest survives: created first, ties in id order (as text).
	slices.SortFunc(custs, func(a, b *cust) int {
		if c := a.createdAt.Compare(b.createdAt); c != 0 {
			return c
		}
		return strings.Compare(a.id.String(), b.id.String())
	})
	if err := rd.mergeRead(ctx, custs); err != nil {
		return uuid.Nil, err
	}
	into := custs[0]
	for _, from := range custs[1:] {
		rd.fold(e, from, into, reason)
	}
	return into.id, nil
}

// mergeRead reads what merging custs moves: their conversations, their identities and the
// messages of their open conversations, in one round trip.
func (rd *round) mergeRead(ctx context.Context, custs []*cust) error {
	ids := make([]uuid.UUID, len(custs))
	var open []uuid.UUID
	for i, c := range custs {
		ids[i] = c.id
		c.convs, c.stored, c.storedRead, c.openMsgs = nil, nil, true, nil
		if c.open != nil {
			open = append(open, c.open.id)
		}
	}
	b := &pgx.Batch{}
	b.Queue(sqlConversationsOf, pgUUIDs(ids)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var cu uuid.UUID
			var r convRef
			if err := rows.Scan(&cu, &r.id, &r.status, &r.openedAt); err != nil {
				return err
			}
			rd.custs[cu].convs = append(rd.custs[cu].convs, r)
		}
		return rows.Err()
	})
	b.Queue(sqlIdentitiesOf, pgUUIDs(ids)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var r identRow
			if err := rows.Scan(&r.customer, &r.id.Kind, &r.id.Value, &r.source, &r.firstSeen); err != nil {
				return err
			}
			rd.custs[r.customer].stored = append(rd.custs[r.customer].stored, r)
		}
		return rows.Err()
	})
	if len(open) > 0 {
		owner := map[uuid.UUID]*cust{}
		for _, c := range custs {
			if c.open != nil {
				owner[c.open.id] = c
			}
		}
		b.Queue(sqlMessagesOf, pgUUIDs(open)).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var conv uuid.UUID
				var id string
				if err := rows.Scan(&conv, &id); err != nil {
					return err
				}
				owner[conv].openMsgs = append(owner[conv].openMsgs, id)
			}
			return rows.Err()
		})
	}
	return rd.tx.SendBatch(ctx, b).Close()
}

// fold merges from into into on the snapshot, records the merge and emits its desk event.
func (rd *round) fold(e *msgEvent, from, into *cust, reason string) {
	rec := mergeRec{id: derive("merge", e.ev.ID(), from.id.String()), from: from.id, into: into.id, reason: reason,
		eventID: e.ev.ID(), at: e.at, profile: into.profile, sources: into.sources, msgs: []movedMessage{}}
	// What moved is recorded in a canonical order (byte order), so that the same log always
	// gives the same customer_merges rows.
	rec.moved = make([]Identity, len(from.stored))
	for i, r := range from.stored {
		rec.moved[i] = Identity{Kind: r.id.Kind, Value: r.id.Value}
	}
	slices.SortFunc(rec.moved, func(a, b Identity) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	rec.convs = make([]uuid.UUID, len(from.convs))
	for i, r := range from.convs {
		rec.convs[i] = r.id
	}
	slices.SortFunc(rec.convs, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })

	if f, o := from.open, into.open; f != nil && o != nil {
		// Both open conversations become into's: channels (byte order), last activity, and
		// (written by queueMerges) the earlier first response.
		for _, id := range from.openMsgs {
			rec.msgs = append(rec.msgs, movedMessage{EventID: id, ConversationID: f.id})
		}
		slices.SortFunc(rec.msgs, func(a, b movedMessage) int { return strings.Compare(a.EventID, b.EventID) })
		for _, ch := range f.v.Channels {
			if !slices.Contains(o.v.Channels, ch) {
				o.v.Channels = append(slices.Clip(o.v.Channels), ch)
			}
		}
		slices.Sort(o.v.Channels)
		o.v.Channels = slices.Compact(o.v.Channels)
		if f.v.LastEventAt.After(o.v.LastEventAt) {
			o.v.LastEventAt = f.v.LastEventAt
		}
		rd.changed(o)
		for i := range from.convs {
			if from.convs[i].id == f.id {
				from.convs[i].status = "merged"
			}
		}
		rec.mergedConv, rec.intoOpen = &f.id, &o.id
	} else if f != nil {
		f.customer, f.v.CustomerID = into.id, into.id.String()
		into.open = f
	}
	from.open = nil
	rd.mergedInto[from.id] = into.id
	into.convs = append(into.convs, from.convs...)
	from.convs = nil
	// The conversation a new one follows: the latest that was not merged.
	into.latest, into.latestKnown = nil, true
	for _, r := range into.convs {
		if r.status == "merged" {
			continue
		}
		if l := into.latest; l == nil || r.openedAt.After(l.v.OpenedAt) || (r.openedAt.Equal(l.v.OpenedAt) && bytes.Compare(r.id[:], l.id[:]) > 0) {
			into.latest = &conv{id: r.id, v: ConversationView{OpenedAt: r.openedAt}}
		}
	}

	// Profiles: the surviving customer's fields win; the merged one fills the gaps.
	into.profile, into.sources = concatJSON(from.profile, into.profile), concatJSON(from.sources, into.sources)
	if into.name == nil {
		into.name = from.name
	}
	into.stored = append(into.stored, from.stored...)
	from.stored = nil
	rd.merges = append(rd.merges, rec)

	view := customerViewOf(into, into.stored, into.name)
	rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskCustomerMerged, TypeDeskCustomerMerged, into.id.String(), ":"+from.id.String(), map[string]any{
		"merge_id": rec.id, "from_id": from.id, "into_id": into.id, "reason": reason, "event_id": e.ev.ID(), "at": e.at,
		"moved_identities": len(rec.moved), "moved_conversations": len(rec.convs), "customer": view,
	}))
	rd.en.log.Info("customers merged", "merge_id", rec.id, "from", from.id, "into", into.id, "reason", reason)
}

// concatJSON is jsonb's a || b for two objects: b's fields win.
func concatJSON(a, b []byte) []byte {
	var ma, mb map[string]json.RawMessage
	_ = json.Unmarshal(a, &ma)
	_ = json.Unmarshal(b, &mb)
	if ma == nil {
		ma = map[string]json.RawMessage{}
	}
	for k, v := range mb {
		ma[k] = v
	}
	out, _ := json.Marshal(ma)
	return out
}

// queueMerges queues the writes of the round's merges, in order.
func (rd *round) queueMerges(b *pgx.Batch) {
	for _, m := range rd.merges {
		// A message's customer is its conversation's: move them by conversation (an array
		// parameter, so that any cached plan probes messages_conversation).
		b.Queue(`UPDATE messages SET customer_id = $2 WHERE conversation_id = ANY($1)`, pgUUIDs(m.convs), m.into)
		if m.mergedConv != nil {
			b.Queue(`UPDATE messages SET conversation_id = $2 WHERE conversation_id = $1`, *m.mergedConv, *m.intoOpen)
			b.Queue(`UPDATE conversations SET first_response_at = least(first_response_at,
				(SELECT first_response_at FROM conversations WHERE id = $1)) WHERE id = $2`, *m.mergedConv, *m.intoOpen)
			// Before the conversations move below: the customer keeps one open conversation.
			b.Queue(`UPDATE conversations SET status = 'merged', merged_into = $2, closed_at = $3, close_reason = 'merged'
				WHERE id = $1`, *m.mergedConv, *m.intoOpen, m.at)
		}
		b.Queue(`UPDATE conversations SET customer_id = $2 WHERE customer_id = $1`, m.from, m.into)
		b.Queue(`UPDATE identities SET customer_id = $2 WHERE customer_id = $1`, m.from, m.into)
		b.Queue(`UPDATE tool_results SET customer_id = $2 WHERE customer_id = $1`, m.from, m.into)
		b.Queue(`UPDATE customers i SET
				profile = f.profile || i.profile, profile_sources = f.profile_sources || i.profile_sources,
				display_name = coalesce(i.display_name, f.display_name), updated_at = greatest(i.updated_at, $3)
			FROM customers f WHERE i.id = $2 AND f.id = $1`, m.from, m.into, m.at)
		b.Queue(`UPDATE customers SET merged_into = $2, updated_at = greatest(updated_at, $3) WHERE id = $1`, m.from, m.into, m.at)
		b.Queue(`INSERT INTO customer_merges (id, from_id, into_id, reason, event_id, at, moved_identities,
				moved_conversations, moved_messages, merged_conversation, into_profile_before, into_sources_before)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			m.id, m.from, m.into, m.reason, m.eventID, m.at, m.moved, m.convs, m.msgs, m.mergedConv, m.profile, m.sources)
	}
}
