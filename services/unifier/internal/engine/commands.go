package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/identity"
)

// Commands on the snapshot: the events of a batch that are not messages or statuses — desk
// commands (close, reopen, unmerge) and tool results (a CRM lookup's may link identities, merge
// customers and fill the profile). Each is applied in a round of its own, on the snapshot of the
// customers it names: the events before it are written first, those after it wait for the next
// round.

// command is what a command event says, decoded and checked before any database work.
type command struct {
	conv          uuid.UUID // the conversation it is about (close, reopen, a tool result), if any
	close, reopen bool
	cc            ConversationCommand
	unmerge       *UnmergeCommand
	merge         uuid.UUID
	// A CRM lookup that found a record: its identities are the event's ids.
	crm            *CRMLookupResult
	prefer         uuid.UUID // the customer the result names
	source, reason string
	// A tool result on a conversation's timeline (tool empty: not about a conversation).
	tool, op, outcome string
}

// prepareCommand decodes and checks a command event; its errors are permanent.
func (en *Engine) prepareCommand(i int, d bus.Delivery) (*msgEvent, error) {
	ev := d.Event
	cmd := &command{}
	e := &msgEvent{i: i, ev: ev, cmd: cmd, at: ev.Time().UTC()}
	e.atDB = dbTime(e.at)
	switch t := ev.Type(); {
	case t == TypeCloseRequested || t == TypeReopenRequested:
		if err := decode(ev, &cmd.cc); err != nil {
			return nil, err
		}
		id, err := uuid.Parse(cmd.cc.ConversationID)
		if err != nil {
			return nil, resilience.Permanent(fmt.Errorf("conversation_id %q: %w", cmd.cc.ConversationID, err))
		}
		cmd.conv, cmd.close, cmd.reopen = id, t == TypeCloseRequested, t == TypeReopenRequested
	case t == TypeUnmergeRequested:
		cmd.unmerge = &UnmergeCommand{}
		if err := decode(ev, cmd.unmerge); err != nil {
			return nil, err
		}
		id, err := uuid.Parse(cmd.unmerge.MergeID)
		if err != nil {
			return nil, resilience.Permanent(fmt.Errorf("merge_id %q: %w", cmd.unmerge.MergeID, err))
		}
		cmd.merge = id
	case t == TypeCRMLookupCompleted || t == TypeCRMLookupFailed:
		var r CRMLookupResult
		if err := decode(ev, &r); err != nil {
			return nil, err
		}
		customer, err := uuid.Parse(r.CustomerID)
		if err != nil {
			return nil, resilience.Permanent(fmt.Errorf("customer_id %q: %w", r.CustomerID, err))
		}
		if t == TypeCRMLookupCompleted && r.Found {
			cmd.crm, cmd.prefer = &r, customer
			cmd.source, cmd.reason = "crm:"+r.Provider, "CRM "+r.Provider+" record links identities"
			for _, x := range r.Identities {
				id, err := en.norm.Normalize(x.Kind, x.Value)
				if err != nil {
					en.log.Warn("CRM identity skipped", "kind", x.Kind, "err", err)
					continue
				}
				e.ids = append(e.ids, id)
			}
			e.sorted = sortIDs(e.ids)
		}
		return e, prepareTool(e)
	case strings.HasPrefix(t, "omni.tool.") && (strings.HasSuffix(t, ".completed") || strings.HasSuffix(t, ".failed")):
		return e, prepareTool(e)
	default:
		return nil, resilience.Permanent(fmt.Errorf("unifier does not handle %s", t))
	}
	return e, nil
}

