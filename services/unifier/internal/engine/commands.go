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

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/identity"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
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
	// A conversation's summary (omni.tool.ai.summary.completed), stored on it besides the timeline.
	summary *store.Summary
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
			return nil, bus.Permanent(fmt.Errorf("conversation_id %q: %w", cmd.cc.ConversationID, err))
		}
		cmd.conv, cmd.close, cmd.reopen = id, t == TypeCloseRequested, t == TypeReopenRequested
	case t == TypeUnmergeRequested:
		cmd.unmerge = &UnmergeCommand{}
		if err := decode(ev, cmd.unmerge); err != nil {
			return nil, err
		}
		id, err := uuid.Parse(cmd.unmerge.MergeID)
		if err != nil {
			return nil, bus.Permanent(fmt.Errorf("merge_id %q: %w", cmd.unmerge.MergeID, err))
		}
		cmd.merge = id
	case t == TypeCRMLookupCompleted || t == TypeCRMLookupFailed:
		var r CRMLookupResult
		if err := decode(ev, &r); err != nil {
			return nil, err
		}
		customer, err := uuid.Parse(r.CustomerID)
		if err != nil {
			return nil, bus.Permanent(fmt.Errorf("customer_id %q: %w", r.CustomerID, err))
		}
		if t == TypeCRMLookupCompleted && r.Found {
			cmd.crm, cmd.prefer = &r, customer
			cmd.source, cmd.reason = "crm:"+r.Provider, "CRM "+r.Provider+" record links identities"
			for _, x := range r.Identities {
				id, secret, err := en.key(x)
				if err != nil {
					en.log.Warn("CRM identity skipped", "kind", x.Kind, "err", err)
					continue
				}
				e.ids = append(e.ids, id)
				if secret != "" {
					if e.secrets == nil {
						e.secrets = map[identity.ID]string{}
					}
					e.secrets[id] = secret
				}
			}
			e.sorted = sortIDs(e.ids)
		}
		return e, prepareTool(e)
	case t == TypeSummaryCompleted:
		var sc SummaryCompleted
		if err := decode(ev, &sc); err != nil {
			return nil, err
		}
		if err := prepareTool(e); err != nil {
			return nil, err
		}
		if cmd.conv == uuid.Nil || sc.ClosedAt.IsZero() || sc.Summary == "" || (sc.Source != "llm" && sc.Source != "rules") {
			return nil, bus.Permanent(errors.New("a summary needs conversation_id, closed_at, summary and source llm or rules"))
		}
		cmd.summary = &store.Summary{Conversation: cmd.conv, EventID: ev.ID(), ClosedAt: dbTime(sc.ClosedAt), Text: sc.Summary,
			Source: sc.Source, BusinessType: sc.BusinessType, Language: sc.Language, At: e.atDB}
		if p := sc.Provenance; p != nil {
			cmd.summary.Provider, cmd.summary.Model = p.Provider, p.Model
		}
		return e, nil
	case strings.HasPrefix(t, "omni.tool.") && (strings.HasSuffix(t, ".completed") || strings.HasSuffix(t, ".failed")):
		return e, prepareTool(e)
	default:
		return nil, bus.Permanent(fmt.Errorf("unifier does not handle %s", t))
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
		return bus.Permanent(fmt.Errorf("conversation_id %q: %w", conv, err))
	}
	parts := strings.Split(e.ev.Type(), ".") // omni.tool.<tool>.<op>.<outcome>
	if len(parts) != 5 {
		return bus.Permanent(fmt.Errorf("tool result type %q is not omni.tool.<tool>.<op>.<outcome>", e.ev.Type()))
	}
	e.cmd.conv, e.cmd.tool, e.cmd.op, e.cmd.outcome = id, parts[2], parts[3], parts[4]
	return nil
}

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
			prefer := cmd.prefer // an unknown customer has no root: the event fails when applied
			store.QueueRoot(b, prefer, func(root uuid.UUID) { r.roots[prefer] = root })
		}
	}
	if len(convs) > 0 {
		store.QueueConversationCustomers(b, convs, func(conv, customer uuid.UUID) { r.convCust[conv] = customer })
	}
	if len(merges) > 0 {
		store.QueueMergeCustomers(b, merges, func(id, from, into uuid.UUID) { r.mergeCusts[id] = [2]uuid.UUID{from, into} })
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
	case cmd.summary != nil:
		if err := rd.applySummary(ctx, e); err != nil {
			return err
		}
	}
	return rd.applyTool(e)
}

