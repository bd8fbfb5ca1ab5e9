// Package project turns the events the desk consumes into its read model (package store) and
// tells the open workbench pages (package hub) what changed:
//
//   - OMNI_DESK omni.desk.> (durable desk): conversations, messages, delivery statuses,
//     customers and merges, tool results, and the desk's own assignments and agent changes;
//   - OMNI_IN omni.in.*.message / .backfill (durable desk-in): the raw sender identity of each
//     inbound message, which desk events only carry masked, so replies can be addressed;
//   - OMNI_TOOL omni.tool.*.*.requested and omni.tool.crm.lookup.completed (durable desk-tool):
//     tool requests for the timeline, and the identities a CRM record gives (a phone to answer by SMS);
//   - OMNI_AUDIT omni.audit.> (durable desk-audit) and omni.ops.alert.> (durable desk-alerts,
//     once a stream stores it): the ops page.
//
// Handlers are idempotent (store keys rows on event ids and guards headers with the OMNI_DESK
// sequence) and return bus.Permanent for data that cannot be applied, which dead-letters it.
package project

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/desk/internal/assign"
	"github.com/omnibus-dev/omnibus/services/desk/internal/hub"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// Desk event types.
const (
	TypeConversationOpened  = schemas.TypeDeskConversationOpened
	TypeConversationUpdated = schemas.TypeDeskConversationUpdated
	TypeConversationClosed  = schemas.TypeDeskConversationClosed
	TypeMessageAdded        = schemas.TypeDeskMessageAdded
	TypeMessageUpdated      = schemas.TypeDeskMessageUpdated
	TypeCustomerUpdated     = schemas.TypeDeskCustomerUpdated
	TypeCustomerMerged      = schemas.TypeDeskCustomerMerged
	TypeCustomerUnmerged    = schemas.TypeDeskCustomerUnmerged
	TypeToolResult          = schemas.TypeDeskToolResult
	TypeCallRinging         = schemas.TypeDeskCallRinging
	TypeCallUpdated         = schemas.TypeDeskCallUpdated
	TypeAssignmentChanged   = assign.TypeAssignmentChanged
	TypeAgentUpdated        = schemas.TypeDeskAgentUpdated
	TypeNoteAdded           = schemas.TypeDeskNoteAdded
	TypeCannedSaved         = schemas.TypeDeskCannedSaved
	TypeCannedDeleted       = schemas.TypeDeskCannedDeleted
	TypeMessageReceived     = schemas.TypeChannelMessageReceived
	TypeCRMLookupCompleted  = schemas.TypeToolCrmLookupCompleted
	// TypePaymentStatusChanged is applied by applyPaymentStatus (payment.go).
	TypePaymentStatusChanged = schemas.TypeToolPaymentStatusChanged
)

// Projector applies events to the store and publishes notices.
type Projector struct {
	Store *store.Store
	Hub   *hub.Hub
	Log   *slog.Logger
	// Kick asks the assigner for a pass (conversation opened or closed, agent changed).
	Kick func()
	// OnInbound, if set, is told of each customer message applied (automatic AI suggestions).
	OnInbound func(ctx context.Context, conversationID, channel string)
}

func decode(e event.Event, v any) error {
	if err := json.Unmarshal(e.Data(), v); err != nil {
		return bus.Permanent(fmt.Errorf("%s %s: data: %w", e.Type(), e.ID(), err))
	}
	return nil
}