// prepareTool reads the conversation a tool result is about and the tool, op and outcome of its
// type.
func prepareTool(e *msgEvent) error {
	var body map[string]any
	if err := decode(e.ev, &body); err != nil {
		return err
	}
	conv, _ := body["conversation_id"].(string)
	if conv == "" {
		return nil // not about a conversation: nothing to put on a timeline
	}
	id, err := uuid.Parse(conv)
	if err != nil {
		return resilience.Permanent(fmt.Errorf("conversation_id %q: %w", conv, err))
	}
	parts := strings.Split(e.ev.Type(), ".") // omni.tool.<tool>.<op>.<outcome>
	if len(parts) != 5 {
		return resilience.Permanent(fmt.Errorf("tool result type %q is not omni.tool.<tool>.<op>.<outcome>", e.ev.Type()))
	}
	e.cmd.conv, e.cmd.tool, e.cmd.op, e.cmd.outcome = id, parts[2], parts[3], parts[4]
	return nil
}

const (
	// The customer of each conversation and of each merge commands name, and the live customer
	// of each a CRM result names.
	sqlConversationCustomers = `SELECT c.id, c.customer_id FROM unnest($1::uuid[]) AS q(id)
		CROSS JOIN LATERAL (SELECT id, customer_id FROM conversations WHERE id = q.id OFFSET 0) c`
	sqlMergeCustomers = `SELECT m.id, m.from_id, m.into_id FROM unnest($1::uuid[]) AS q(id)
		CROSS JOIN LATERAL (SELECT id, from_id, into_id FROM customer_merges WHERE id = q.id OFFSET 0) m`
	sqlRoot = `WITH RECURSIVE chain(id, merged_into, depth) AS (
			SELECT id, merged_into, 0 FROM customers WHERE id = $1
			UNION ALL SELECT c.id, c.merged_into, chain.depth + 1 FROM customers c JOIN chain ON c.id = chain.merged_into WHERE chain.depth < 100)
		SELECT id FROM chain WHERE merged_into IS NULL LIMIT 1`
	sqlConversation = `SELECT ` + conversationColumns + ` FROM conversations WHERE id = $1`
	sqlMerge        = `SELECT moved_identities, moved_conversations, moved_messages, merged_conversation,
			into_profile_before, into_sources_before, undone_at FROM customer_merges WHERE id = $1 FOR UPDATE`
	// The identities a merge moved, wherever they are now.
	sqlMovedIdentities = `SELECT i.customer_id, i.kind, i.value, i.source, i.first_seen FROM customer_merges m
		CROSS JOIN LATERAL jsonb_to_recordset(m.moved_identities) AS q(kind text, value text)
		JOIN identities i ON i.kind = q.kind AND i.value = q.value WHERE m.id = $1`
)

// queueCommandLookup queues the reads of whom the commands of evs are about.
func (r *runTx) queueCommandLookup(b *pgx.Batch, evs []*msgEvent) {
	var convs, merges []uuid.UUID
	r.convCust, r.mergeCusts, r.roots = map[uuid.UUID]uuid.UUID{}, map[uuid.UUID][2]uuid.UUID{}, map[uuid.UUID]uuid.UUID{}
	for _, e := range evs {
		cmd := e.cmd
		if cmd == nil {
			continue
		}
		if cmd.conv != uuid.Nil {
			convs = append(convs, cmd.conv)
		}
		if cmd.unmerge != nil {
			merges = append(merges, cmd.merge)
		}
		if cmd.crm != nil {
			prefer := cmd.prefer
			b.Queue(sqlRoot, prefer).QueryRow(func(row pgx.Row) error {
				var root uuid.UUID
				err := row.Scan(&root)
				if errors.Is(err, pgx.ErrNoRows) {
					return nil // an unknown customer: the event fails when applied
				}
				r.roots[prefer] = root
				return err
			})
		}
	}
	if len(convs) > 0 {
		b.Queue(sqlConversationCustomers, pgUUIDs(convs)).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id, c uuid.UUID
				if err := rows.Scan(&id, &c); err != nil {
					return err
				}
				r.convCust[id] = c
			}
			return rows.Err()
		})
	}
	if len(merges) > 0 {
		b.Queue(sqlMergeCustomers, pgUUIDs(merges)).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id, from, into uuid.UUID
				if err := rows.Scan(&id, &from, &into); err != nil {
					return err
				}
				r.mergeCusts[id] = [2]uuid.UUID{from, into}
			}
			return rows.Err()
		})
	}
}