// applySummary stores the summary of a conversation's close on the conversation, unless it has
// one the new one does not replace (a summary of a later close: store.Summary.Replaces), and
// announces it to the desk with an omni.desk.conversation.updated whose view carries it. The
// summary also goes on the timeline, as every tool result does (applyTool).
func (rd *round) applySummary(ctx context.Context, e *msgEvent) error {
	cmd := e.cmd
	customer, ok := rd.convCust[cmd.conv]
	if !ok {
		return bus.Permanent(fmt.Errorf("summary of unknown conversation %s", cmd.conv))
	}
	c := rd.custs[customer]
	if c == nil {
		return fmt.Errorf("customer %s was not read", customer)
	}
	old, err := store.ReadSummary(ctx, rd.tx, cmd.conv)
	if err != nil {
		return err
	}
	s := *cmd.summary
	if !s.Replaces(old) {
		return nil // the summary of an older close (or this one, from another event): the stored one stays
	}
	var v ConversationView
	if o := c.open; o != nil && o.id == cmd.conv {
		v = snapshot(o.v) // reopened since the close it summarises
	} else {
		r, err := store.ReadConversation(ctx, rd.tx, cmd.conv)
		if err != nil {
			return err
		}
		v = conversationView(r)
	}
	v.Summary = &SummaryView{Text: s.Text, Source: s.Source, BusinessType: s.BusinessType, Model: s.Model, ClosedAt: s.ClosedAt,
		EventID: s.EventID, At: s.At}
	rd.summaries = append(rd.summaries, s)
	rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskConversationUpdated, TypeDeskConversationUpdated, cmd.conv.String(), "",
		deskConversation{Conversation: v, Change: "summary added (" + s.Source + ")"}))
	return nil
}

// applyCRM applies what a CRM record found: its identities join the customer the result names
// (merging the customers they belong to), its profile fields fill the customer's profile, and
// the desk gets the customer's view.
func (rd *round) applyCRM(ctx context.Context, e *msgEvent) error {
	cmd := e.cmd
	root, ok := rd.roots[cmd.prefer]
	if !ok {
		return bus.Permanent(fmt.Errorf("unknown customer %s", cmd.prefer))
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
		row := identRow{id: id, customer: c.id, source: source, firstSeen: e.atDB, eventID: e.ev.ID(), secret: e.secrets[id]}
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
		return bus.Permanent(fmt.Errorf("tool result for unknown conversation %s", cmd.conv))
	}
	if into, ok := rd.mergedInto[customer]; ok {
		customer = into // the conversation moved with a merge this event made
	}
	rd.tools = append(rd.tools, toolRow{e: e, customer: customer})
	rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskToolResult, TypeDeskToolResult, cmd.conv.String(), "", map[string]any{
		"event_id": e.ev.ID(), "conversation_id": cmd.conv, "customer_id": customer, "tool": cmd.tool, "op": cmd.op,
		// The store keeps the result as the tool sent it (rebuilds replay it); the desk stream,
		// which every downstream subscriber reads, gets phone, ID and bank numbers masked and
		// sealed identities as kind and mask only.
		"outcome": cmd.outcome, "correlation_id": event.CorrelationID(e.ev), "result": redactJSON(pii.Conceal(e.ev.Data())), "at": e.at,
	}))
	return nil
}

