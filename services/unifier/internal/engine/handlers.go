package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/identity"
)

func (en *Engine) onMessage(ctx context.Context, w *writer) error {
	var m MessageReceived
	if err := decode(w.ev, &m); err != nil {
		return err
	}
	ids, err := en.normalize(m.From, m.Identities)
	if err != nil {
		return err
	}
	at := eventTime(w.ev, m.SentAt)
	res, err := en.resolve(ctx, w, ids, uuid.Nil, m.Channel, "identity link via "+m.Channel+" message", at)
	if err != nil {
		return err
	}
	if m.DisplayName != "" {
		const setName = `UPDATE customers SET display_name = $2 WHERE id = $1 AND display_name IS NULL`
		if res.created || len(res.linked) > 0 { // the customer view below must show it
			if _, err := w.tx.Exec(ctx, setName, res.customer, m.DisplayName); err != nil {
				return err
			}
		} else {
			w.queue(setName, res.customer, m.DisplayName)
		}
	}
	conv, err := en.touch(ctx, w, res.customer, m.Channel, at)
	if err != nil {
		return err
	}
	// Sent with the outbox rows at flush, in the same round trip.
	w.queue(`INSERT INTO messages (event_id, conversation_id, customer_id, channel, direction, identity_kind,
			identity_value, body, sent_at) VALUES ($1, $2, $3, $4, 'inbound', $5, $6, $7, $8)`,
		w.ev.ID(), conv.ID, res.customer, m.Channel, ids[0].Kind, ids[0].Value, m.Message, at)
	if err := en.customerChanged(ctx, w, res, conv.ID); err != nil {
		return err
	}
	w.messageAdded(addedMessage{eventID: w.ev.ID(), conv: conv, customer: res.customer, channel: m.Channel, inbound: true,
		who: ids[0], body: m.Message, at: at, displayName: m.DisplayName})
	return nil
}

// customerChanged emits customer.updated and asks the CRM about new phones and emails when an
// event created a customer or linked identities to it.
func (en *Engine) customerChanged(ctx context.Context, w *writer, res resolution, convID string) error {
	if !res.created && len(res.linked) == 0 {
		return nil
	}
	view, err := en.customerView(ctx, w.tx, res.customer)
	if err != nil {
		return err
	}
	w.emit(TypeDeskCustomerUpdated, TypeDeskCustomerUpdated, res.customer.String(), ":"+res.customer.String(), deskCustomer{Customer: view})
	for _, id := range res.linked {
		if id.Kind != identity.Phone && id.Kind != identity.Email {
			continue
		}
		// The discriminator is derived, never the identity itself: ids end up in logs and headers.
		w.emit(TypeCRMLookupRequested, SubjectCRMLookup, res.customer.String(), ":"+derive("lookup", id.String()).String(), CRMLookupRequest{
			CustomerID: res.customer.String(), ConversationID: convID, Query: Identity{Kind: id.Kind, Value: id.Value},
		})
	}
	return nil
}

