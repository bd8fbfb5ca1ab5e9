package engine

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/identity"
	"github.com/omnibus-dev/omnibus/pkg/pii"
)

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
