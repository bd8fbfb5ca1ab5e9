package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

// Merges on the snapshot. An event whose identities belong to two or more customers folds them
// into the oldest: identities, conversations, messages and tool results move; both open
// conversations become one; profiles combine, the surviving customer's fields winning; and each
// merge is recorded with what moved, so that it can be undone. The round reads what a merge
// moves when it meets the event (mergeRead), applies it to the snapshot (fold), and writes it
// with the round's other changes (store.QueueMerge), ahead of them.

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
	owner := map[uuid.UUID]*cust{}
	for i, c := range custs {
		ids[i] = c.id
		c.convs, c.stored, c.storedRead, c.openMsgs = nil, nil, true, nil
		if c.open != nil {
			open = append(open, c.open.id)
			owner[c.open.id] = c
		}
	}
	b := &pgx.Batch{}
	store.QueueConversationsOf(b, ids, func(customer uuid.UUID, r store.ConversationRef) {
		rd.custs[customer].convs = append(rd.custs[customer].convs, r)
	})
	store.QueueIdentitiesOf(b, ids, func(i store.Identity) {
		rd.custs[i.Customer].stored = append(rd.custs[i.Customer].stored, identRowOf(i))
	})
	if len(open) > 0 {
		store.QueueMessagesOf(b, open, func(conv uuid.UUID, id string) { owner[conv].openMsgs = append(owner[conv].openMsgs, id) })
	}
	return rd.tx.SendBatch(ctx, b).Close()
}

// fold merges from into into on the snapshot, records the merge and emits its desk event.
func (rd *round) fold(e *msgEvent, from, into *cust, reason string) {
	rec := store.Merge{ID: derive("merge", e.ev.ID(), from.id.String()), From: from.id, Into: into.id, Reason: reason,
		EventID: e.ev.ID(), At: e.at, ProfileBefore: into.profile, SourcesBefore: into.sources, Messages: []store.MovedMessage{}}
	// What moved is recorded in a canonical order (byte order), so that the same log always
	// gives the same customer_merges rows.
	rec.Moved = make([]store.Key, len(from.stored))
	for i, r := range from.stored {
		rec.Moved[i] = store.Key{Kind: r.id.Kind, Value: r.id.Value}
	}
	slices.SortFunc(rec.Moved, func(a, b store.Key) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	rec.Conversations = make([]uuid.UUID, len(from.convs))
	for i, r := range from.convs {
		rec.Conversations[i] = r.ID
	}
	slices.SortFunc(rec.Conversations, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })

	if f, o := from.open, into.open; f != nil && o != nil {
		// Both open conversations become into's: channels (sorted in byte order — the SQL merge
		// this replaces sorted in the database's collation, which agrees for channel names, being
		// lowercase ASCII), last activity, and (written by store.QueueMerge) the earlier first
		// response.
		for _, id := range from.openMsgs {
			rec.Messages = append(rec.Messages, store.MovedMessage{EventID: id, ConversationID: f.id})
		}
		slices.SortFunc(rec.Messages, func(a, b store.MovedMessage) int { return strings.Compare(a.EventID, b.EventID) })
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
			if from.convs[i].ID == f.id {
				from.convs[i].Status = "merged"
			}
		}
		rec.MergedConversation, rec.IntoOpen = &f.id, &o.id
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
		if r.Status == "merged" {
			continue
		}
		if l := into.latest; l == nil || r.OpenedAt.After(l.v.OpenedAt) || (r.OpenedAt.Equal(l.v.OpenedAt) && bytes.Compare(r.ID[:], l.id[:]) > 0) {
			into.latest = &conv{id: r.ID, v: ConversationView{OpenedAt: r.OpenedAt}}
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
		"merge_id": rec.ID, "from_id": from.id, "into_id": into.id, "reason": reason, "event_id": e.ev.ID(), "at": e.at,
		"moved_identities": len(rec.Moved), "moved_conversations": len(rec.Conversations), "customer": view,
	}))
	rd.en.log.Info("customers merged", "merge_id", rec.ID, "from", from.id, "into", into.id, "reason", reason)
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
		store.QueueMerge(b, m)
	}
}