func (en *Engine) onStatus(ctx context.Context, w *writer) error {
	var s StatusUpdated
	if err := decode(w.ev, &s); err != nil {
		return err
	}
	at := eventTime(w.ev, s.At)
	// One round trip: the update, and whether the message exists at all — not updated, a known
	// message means a status older than the one it has (statuses arrive out of order), which
	// changes nothing.
	var updated *string
	var known bool
	err := w.tx.QueryRow(ctx, sqlStatusUpdate, s.MessageID, s.Status, at).Scan(&updated, &known)
	var convID string
	switch {
	case err != nil:
	case updated != nil:
		convID = *updated
	case known:
		return nil
	default:
		err = pgx.ErrNoRows
	}
	switch {
	case err == nil:
	case !errors.Is(err, pgx.ErrNoRows):
		return err
	case s.To == nil || len(s.Message) == 0:
		return nil // a status for a message this store never saw, with nothing to record
	default:
		// First news of an outbound message: record it on the customer's conversation.
		ids, err := en.normalize(*s.To, nil)
		if err != nil {
			return err
		}
		res, err := en.resolve(ctx, w, ids, uuid.Nil, s.Channel, "outbound via "+s.Channel, at)
		if err != nil {
			return err
		}
		conv, err := en.touch(ctx, w, res.customer, s.Channel, at)
		if err != nil {
			return err
		}
		convID = conv.ID
		tag, err := w.tx.Exec(ctx, `INSERT INTO messages (event_id, conversation_id, customer_id, channel, direction, identity_kind,
				identity_value, body, sent_at, status, status_at) VALUES ($1, $2, $3, $4, 'outbound', $5, $6, $7, $8, $9, $8)
			ON CONFLICT (event_id) DO NOTHING`,
			s.MessageID, conv.ID, res.customer, s.Channel, ids[0].Kind, ids[0].Value, s.Message, at, s.Status)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			// Another transaction recorded the message since our update found nothing (its
			// first status arrived on another lane): this one is an update after all.
			return en.onStatus(ctx, w)
		}
		if _, err := w.tx.Exec(ctx, `UPDATE conversations SET first_response_at = coalesce(first_response_at, $2) WHERE id = $1`, conv.ID, at); err != nil {
			return err
		}
		if err := en.customerChanged(ctx, w, res, conv.ID); err != nil {
			return err
		}
		w.messageAdded(addedMessage{eventID: s.MessageID, conv: conv, customer: res.customer, channel: s.Channel,
			who: ids[0], body: s.Message, at: at, status: s.Status})
		return nil
	}
	w.emit(TypeDeskMessageUpdated, TypeDeskMessageUpdated, convID, "", messageUpdatedData(s, convID, at))
	return nil
}

// sqlStatusUpdate records status $2 at $3 on message $1 unless it has a later one, and returns the
// message's conversation if it did, and whether the message exists: one round trip.
const sqlStatusUpdate = `WITH u AS (UPDATE messages SET status = $2, status_at = $3
		WHERE event_id = $1 AND (status_at IS NULL OR status_at <= $3) RETURNING conversation_id::text)
	SELECT (SELECT conversation_id FROM u), EXISTS (SELECT 1 FROM messages WHERE event_id = $1)`

// messageUpdatedData is the data of the omni.desk.message.updated event about status s.
func messageUpdatedData(s StatusUpdated, convID string, at time.Time) map[string]any {
	upd := map[string]any{"message_id": s.MessageID, "conversation_id": convID, "channel": s.Channel, "status": s.Status, "at": at}
	if s.ErrorCode != "" {
		upd["error_code"] = s.ErrorCode
	}
	if s.Error != "" {
		upd["error"] = s.Error
	}
	return upd
}

func (en *Engine) onConversationCommand(ctx context.Context, w *writer) error {
	var c ConversationCommand
	if err := decode(w.ev, &c); err != nil {
		return err
	}
	id, err := uuid.Parse(c.ConversationID)
	if err != nil {
		return bus.Permanent(fmt.Errorf("conversation_id %q: %w", c.ConversationID, err))
	}
	at := w.ev.Time().UTC()
	var customer uuid.UUID
	var status string
	if err := w.tx.QueryRow(ctx, `SELECT customer_id, status FROM conversations WHERE id = $1`, id).Scan(&customer, &status); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return bus.Permanent(fmt.Errorf("no conversation %s", id))
		}
		return err
	}
	if _, err := lockCustomers(ctx, w.tx, []uuid.UUID{customer}); err != nil {
		return err
	}
	if w.ev.Type() == TypeCloseRequested {
		if status != "open" {
			return nil // already closed: closing is idempotent
		}
		reason := c.Reason
		if reason == "" {
			reason = "closed by agent"
		}
		if _, err := w.tx.Exec(ctx, `UPDATE conversations SET status = 'closed', closed_at = $2, close_reason = $3 WHERE id = $1`, id, at, reason); err != nil {
			return err
		}
		view, err := en.conversationView(ctx, w.tx, id)
		if err != nil {
			return err
		}
		w.emit(TypeDeskConversationClosed, TypeDeskConversationClosed, id.String(), "", map[string]any{"conversation": view, "reason": reason})
		return nil
	}
	if status == "open" {
		return nil
	}
	if status == "merged" {
		return bus.Permanent(fmt.Errorf("conversation %s was merged into another; reopen that one", id))
	}
	var other *uuid.UUID
	if err := w.tx.QueryRow(ctx, `SELECT (SELECT id FROM conversations WHERE customer_id = $1 AND status = 'open')`, customer).Scan(&other); err != nil {
		return err
	}
	if other != nil {
		return bus.Permanent(fmt.Errorf("customer %s already has open conversation %s", customer, *other))
	}
	if _, err := w.tx.Exec(ctx, `UPDATE conversations SET status = 'open', closed_at = NULL, close_reason = NULL,
		last_event_at = greatest(last_event_at, $2) WHERE id = $1`, id, at); err != nil {
		return err
	}
	view, err := en.conversationView(ctx, w.tx, id)
	if err != nil {
		return err
	}
	w.emit(TypeDeskConversationOpened, TypeDeskConversationOpened, id.String(), "", map[string]any{"conversation": view, "reopened": true})
	return nil
}