// HandleDesk applies one OMNI_DESK event.
func (p *Projector) HandleDesk(ctx context.Context, d bus.Delivery) error {
	e, seq := d.Event, d.StreamSeq
	switch e.Type() {
	case TypeConversationOpened, TypeConversationUpdated, TypeConversationClosed:
		var v struct {
			Conversation store.ConversationView `json:"conversation"`
		}
		if err := decode(e, &v); err != nil {
			return err
		}
		if err := p.Store.ApplyConversation(ctx, seq, v.Conversation); err != nil {
			return err
		}
		p.conversationChanged(ctx, e.Type(), v.Conversation.ID)
		if e.Type() != TypeConversationUpdated && p.Kick != nil {
			p.Kick()
		}
	case TypeMessageAdded:
		var m store.MessageAdded
		if err := decode(e, &m); err != nil {
			return err
		}
		lang := ""
		if m.Message.Direction == "inbound" {
			var b struct {
				Text string `json:"text"`
			}
			_ = json.Unmarshal(m.Message.Body, &b)
			lang = assign.DetectLanguage(b.Text)
		}
		if _, err := p.Store.ApplyMessageAdded(ctx, seq, m, lang); err != nil {
			return err
		}
		p.conversationChanged(ctx, e.Type(), m.Message.ConversationID)
		if m.Message.Direction == "inbound" && p.OnInbound != nil {
			p.OnInbound(ctx, m.Message.ConversationID, m.Message.Channel)
		}
	case TypeMessageUpdated:
		var u store.MessageUpdated
		if err := decode(e, &u); err != nil {
			return err
		}
		if _, err := p.Store.ApplyMessageUpdated(ctx, u); err != nil {
			return err
		}
		p.conversationChanged(ctx, e.Type(), u.ConversationID)
	case TypeCustomerUpdated:
		var v struct {
			Customer store.CustomerView `json:"customer"`
		}
		if err := decode(e, &v); err != nil {
			return err
		}
		if err := p.Store.ApplyCustomer(ctx, seq, v.Customer); err != nil {
			return err
		}
		p.Hub.Publish(hub.Notice{Type: e.Type(), CustomerID: v.Customer.ID})
	case TypeCustomerMerged:
		var m store.CustomerMerged
		if err := decode(e, &m); err != nil {
			return err
		}
		if err := p.Store.ApplyMerged(ctx, seq, m); err != nil {
			return err
		}
		p.Hub.Publish(hub.Notice{Type: e.Type(), CustomerID: m.IntoID})
	case TypeCustomerUnmerged:
		var u store.CustomerUnmerged
		if err := decode(e, &u); err != nil {
			return err
		}
		if err := p.Store.ApplyUnmerged(ctx, seq, u); err != nil {
			return err
		}
		p.Hub.Publish(hub.Notice{Type: e.Type(), CustomerID: u.FromID})
	case TypeToolResult:
		var r store.ToolResult
		if err := decode(e, &r); err != nil {
			return err
		}
		if _, err := p.Store.ApplyToolResult(ctx, r); err != nil {
			return err
		}
		p.conversationChanged(ctx, e.Type(), r.ConversationID)
		if label, _ := store.Sentiment(r.Result); label == "negative" {
			p.alertsChanged(ctx)
		}
	case TypeCallRinging, TypeCallUpdated:
		var v struct {
			Call         store.Call              `json:"call"`
			Conversation *store.ConversationView `json:"conversation"`
			Customer     *store.CustomerView     `json:"customer"`
		}
		if err := decode(e, &v); err != nil {
			return err
		}
		if err := p.Store.ApplyCall(ctx, seq, v.Call, v.Conversation, v.Customer); err != nil {
			return err
		}
		p.conversationChanged(ctx, e.Type(), v.Call.ConversationID)
		// The workbench's call banner: the call, and on ringing the customer to pop.
		data, _ := json.Marshal(struct {
			Call     store.Call          `json:"call"`
			Customer *store.CustomerView `json:"customer,omitempty"`
		}{v.Call, v.Customer})
		p.Hub.Publish(hub.Notice{Type: "desk.call", ConversationID: v.Call.ConversationID, CustomerID: v.Call.CustomerID, Data: data})
	case TypeAssignmentChanged:
		var a store.AssignmentChanged
		if err := decode(e, &a); err != nil {
			return err
		}
		if isNew, err := p.Store.ApplyAssignment(ctx, e.ID(), a); err != nil {
			return err
		} else if isNew {
			p.conversationChanged(ctx, e.Type(), a.ConversationID)
		}
	case TypeAgentUpdated:
		var a store.AgentUpdated
		if err := decode(e, &a); err != nil {
			return err
		}
		if err := p.Store.ApplyAgent(ctx, a.Agent, a.At); err != nil {
			return err
		}
		p.Hub.Publish(hub.Notice{Type: e.Type()})
		if p.Kick != nil {
			p.Kick()
		}
	case TypeCannedSaved:
		var c store.Canned
		if err := decode(e, &c); err != nil {
			return err
		}
		if err := p.Store.ApplyCanned(ctx, c); errors.Is(err, store.ErrShortcutTaken) {
			p.Log.Warn("canned response dropped: its owner has another with the shortcut", "canned_id", c.CannedID, "shortcut", c.Shortcut)
		} else if err != nil {
			return err
		}
		p.Hub.Publish(hub.Notice{Type: e.Type()})
	case TypeCannedDeleted:
		var d store.CannedDeleted
		if err := decode(e, &d); err != nil {
			return err
		}
		if err := p.Store.ApplyCannedDeleted(ctx, d); err != nil {
			return err
		}
		p.Hub.Publish(hub.Notice{Type: e.Type()})
	case TypeNoteAdded:
		var n store.Note
		if err := decode(e, &n); err != nil {
			return err
		}
		isNew, err := p.Store.ApplyNote(ctx, n)
		if err != nil || !isNew {
			return err
		}
		data, _ := json.Marshal(n)
		p.Hub.Publish(hub.Notice{Type: e.Type(), ConversationID: n.ConversationID, Data: data})
		for _, agent := range n.Mentions { // the mentioned agents' pages say so, whatever they show
			if agent != n.Author {
				p.Hub.Publish(hub.Notice{Type: "desk.mention", ConversationID: n.ConversationID, Data: data, AgentID: agent})
			}
		}
	default:
		p.Log.Debug("desk event ignored", "type", e.Type(), "id", e.ID())
	}
	return nil
}