// commandCustomers returns the customers command e is about besides those of its identities,
// and whether they may have been merged away (an unmerge's).
func (r *runTx) commandCustomers(e *msgEvent) (cs []uuid.UUID, mayBeMerged bool) {
	cmd := e.cmd
	if c, ok := r.convCust[cmd.conv]; ok && cmd.conv != uuid.Nil {
		cs = append(cs, c)
	}
	if c, ok := r.roots[cmd.prefer]; ok && cmd.crm != nil {
		cs = append(cs, c)
	}
	if m, ok := r.mergeCusts[cmd.merge]; ok && cmd.unmerge != nil {
		cs = append(cs, m[0], m[1])
		mayBeMerged = true
	}
	return cs, mayBeMerged
}

// applyCommand applies command e, alone in its round.
func (rd *round) applyCommand(ctx context.Context, e *msgEvent) error {
	cmd := e.cmd
	switch {
	case cmd.close || cmd.reopen:
		return rd.applyConversationCommand(ctx, e)
	case cmd.unmerge != nil:
		return rd.applyUnmerge(ctx, e)
	case cmd.crm != nil:
		if err := rd.applyCRM(ctx, e); err != nil {
			return err
		}
	}
	return rd.applyTool(e)
}

// applyCRM applies what a CRM record found: its identities join the customer the result names
// (merging the customers they belong to), its profile fields fill the customer's profile, and
// the desk gets the customer's view.
func (rd *round) applyCRM(ctx context.Context, e *msgEvent) error {
	cmd := e.cmd
	root, ok := rd.roots[cmd.prefer]
	if !ok {
		return resilience.Permanent(fmt.Errorf("unknown customer %s", cmd.prefer))
	}
	cs := []uuid.UUID{root}
	for _, id := range e.sorted {
		if c, ok := rd.idents[id]; ok && !slices.Contains(cs, c) {
			cs = append(cs, c)
		}
	}
	into := root
	if len(cs) > 1 {
		var err error
		if into, err = rd.mergeCustomers(ctx, e, cs, cmd.reason); err != nil {
			return err
		}
	}
	c := rd.custs[into]
	if c == nil {
		return fmt.Errorf("customer %s was not read", into)
	}
	rd.link(e, c, cmd.source)
	if p := cmd.crm.Profile; len(p) > 0 {
		fields, _ := json.Marshal(p)
		src := map[string]any{}
		for k := range p {
			src[k] = map[string]any{"source": cmd.crm.Provider, "event_id": e.ev.ID(), "at": e.at}
		}
		srcJSON, _ := json.Marshal(src)
		c.profile, c.sources = concatJSON(c.profile, fields), concatJSON(c.sources, srcJSON)
		rd.profiles = append(rd.profiles, profileUpdate{customer: c.id, fields: fields, sources: srcJSON, at: e.at})
	}
	rd.customerUpdated(e, c)
	return nil
}

// link attaches e's identities that no customer has to c, and returns them.
func (rd *round) link(e *msgEvent, c *cust, source string) []identity.ID {
	var linked []identity.ID
	for _, id := range e.sorted {
		if _, ok := rd.idents[id]; ok {
			continue
		}
		rd.idents[id] = c.id
		row := identRow{id: id, customer: c.id, source: source, firstSeen: e.atDB, eventID: e.ev.ID()}
		rd.newIDs = append(rd.newIDs, row)
		c.added = append(c.added, row)
		linked = append(linked, id)
	}
	return linked
}