func (en *Engine) onCRMResult(ctx context.Context, w *writer) error {
	var r CRMLookupResult
	if err := decode(w.ev, &r); err != nil {
		return err
	}
	customer, err := uuid.Parse(r.CustomerID)
	if err != nil {
		return bus.Permanent(fmt.Errorf("customer_id %q: %w", r.CustomerID, err))
	}
	if w.ev.Type() == TypeCRMLookupCompleted && r.Found {
		at := w.ev.Time().UTC()
		var ids []identity.ID
		for _, x := range r.Identities {
			id, err := en.norm.Normalize(x.Kind, x.Value)
			if err != nil {
				en.log.Warn("CRM identity skipped", "kind", x.Kind, "err", err)
				continue
			}
			ids = append(ids, id)
		}
		res, err := en.resolve(ctx, w, ids, customer, "crm:"+r.Provider, "CRM "+r.Provider+" record links identities", at)
		if err != nil {
			return err
		}
		if len(r.Profile) > 0 {
			fields, _ := json.Marshal(r.Profile)
			src := map[string]any{}
			for k := range r.Profile {
				src[k] = map[string]any{"source": r.Provider, "event_id": w.ev.ID(), "at": at}
			}
			srcJSON, _ := json.Marshal(src)
			if _, err := w.tx.Exec(ctx, `UPDATE customers SET profile = profile || $2, profile_sources = profile_sources || $3,
				updated_at = greatest(updated_at, $4) WHERE id = $1`, res.customer, fields, srcJSON, at); err != nil {
				return err
			}
		}
		view, err := en.customerView(ctx, w.tx, res.customer)
		if err != nil {
			return err
		}
		w.emit(TypeDeskCustomerUpdated, TypeDeskCustomerUpdated, res.customer.String(), ":"+res.customer.String(), deskCustomer{Customer: view})
	}
	return en.onToolResult(ctx, w)
}

// onToolResult stores a tool's completed/failed result on its conversation's timeline.
func (en *Engine) onToolResult(ctx context.Context, w *writer) error {
	var body map[string]any
	if err := decode(w.ev, &body); err != nil {
		return err
	}
	conv, _ := body["conversation_id"].(string)
	if conv == "" {
		return nil // not about a conversation: nothing to put on a timeline
	}
	convID, err := uuid.Parse(conv)
	if err != nil {
		return bus.Permanent(fmt.Errorf("conversation_id %q: %w", conv, err))
	}
	var customer uuid.UUID
	if err := w.tx.QueryRow(ctx, `SELECT customer_id FROM conversations WHERE id = $1`, convID).Scan(&customer); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return bus.Permanent(fmt.Errorf("tool result for unknown conversation %s", convID))
		}
		return err
	}
	parts := strings.Split(w.ev.Type(), ".") // omni.tool.<tool>.<op>.<outcome>
	if len(parts) != 5 {
		return bus.Permanent(fmt.Errorf("tool result type %q is not omni.tool.<tool>.<op>.<outcome>", w.ev.Type()))
	}
	tool, op, outcome := parts[2], parts[3], parts[4]
	at := w.ev.Time().UTC()
	if _, err := w.tx.Exec(ctx, `INSERT INTO tool_results (event_id, conversation_id, customer_id, tool, op, outcome, correlation_id, body, at)
		VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), $8, $9) ON CONFLICT DO NOTHING`,
		w.ev.ID(), convID, customer, tool, op, outcome, corr(w), w.ev.Data(), at); err != nil {
		return err
	}
	w.emit(TypeDeskToolResult, TypeDeskToolResult, convID.String(), "", map[string]any{
		"event_id": w.ev.ID(), "conversation_id": convID, "customer_id": customer, "tool": tool, "op": op,
		// The store keeps the result as the tool sent it (rebuilds replay it); the desk stream,
		// which every downstream subscriber reads, gets phone, ID and bank numbers masked.
		"outcome": outcome, "correlation_id": corr(w), "result": redactJSON(w.ev.Data()), "at": at,
	})
	return nil
}

