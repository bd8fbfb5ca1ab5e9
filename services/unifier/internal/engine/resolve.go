package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/identity"
)

// resolution is the outcome of resolving an event's identities.
type resolution struct {
	customer uuid.UUID
	created  bool
	linked   []identity.ID // identities attached by this event
	merged   []uuid.UUID   // merge ids recorded by this event
}

type custRow struct {
	id        uuid.UUID
	createdAt time.Time
	merged    *uuid.UUID
}

// resolve finds or creates the one customer of ids, merging customers that ids join. prefer,
// when set, is a customer the event is known to belong to (a tool result names its customer).
// Locks: the customers' rows, in a fixed order.
func (en *Engine) resolve(ctx context.Context, w *writer, ids []identity.ID, prefer uuid.UUID, source, reason string, at time.Time) (resolution, error) {
	var res resolution
	tx := w.tx
	ids = sortIDs(ids)
	kinds := make([]string, len(ids))
	values := make([]string, len(ids))
	for i, id := range ids {
		kinds[i], values[i] = id.Kind, id.Value
	}
	// No lock is taken on the identities themselves: the customers' rows are locked below, and
	// two transactions that both try to attach a new identity collide on its primary key, which
	// aborts one of them to be retried (inTx) — it then finds the identity and merges.
	for attempt := 0; ; attempt++ {
		if attempt > 3 {
			return res, fmt.Errorf("the customers of %d identities kept being merged concurrently", len(ids))
		}
		rows, err := tx.Query(ctx, sqlLookup, kinds, values)
		if err != nil {
			return res, err
		}
		known := map[identity.ID]uuid.UUID{}
		set := map[uuid.UUID]bool{}
		for rows.Next() {
			var id identity.ID
			var c uuid.UUID
			if err := rows.Scan(&id.Kind, &id.Value, &c); err != nil {
				rows.Close()
				return res, err
			}
			known[id] = c
			set[c] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, err
		}
		if prefer != uuid.Nil {
			root, err := en.root(ctx, tx, prefer)
			if err != nil {
				return res, err
			}
			set[root] = true
		}
		custs, err := lockCustomers(ctx, tx, keysOf(set))
		if err != nil {
			return res, err
		}
		stale := false
		for _, c := range custs {
			stale = stale || c.merged != nil
		}
		if stale { // merged by a concurrent transaction after we read the identities: read again
			continue
		}
		if len(custs) == 0 {
			res.customer, res.created = derive("customer", w.ev.ID()), true
			if _, err := tx.Exec(ctx, `INSERT INTO customers (id, created_at, created_by_event, updated_at) VALUES ($1, $2, $3, $2)`,
				res.customer, at, w.ev.ID()); err != nil {
				return res, err
			}
		} else {
			// Merge into the oldest customer (custs is ordered by created_at, id).
			res.customer = custs[0].id
			for _, c := range custs[1:] {
				mid, err := en.merge(ctx, w, c.id, res.customer, reason, at)
				if err != nil {
					return res, err
				}
				res.merged = append(res.merged, mid)
			}
		}
		for _, id := range ids {
			if _, ok := known[id]; ok {
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO identities (kind, value, customer_id, source, first_seen, event_id)
				VALUES ($1, $2, $3, $4, $5, $6)`, id.Kind, id.Value, res.customer, source, at, w.ev.ID()); err != nil {
				return res, err
			}
			res.linked = append(res.linked, id)
		}
		return res, nil
	}
}

func keysOf(m map[uuid.UUID]bool) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// lockCustomersSQL is the statement that locks the customers whose ids $1 holds, in the order it
// holds them (callers sort them: every transaction locks its customers in id order, so none
// waits on another in a cycle), and returns cols of those it locked, in that order: one
// primary-key probe and lock per id, whatever plan Postgres cached. With skipLocked, customers
// another transaction holds are left out.
func lockCustomersSQL(cols string, skipLocked bool) string {
	lock := "FOR UPDATE"
	if skipLocked {
		lock += " SKIP LOCKED"
	}
	return `SELECT ` + cols + ` FROM unnest($1::uuid[]) WITH ORDINALITY AS q(key, n)
		CROSS JOIN LATERAL (SELECT * FROM customers WHERE id = q.key ` + lock + `) c ORDER BY q.n`
}

var sqlLockMerge = lockCustomersSQL("id, created_at, merged_into", false)

// lockCustomers locks the customers' rows in id order and returns them oldest first.
func lockCustomers(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) ([]custRow, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	ids = slices.Clone(ids)
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	rows, err := tx.Query(ctx, sqlLockMerge, pgUUIDs(ids))
	if err != nil {
		return nil, err
	}
	custs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (custRow, error) {
		var c custRow
		return c, r.Scan(&c.id, &c.createdAt, &c.merged)
	})
	if err != nil {
		return nil, err
	}
	sortCustomers(custs)
	return custs, nil
}

func sortCustomers(c []custRow) {
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && older(c[j], c[j-1]); j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
}

func older(a, b custRow) bool {
	if !a.createdAt.Equal(b.createdAt) {
		return a.createdAt.Before(b.createdAt)
	}
	return a.id.String() < b.id.String()
}

// root follows merged_into to the live customer.
func (en *Engine) root(ctx context.Context, tx pgx.Tx, id uuid.UUID) (uuid.UUID, error) {
	var root uuid.UUID
	err := tx.QueryRow(ctx, `WITH RECURSIVE chain(id, merged_into, depth) AS (
			SELECT id, merged_into, 0 FROM customers WHERE id = $1
			UNION ALL SELECT c.id, c.merged_into, chain.depth + 1 FROM customers c JOIN chain ON c.id = chain.merged_into WHERE chain.depth < 100)
		SELECT id FROM chain WHERE merged_into IS NULL LIMIT 1`, id).Scan(&root)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, bus.Permanent(fmt.Errorf("unknown customer %s", id))
	}
	return root, err
}

type movedMessage struct {
	EventID        string    `json:"event_id"`
	ConversationID uuid.UUID `json:"conversation_id"`
}

// merge folds customer from into into: identities, conversations, messages and tool results
// move; both open conversations become one; the merge is recorded with what moved so that it
// can be undone. Both customers must be locked by the caller. It takes three round trips: the
// reads, then every move at once, then the record and the view.
func (en *Engine) merge(ctx context.Context, w *writer, from, into uuid.UUID, reason string, at time.Time) (uuid.UUID, error) {
	tx := w.tx
	mid := derive("merge", w.ev.ID(), from.String())
	var profile, sources json.RawMessage
	var fromOpen, intoOpen *uuid.UUID
	var fromConvs []uuid.UUID
	b := &pgx.Batch{}
	b.Queue(`SELECT coalesce(array_agg(id), '{}') FROM conversations WHERE customer_id = $1`, from).QueryRow(func(r pgx.Row) error {
		return r.Scan(&fromConvs)
	})
	b.Queue(`SELECT profile, profile_sources,
			(SELECT id FROM conversations WHERE customer_id = $2 AND status = 'open' FOR UPDATE),
			(SELECT id FROM conversations WHERE customer_id = $1 AND status = 'open' FOR UPDATE)
		FROM customers WHERE id = $1`, into, from).QueryRow(func(r pgx.Row) error {
		return r.Scan(&profile, &sources, &fromOpen, &intoOpen)
	})
	// What moved is recorded in a canonical order (not the order rows happened to be stored in),
	// so that the same log always gives the same customer_merges rows.
	var moved []Identity
	b.Queue(`WITH m AS (UPDATE identities SET customer_id = $2 WHERE customer_id = $1 RETURNING kind, value)
		SELECT kind, value FROM m ORDER BY kind COLLATE "C", value COLLATE "C"`, from, into).Query(func(rows pgx.Rows) error {
		var err error
		moved, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Identity, error) {
			var i Identity
			return i, r.Scan(&i.Kind, &i.Value)
		})
		return err
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return mid, err
	}

	b = &pgx.Batch{}
	// A message's customer is its conversation's: move them by conversation (an array parameter,
	// so that any cached plan probes messages_conversation), before the conversations and the
	// open conversation's messages move.
	b.Queue(`UPDATE messages SET customer_id = $2 WHERE conversation_id = ANY($1)`, fromConvs, into)
	movedMsgs := []movedMessage{}
	var mergedConv *uuid.UUID
	if fromOpen != nil && intoOpen != nil {
		b.Queue(`WITH m AS (UPDATE messages SET conversation_id = $2 WHERE conversation_id = $1 RETURNING event_id)
			SELECT event_id FROM m ORDER BY event_id COLLATE "C"`, *fromOpen, *intoOpen).Query(func(rows pgx.Rows) error {
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			for _, id := range ids {
				movedMsgs = append(movedMsgs, movedMessage{EventID: id, ConversationID: *fromOpen})
			}
			return err
		})
		b.Queue(`UPDATE conversations c SET
				channels = ARRAY(SELECT DISTINCT unnest(c.channels || f.channels) ORDER BY 1),
				last_event_at = greatest(c.last_event_at, f.last_event_at),
				first_response_at = least(c.first_response_at, f.first_response_at)
			FROM conversations f WHERE c.id = $2 AND f.id = $1`, *fromOpen, *intoOpen)
		// Before the conversations move below: the customer keeps one open conversation.
		b.Queue(`UPDATE conversations SET status = 'merged', merged_into = $2, closed_at = $3, close_reason = 'merged'
			WHERE id = $1`, *fromOpen, *intoOpen, at)
		mergedConv = fromOpen
	}
	convs := []uuid.UUID{}
	b.Queue(`WITH m AS (UPDATE conversations SET customer_id = $2 WHERE customer_id = $1 RETURNING id) SELECT id FROM m ORDER BY id`,
		from, into).Query(func(rows pgx.Rows) error {
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		convs = append(convs, ids...)
		return err
	})
	b.Queue(`UPDATE tool_results SET customer_id = $2 WHERE customer_id = $1`, from, into)
	// Profiles: the surviving customer's fields win; the merged one fills the gaps.
	b.Queue(`UPDATE customers i SET
			profile = f.profile || i.profile, profile_sources = f.profile_sources || i.profile_sources,
			display_name = coalesce(i.display_name, f.display_name), updated_at = greatest(i.updated_at, $3)
		FROM customers f WHERE i.id = $2 AND f.id = $1`, from, into, at)
	b.Queue(`UPDATE customers SET merged_into = $2, updated_at = greatest(updated_at, $3) WHERE id = $1`, from, into, at)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return mid, err
	}

	b = &pgx.Batch{}
	b.Queue(`INSERT INTO customer_merges (id, from_id, into_id, reason, event_id, at, moved_identities,
			moved_conversations, moved_messages, merged_conversation, into_profile_before, into_sources_before)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		mid, from, into, reason, w.ev.ID(), at, moved, convs, movedMsgs, mergedConv, profile, sources)
	view := queueCustomerView(b, into)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return mid, err
	}
	w.emit(TypeDeskCustomerMerged, TypeDeskCustomerMerged, into.String(), ":"+from.String(), map[string]any{
		"merge_id": mid, "from_id": from, "into_id": into, "reason": reason, "event_id": w.ev.ID(), "at": at,
		"moved_identities": len(moved), "moved_conversations": len(convs), "customer": *view,
	})
	en.log.Info("customers merged", "merge_id", mid, "from", from, "into", into, "reason", reason)
	return mid, nil
}

// unmerge undoes a merge: what moved goes back, the merged conversation reopens, the surviving
// customer's profile is restored. Undoing twice is a no-op.
func (en *Engine) unmerge(ctx context.Context, w *writer, c UnmergeCommand) error {
	tx := w.tx
	mid, err := uuid.Parse(c.MergeID)
	if err != nil {
		return bus.Permanent(fmt.Errorf("merge_id %q: %w", c.MergeID, err))
	}
	var (
		from, into       uuid.UUID
		moved            []Identity
		convs            []uuid.UUID
		msgs             []movedMessage
		mergedConv       *uuid.UUID
		profile, sources json.RawMessage
		undone           *time.Time
	)
	err = tx.QueryRow(ctx, `SELECT from_id, into_id, moved_identities, moved_conversations, moved_messages, merged_conversation,
			into_profile_before, into_sources_before, undone_at FROM customer_merges WHERE id = $1 FOR UPDATE`, mid).
		Scan(&from, &into, &moved, &convs, &msgs, &mergedConv, &profile, &sources, &undone)
	if errors.Is(err, pgx.ErrNoRows) {
		return bus.Permanent(fmt.Errorf("no merge %s", mid))
	}
	if err != nil || undone != nil {
		return err
	}
	at := w.ev.Time().UTC()
	if _, err := lockCustomers(ctx, tx, []uuid.UUID{from, into}); err != nil {
		return err
	}
	kinds, values := make([]string, len(moved)), make([]string, len(moved))
	for i, m := range moved {
		kinds[i], values[i] = m.Kind, m.Value
	}
	if _, err := tx.Exec(ctx, `UPDATE identities i SET customer_id = $1 FROM unnest($2::text[], $3::text[]) AS q(kind, value)
		WHERE i.kind = q.kind AND i.value = q.value`, from, kinds, values); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE conversations SET customer_id = $1 WHERE id = ANY($2)`, from, convs); err != nil {
		return err
	}
	if mergedConv != nil {
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = m.EventID
		}
		if _, err := tx.Exec(ctx, `UPDATE messages SET conversation_id = $1 WHERE event_id = ANY($2)`, *mergedConv, ids); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE conversations SET status = 'open', merged_into = NULL, closed_at = NULL, close_reason = NULL
			WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM conversations WHERE customer_id = $2 AND status = 'open')`, *mergedConv, from); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE messages SET customer_id = $1 WHERE conversation_id = ANY($2)`, from, convs); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE tool_results SET customer_id = $1 WHERE conversation_id = ANY($2)`, from, convs); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE customers SET merged_into = NULL, updated_at = $2 WHERE id = $1`, from, at); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE customers SET profile = $2, profile_sources = $3, updated_at = $4 WHERE id = $1`, into, profile, sources, at); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE customer_merges SET undone_at = $2, undone_by_event = $3 WHERE id = $1`, mid, at, w.ev.ID()); err != nil {
		return err
	}
	fv, err := en.customerView(ctx, tx, from)
	if err != nil {
		return err
	}
	iv, err := en.customerView(ctx, tx, into)
	if err != nil {
		return err
	}
	w.emit(TypeDeskCustomerUnmerged, TypeDeskCustomerUnmerged, from.String(), "", map[string]any{
		"merge_id": mid, "from_id": from, "into_id": into, "reason": c.Reason, "event_id": w.ev.ID(), "at": at,
		"customers": []CustomerView{fv, iv},
	})
	en.log.Info("merge undone", "merge_id", mid, "from", from, "into", into)
	return nil
}