// applyConversationCommand closes or reopens a conversation at an agent's request.
func (rd *round) applyConversationCommand(ctx context.Context, e *msgEvent) error {
	cmd := e.cmd
	customer, ok := rd.convCust[cmd.conv]
	if !ok {
		return bus.Permanent(fmt.Errorf("no conversation %s", cmd.conv))
	}
	c := rd.custs[customer]
	if c == nil {
		return fmt.Errorf("customer %s was not read", customer)
	}
	o := c.open
	if o == nil || o.id != cmd.conv {
		r, err := store.ReadConversation(ctx, rd.tx, cmd.conv)
		if err != nil {
			return err
		}
		o = &conv{id: cmd.conv, customer: customer, prev: r.PreviousID, v: conversationView(r)}
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
		return bus.Permanent(fmt.Errorf("conversation %s was merged into another; reopen that one", o.id))
	case c.open != nil:
		return bus.Permanent(fmt.Errorf("customer %s already has open conversation %s", c.id, c.open.id))
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

// applyUnmerge undoes a merge: what moved goes back, the merged conversation reopens, the
// surviving customer's profile is restored. Undoing twice is a no-op.
func (rd *round) applyUnmerge(ctx context.Context, e *msgEvent) error {
	mid := e.cmd.merge
	fi, ok := rd.mergeCusts[mid]
	if !ok {
		return bus.Permanent(fmt.Errorf("no merge %s", mid))
	}
	from, into := rd.custs[fi[0]], rd.custs[fi[1]]
	if from == nil || into == nil {
		return fmt.Errorf("the customers of merge %s were not read", mid)
	}
	u := store.Unmerge{ID: mid, From: from.id, Into: into.id, EventID: e.ev.ID(), At: e.at}
	var fromIdents, intoIdents, movedIdents []identRow
	add := func(dst *[]identRow) func(store.Identity) {
		return func(i store.Identity) { *dst = append(*dst, identRowOf(i)) }
	}
	b := &pgx.Batch{}
	store.QueueReadMerge(b, mid, &u.Record)
	store.QueueIdentitiesOf(b, []uuid.UUID{from.id}, add(&fromIdents))
	store.QueueIdentitiesOf(b, []uuid.UUID{into.id}, add(&intoIdents))
	store.QueueMovedIdentities(b, mid, add(&movedIdents))
	if err := rd.tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if u.Record.UndoneAt != nil {
		return nil
	}
	moved := map[identity.ID]bool{}
	for _, r := range movedIdents {
		moved[r.id] = true
	}
	fromIdents = slices.DeleteFunc(fromIdents, func(r identRow) bool { return moved[r.id] })
	fromIdents = append(fromIdents, movedIdents...)
	intoIdents = slices.DeleteFunc(intoIdents, func(r identRow) bool { return moved[r.id] })
	into.profile, into.sources = u.Record.ProfileBefore, u.Record.SourcesBefore
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
		store.QueueUnmerge(b, u)
	}
	for _, p := range rd.profiles {
		store.QueueProfile(b, p.customer, p.fields, p.sources, p.at)
	}
	for _, s := range rd.summaries {
		store.QueueUpsertSummary(b, s)
	}
	for _, t := range rd.tools {
		e, cmd := t.e, t.e.cmd
		store.QueueInsertToolResult(b, store.ToolResult{EventID: e.ev.ID(), Conversation: cmd.conv, Customer: t.customer, Tool: cmd.tool,
			Op: cmd.op, Outcome: cmd.outcome, CorrelationID: event.CorrelationID(e.ev), Body: rd.en.sealBody(e.ev.Data()), At: e.at})
	}
}

// SweepIdle closes open conversations idle longer than the idle timeout at now, each in a
// transaction of its own (a round on its customer's snapshot), as a message after the timeout
// would. It returns how many it closed.
func (en *Engine) SweepIdle(ctx context.Context, now time.Time) (int, error) {
	if en.cfg.IdleTimeout <= 0 {
		return 0, nil
	}
	idle, err := store.IdleConversations(ctx, en.pool, now.Add(-en.cfg.IdleTimeout), 1000)
	if err != nil {
		return 0, err
	}
	closed := 0
	for _, p := range idle {
		var done bool
		err := en.inTx(ctx, func(tx pgx.Tx) (int, error) {
			rd := &round{runTx: &runTx{en: en, tx: tx}, custs: map[uuid.UUID]*cust{}}
			if _, err := rd.lock(ctx, []uuid.UUID{p.Customer}, nil, nil); err != nil {
				return 0, err
			}
			// Touched, closed or merged away meanwhile: nothing to do.
			c := rd.custs[p.Customer]
			if done = c != nil && c.open != nil && c.open.id == p.ID && rd.idle(c.open, now); !done {
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