// conversationChanged publishes the conversation's inbox row.
func (p *Projector) conversationChanged(ctx context.Context, typ, id string) {
	c, err := p.Store.GetConversation(ctx, id)
	if err != nil {
		p.Hub.Publish(hub.Notice{Type: typ, ConversationID: id})
		return
	}
	data, _ := json.Marshal(c)
	p.Hub.Publish(hub.Notice{Type: typ, ConversationID: id, CustomerID: c.CustomerID, Data: data})
}

// NotifyConversation publishes the conversation's inbox row for a local change (type desk.*).
func (p *Projector) NotifyConversation(ctx context.Context, typ, id string) {
	p.conversationChanged(ctx, typ, id)
}

func (p *Projector) alertsChanged(ctx context.Context) {
	alerts, err := p.Store.Alerts(ctx, true, 20)
	if err != nil {
		return
	}
	data, _ := json.Marshal(alerts)
	p.Hub.Publish(hub.Notice{Type: "desk.alerts", Data: data})
}

// HandleInbound records the sender identity of an inbound message as a reply address.
func (p *Projector) HandleInbound(ctx context.Context, d bus.Delivery) error {
	e := d.Event
	if e.Type() != TypeMessageReceived {
		return nil
	}
	var m struct {
		Channel string `json:"channel"`
		From    struct {
			Kind  string `json:"kind"`
			Value string `json:"value"`
		} `json:"from"`
		Account string `json:"account"`
	}
	if err := decode(e, &m); err != nil {
		return err
	}
	return p.Store.ApplyAddress(ctx, e.ID(), store.Address{Kind: m.From.Kind, Value: m.From.Value, Account: m.Account}, m.Channel, "", e.Time())
}

// HandleTool records tool requests about a conversation and the identities of CRM records.
func (p *Projector) HandleTool(ctx context.Context, d bus.Delivery) error {
	e := d.Event
	parts := strings.Split(e.Type(), ".") // omni.tool.<tool>.<op>.<outcome>
	if len(parts) != 5 || parts[0] != "omni" || parts[1] != "tool" {
		return nil
	}
	switch {
	case parts[4] == "requested":
		var r struct {
			ConversationID string `json:"conversation_id"`
			CustomerID     string `json:"customer_id"`
			AgentID        string `json:"agent_id"`
		}
		if err := decode(e, &r); err != nil {
			return err
		}
		if r.ConversationID == "" {
			return nil
		}
		if err := p.Store.ApplyToolRequest(ctx, e.ID(), r.ConversationID, r.CustomerID, parts[2], parts[3], r.AgentID, e.Data(), e.Time()); err != nil {
			return err
		}
		p.conversationChanged(ctx, e.Type(), r.ConversationID)
	case e.Type() == TypeSuggestFeedback:
		return p.applyFeedback(ctx, e) // feedback.go
	case e.Type() == TypePaymentStatusChanged:
		return p.applyPaymentStatus(ctx, e)
	case e.Type() == TypeCRMLookupCompleted:
		var r struct {
			CustomerID string `json:"customer_id"`
			Found      bool   `json:"found"`
			Identities []struct {
				Kind  string `json:"kind"`
				Value string `json:"value"`
			} `json:"identities"`
		}
		if err := decode(e, &r); err != nil {
			return err
		}
		for _, id := range r.Identities {
			if err := p.Store.ApplyAddress(ctx, e.ID(), store.Address{Kind: id.Kind, Value: id.Value}, "", r.CustomerID, e.Time()); err != nil {
				return err
			}
		}
	}
	return nil
}
