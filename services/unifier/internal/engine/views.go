package engine

import "github.com/omnibus-dev/omnibus/services/unifier/internal/store"

// conversationView is what the desk shows of conversation c.
func conversationView(c store.Conversation) ConversationView {
	v := ConversationView{ID: c.ID.String(), CustomerID: c.Customer.String(), Status: c.Status, Channels: c.Channels,
		OpenedAt: c.OpenedAt, ClosedAt: c.ClosedAt, CloseReason: c.CloseReason, LastEventAt: c.LastEventAt, Assignee: c.Assignee}
	if c.PreviousID != nil {
		v.PreviousID = c.PreviousID.String()
	}
	return v
}
