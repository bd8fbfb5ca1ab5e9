package project

import (
	"context"

	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// applyPaymentStatus puts a payment link's status change (paid, closed, refunded) on its
// conversation's timeline as a payment/status tool result, correlated to the link's request, so
// the link card can show it; the conversation's subscribers are told at once.
func (p *Projector) applyPaymentStatus(ctx context.Context, e event.Event) error {
	var s struct {
		ConversationID string `json:"conversation_id"`
		CustomerID     string `json:"customer_id"`
		Status         string `json:"status"`
	}
	if err := decode(e, &s); err != nil {
		return err
	}
	if s.ConversationID == "" || s.Status == "" {
		return nil
	}
	r := store.ToolResult{EventID: e.ID(), ConversationID: s.ConversationID, CustomerID: s.CustomerID, Tool: "payment", Op: "status",
		Outcome: s.Status, CorrelationID: event.CorrelationID(e), Result: e.Data(), At: e.Time()}
	if _, err := p.Store.ApplyToolResult(ctx, r); err != nil {
		return err
	}
	p.conversationChanged(ctx, e.Type(), s.ConversationID)
	return nil
}