// customerUpdated emits customer.updated with c's view as it is now.
func (rd *round) customerUpdated(e *msgEvent, c *cust) {
	c.needStored = c.needStored || !c.isNew
	rd.views = append(rd.views, pendingView{c: c, nAdded: len(c.added), name: c.name, row: len(rd.out)})
	rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskCustomerUpdated, TypeDeskCustomerUpdated, c.id.String(), ":"+c.id.String(), nil))
}

// profileUpdate is a CRM record's fields merged into a customer's profile.
type profileUpdate struct {
	customer        uuid.UUID
	fields, sources json.RawMessage
	at              time.Time
}

// toolRow is a tool result on a conversation's timeline.
type toolRow struct {
	e        *msgEvent
	customer uuid.UUID
}

// applyTool stores a tool's completed or failed result on its conversation's timeline.
func (rd *round) applyTool(e *msgEvent) error {
	cmd := e.cmd
	if cmd.tool == "" {
		return nil
	}
	customer, ok := rd.convCust[cmd.conv]
	if !ok {
		return resilience.Permanent(fmt.Errorf("tool result for unknown conversation %s", cmd.conv))
	}
	if into, ok := rd.mergedInto[customer]; ok {
		customer = into // the conversation moved with a merge this event made
	}
	rd.tools = append(rd.tools, toolRow{e: e, customer: customer})
	rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskToolResult, TypeDeskToolResult, cmd.conv.String(), "", map[string]any{
		"event_id": e.ev.ID(), "conversation_id": cmd.conv, "customer_id": customer, "tool": cmd.tool, "op": cmd.op,
		// The store keeps the result as the tool sent it (rebuilds replay it); the desk stream,
		// which every downstream subscriber reads, gets phone, ID and bank numbers masked.
		"outcome": cmd.outcome, "correlation_id": event.CorrelationID(e.ev), "result": redactJSON(e.ev.Data()), "at": e.at,
	}))
	return nil
}

// applyConversationCommand closes or reopens a conversation at an agent's request.
func (rd *round) applyConversationCommand(ctx context.Context, e *msgEvent) error {
	cmd := e.cmd
	customer, ok := rd.convCust[cmd.conv]
	if !ok {
		return resilience.Permanent(fmt.Errorf("no conversation %s", cmd.conv))
	}
	c := rd.custs[customer]
	if c == nil {
		return fmt.Errorf("customer %s was not read", customer)
	}
	o := c.open
	if o == nil || o.id != cmd.conv {
		v, err := scanConversation(rd.tx.QueryRow(ctx, sqlConversation, cmd.conv))
		if err != nil {
			return err
		}
		o = &conv{id: cmd.conv, customer: customer, v: v}
	}
	if cmd.close {
		if o.v.Status != "open" {
			return nil // already closed: closing is idempotent
		}
		reason := cmd.cc.Reason
		if reason == "" {
			reason = "closed by agent"
		}
		at := e.atDB
		o.v.Status, o.v.ClosedAt, o.v.CloseReason = "closed", &at, reason
		rd.changed(o)
		c.open = nil
		rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskConversationClosed, TypeDeskConversationClosed, o.id.String(), "",
			map[string]any{"conversation": snapshot(o.v), "reason": reason}))
		return nil
	}
	switch {
	case o.v.Status == "open":
		return nil
	case o.v.Status == "merged":
		return resilience.Permanent(fmt.Errorf("conversation %s was merged into another; reopen that one", o.id))
	case c.open != nil:
		return resilience.Permanent(fmt.Errorf("customer %s already has open conversation %s", c.id, c.open.id))
	}
	o.v.Status, o.v.ClosedAt, o.v.CloseReason = "open", nil, ""
	if e.atDB.After(o.v.LastEventAt) {
		o.v.LastEventAt = e.atDB
	}
	rd.changed(o)
	c.open = o
	rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskConversationOpened, TypeDeskConversationOpened, o.id.String(), "",
		map[string]any{"conversation": snapshot(o.v), "reopened": true}))
	return nil
}