// redactJSON returns doc with every phone, ID-card and bank-card number masked, in strings and in
// numbers (a masked number becomes a string), keeping it valid JSON.
func redactJSON(doc []byte) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return json.RawMessage(`{}`) // unreachable: the event passed its schema
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case string:
			return pii.Redact(x)
		case json.Number:
			if pii.Contains(x.String()) {
				return pii.Redact(x.String())
			}
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		}
		return v
	}
	out, err := json.Marshal(walk(v))
	if err != nil {
		return json.RawMessage(`{}`)
	}
	return out
}

func corr(w *writer) string { return event.CorrelationID(w.ev) }

// touch returns the customer's open conversation after recording activity on channel at time
// at, closing it first when it has been idle longer than the idle timeout and opening a new one
// (linked to the previous) when there is none.
func (en *Engine) touch(ctx context.Context, w *writer, customer uuid.UUID, channel string, at time.Time) (ConversationView, error) {
	tx := w.tx
	var id uuid.UUID
	var last time.Time
	var known bool // the conversation already lists channel
	err := tx.QueryRow(ctx, `SELECT id, last_event_at, $2 = ANY(channels) FROM conversations WHERE customer_id = $1 AND status = 'open' FOR UPDATE`,
		customer, channel).Scan(&id, &last, &known)
	open := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return ConversationView{}, err
	}
	if open && en.cfg.IdleTimeout > 0 && at.Sub(last) > en.cfg.IdleTimeout {
		if err := en.closeIdle(ctx, w, id, last.Add(en.cfg.IdleTimeout)); err != nil {
			return ConversationView{}, err
		}
		open = false
	}
	if !open {
		newID := derive("conversation", w.ev.ID(), customer.String())
		view, err := scanConversation(tx.QueryRow(ctx, `INSERT INTO conversations (id, customer_id, status, opened_at, opened_by_event, channels, last_event_at, previous_id)
			VALUES ($1, $2, 'open', $3, $4, ARRAY[$5::text], $3,
				(SELECT id FROM conversations WHERE customer_id = $2 AND status <> 'merged' ORDER BY opened_at DESC, id DESC LIMIT 1))
			RETURNING `+conversationColumns, newID, customer, at, w.ev.ID(), channel))
		if err != nil {
			return view, err
		}
		w.emit(TypeDeskConversationOpened, TypeDeskConversationOpened, newID.String(), "", deskConversation{Conversation: view})
		return view, nil
	}
	// (RETURNING sees the updated row: whether the channel is new was read above.)
	view, err := scanConversation(tx.QueryRow(ctx, `UPDATE conversations SET channels = CASE WHEN $2 = ANY(channels) THEN channels ELSE channels || $2::text END,
			last_event_at = greatest(last_event_at, $3) WHERE id = $1
		RETURNING `+conversationColumns, id, channel, at))
	if err != nil {
		return view, err
	}
	if !known {
		w.emit(TypeDeskConversationUpdated, TypeDeskConversationUpdated, id.String(), "", deskConversation{Conversation: view, Change: "channel added: " + channel})
	}
	return view, nil
}

func (en *Engine) closeIdle(ctx context.Context, w *writer, id uuid.UUID, closedAt time.Time) error {
	if _, err := w.tx.Exec(ctx, `UPDATE conversations SET status = 'closed', closed_at = $2, close_reason = 'idle' WHERE id = $1`, id, closedAt); err != nil {
		return err
	}
	view, err := en.conversationView(ctx, w.tx, id)
	if err != nil {
		return err
	}
	w.out = append(w.out, outboxRow{id: "unifier:desk.conversation.closed:" + id.String(), subject: TypeDeskConversationClosed,
		typ: TypeDeskConversationClosed, ceSubject: id.String(), at: closedAt, data: deskConversation{Conversation: view, Reason: "idle"}})
	return nil
}