// unmergeRec is an undone merge: what moves back.
type unmergeRec struct {
	id, from, into   uuid.UUID
	eventID          string
	e                *msgEvent
	moved            []Identity
	convs            []uuid.UUID
	msgs             []movedMessage
	mergedConv       *uuid.UUID
	profile, sources json.RawMessage
}

// applyUnmerge undoes a merge: what moved goes back, the merged conversation reopens, the
// surviving customer's profile is restored. Undoing twice is a no-op.
func (rd *round) applyUnmerge(ctx context.Context, e *msgEvent) error {
	mid := e.cmd.merge
	fi, ok := rd.mergeCusts[mid]
	if !ok {
		return resilience.Permanent(fmt.Errorf("no merge %s", mid))
	}
	from, into := rd.custs[fi[0]], rd.custs[fi[1]]
	if from == nil || into == nil {
		return fmt.Errorf("the customers of merge %s were not read", mid)
	}
	u := unmergeRec{id: mid, from: from.id, into: into.id, e: e}
	var undone *time.Time
	var fromIdents, intoIdents, movedIdents []identRow
	b := &pgx.Batch{}
	b.Queue(sqlMerge, mid).QueryRow(func(row pgx.Row) error {
		return row.Scan(&u.moved, &u.convs, &u.msgs, &u.mergedConv, &u.profile, &u.sources, &undone)
	})
	scanIdents := func(dst *[]identRow) func(pgx.Rows) error {
		return func(rows pgx.Rows) error {
			for rows.Next() {
				var r identRow
				if err := rows.Scan(&r.customer, &r.id.Kind, &r.id.Value, &r.source, &r.firstSeen); err != nil {
					return err
				}
				*dst = append(*dst, r)
			}
			return rows.Err()
		}
	}
	b.Queue(sqlIdentitiesOf, pgUUIDs([]uuid.UUID{from.id})).Query(scanIdents(&fromIdents))
	b.Queue(sqlIdentitiesOf, pgUUIDs([]uuid.UUID{into.id})).Query(scanIdents(&intoIdents))
	b.Queue(sqlMovedIdentities, mid).Query(scanIdents(&movedIdents))
	if err := rd.tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if undone != nil {
		return nil
	}
	moved := map[identity.ID]bool{}
	for _, r := range movedIdents {
		moved[r.id] = true
	}
	fromIdents = slices.DeleteFunc(fromIdents, func(r identRow) bool { return moved[r.id] })
	fromIdents = append(fromIdents, movedIdents...)
	intoIdents = slices.DeleteFunc(intoIdents, func(r identRow) bool { return moved[r.id] })
	into.profile, into.sources = u.profile, u.sources
	rd.unmerges = append(rd.unmerges, u)
	rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskCustomerUnmerged, TypeDeskCustomerUnmerged, from.id.String(), "", map[string]any{
		"merge_id": mid, "from_id": from.id, "into_id": into.id, "reason": e.cmd.unmerge.Reason, "event_id": e.ev.ID(), "at": e.at,
		"customers": []CustomerView{customerViewOf(from, fromIdents, from.name), customerViewOf(into, intoIdents, into.name)},
	}))
	rd.en.log.Info("merge undone", "merge_id", mid, "from", from.id, "into", into.id)
	return nil
}

// queueCommands queues the writes of the round's unmerges, profile updates and tool results.
func (rd *round) queueCommands(b *pgx.Batch) {
	for _, u := range rd.unmerges {
		kinds, values := make([]string, len(u.moved)), make([]string, len(u.moved))
		for i, m := range u.moved {
			kinds[i], values[i] = m.Kind, m.Value
		}
		at := u.e.at
		b.Queue(`UPDATE identities i SET customer_id = $1 FROM unnest($2::text[], $3::text[]) AS q(kind, value)
			WHERE i.kind = q.kind AND i.value = q.value`, u.from, kinds, values)
		b.Queue(`UPDATE conversations SET customer_id = $1 WHERE id = ANY($2)`, u.from, u.convs)
		if u.mergedConv != nil {
			ids := make([]string, len(u.msgs))
			for i, m := range u.msgs {
				ids[i] = m.EventID
			}
			b.Queue(`UPDATE messages SET conversation_id = $1 WHERE event_id = ANY($2)`, *u.mergedConv, ids)
			b.Queue(`UPDATE conversations SET status = 'open', merged_into = NULL, closed_at = NULL, close_reason = NULL
				WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM conversations WHERE customer_id = $2 AND status = 'open')`, *u.mergedConv, u.from)
		}
		b.Queue(`UPDATE messages SET customer_id = $1 WHERE conversation_id = ANY($2)`, u.from, u.convs)
		b.Queue(`UPDATE tool_results SET customer_id = $1 WHERE conversation_id = ANY($2)`, u.from, u.convs)
		b.Queue(`UPDATE customers SET merged_into = NULL, updated_at = $2 WHERE id = $1`, u.from, at)
		b.Queue(`UPDATE customers SET profile = $2, profile_sources = $3, updated_at = $4 WHERE id = $1`, u.into, u.profile, u.sources, at)
		b.Queue(`UPDATE customer_merges SET undone_at = $2, undone_by_event = $3 WHERE id = $1`, u.id, at, u.e.ev.ID())
	}
	for _, p := range rd.profiles {
		b.Queue(`UPDATE customers SET profile = profile || $2, profile_sources = profile_sources || $3,
			updated_at = greatest(updated_at, $4) WHERE id = $1`, p.customer, p.fields, p.sources, p.at)
	}
	for _, t := range rd.tools {
		e, cmd := t.e, t.e.cmd
		b.Queue(`INSERT INTO tool_results (event_id, conversation_id, customer_id, tool, op, outcome, correlation_id, body, at)
			VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), $8, $9) ON CONFLICT DO NOTHING`,
			e.ev.ID(), cmd.conv, t.customer, cmd.tool, cmd.op, cmd.outcome, event.CorrelationID(e.ev), e.ev.Data(), e.at)
	}
}

// SweepIdle closes open conversations idle longer than the idle timeout at now, each in a
// transaction of its own (a round on its customer's snapshot), as a message after the timeout
// would. It returns how many it closed.
func (en *Engine) SweepIdle(ctx context.Context, now time.Time) (int, error) {
	if en.cfg.IdleTimeout <= 0 {
		return 0, nil
	}
	rows, err := en.pool.Query(ctx, `SELECT id, customer_id FROM conversations WHERE status = 'open' AND last_event_at < $1 LIMIT 1000`,
		now.Add(-en.cfg.IdleTimeout))
	if err != nil {
		return 0, err
	}
	type pair struct{ conv, cust uuid.UUID }
	idle, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pair, error) {
		var p pair
		return p, r.Scan(&p.conv, &p.cust)
	})
	if err != nil {
		return 0, err
	}
	closed := 0
	for _, p := range idle {
		var done bool
		err := en.inTx(ctx, func(tx pgx.Tx) (int, error) {
			rd := &round{runTx: &runTx{en: en, tx: tx}, custs: map[uuid.UUID]*cust{}}
			if _, err := rd.lock(ctx, []uuid.UUID{p.cust}, pgtype.Timestamptz{}, nil); err != nil {
				return 0, err
			}
			// Touched, closed or merged away meanwhile: nothing to do.
			c := rd.custs[p.cust]
			if done = c != nil && c.open != nil && c.open.id == p.conv && rd.idle(c.open, now); !done {
				return 0, nil
			}
			rd.closeIdle(c)
			return len(rd.out), rd.write(ctx)
		})
		if err != nil {
			return closed, err
		}
		if done {
			closed++
		}
	}
	return closed, nil
}