// SweepIdle closes open conversations idle longer than the idle timeout at now. The closing time
// recorded is last activity + timeout, so the result does not depend on when the sweep ran.
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
		err := en.inTx(ctx, func(tx pgx.Tx) (int, error) {
			if _, err := lockCustomers(ctx, tx, []uuid.UUID{p.cust}); err != nil {
				return 0, err
			}
			var last time.Time
			if err := tx.QueryRow(ctx, `SELECT last_event_at FROM conversations WHERE id = $1 AND status = 'open' FOR UPDATE`, p.conv).Scan(&last); err != nil {
				if errors.Is(err, pgx.ErrNoRows) {
					return 0, nil // touched or closed meanwhile
				}
				return 0, err
			}
			if now.Sub(last) <= en.cfg.IdleTimeout {
				return 0, nil
			}
			w := &writer{en: en, tx: tx}
			if err := en.closeIdle(ctx, w, p.conv, last.Add(en.cfg.IdleTimeout)); err != nil {
				return 0, err
			}
			closed++
			return len(w.out), w.flush(ctx)
		})
		if err != nil {
			return closed, err
		}
	}
	return closed, nil
}

// addedMessage is what an omni.desk.message.added event says about one message.
type addedMessage struct {
	eventID     string
	conv        ConversationView
	customer    uuid.UUID
	channel     string
	inbound     bool
	who         identity.ID // the sender (inbound) or the recipient (outbound)
	body        json.RawMessage
	at          time.Time
	status      string // outbound only
	displayName string // inbound only
}

func (w *writer) messageAdded(m addedMessage) {
	w.emit(TypeDeskMessageAdded, TypeDeskMessageAdded, m.conv.ID, "", messageAddedData(m))
}

// messageAddedData is the data of the omni.desk.message.added event about m.
func messageAddedData(m addedMessage) deskMessageAdded {
	msg := deskMessage{EventID: m.eventID, ConversationID: m.conv.ID, CustomerID: m.customer, Channel: m.channel, Body: m.body, SentAt: m.at}
	view := &IdentityView{Kind: m.who.Kind, Masked: identity.Mask(m.who), Source: m.channel}
	out := deskMessageAdded{Conversation: m.conv, Customer: deskMessageCustomer{ID: m.customer}}
	if m.inbound {
		msg.Direction, msg.From = "inbound", view
		name := m.displayName
		out.Customer.DisplayName = &name
	} else {
		status := m.status
		msg.Direction, msg.To, msg.Status = "outbound", view, &status
	}
	out.Message = msg
	return out
}

// deskMessageAdded is the data of omni.desk.message.added (schemas/omni.desk.message.added.json).
type deskMessageAdded struct {
	Message      deskMessage         `json:"message"`
	Conversation ConversationView    `json:"conversation"`
	Customer     deskMessageCustomer `json:"customer"`
}

type deskMessage struct {
	EventID        string          `json:"event_id"`
	ConversationID string          `json:"conversation_id"`
	CustomerID     uuid.UUID       `json:"customer_id"`
	Channel        string          `json:"channel"`
	Body           json.RawMessage `json:"body"`
	SentAt         time.Time       `json:"sent_at"`
	Direction      string          `json:"direction"`
	From           *IdentityView   `json:"from,omitempty"`   // inbound
	To             *IdentityView   `json:"to,omitempty"`     // outbound
	Status         *string         `json:"status,omitempty"` // outbound
}

type deskMessageCustomer struct {
	ID          uuid.UUID `json:"id"`
	DisplayName *string   `json:"display_name,omitempty"` // inbound
}

// deskConversation is the data of omni.desk.conversation.opened, .updated and .closed.
type deskConversation struct {
	Conversation ConversationView `json:"conversation"`
	Change       string           `json:"change,omitempty"` // updated
	Reason       string           `json:"reason,omitempty"` // closed
}

// deskCustomer is the data of omni.desk.customer.updated.
type deskCustomer struct {
	Customer CustomerView `json:"customer"`
}
