package engine

import (
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// conversationColumns are the columns scanConversation reads, in order.
const conversationColumns = `id, customer_id, status, channels, opened_at, closed_at, close_reason, last_event_at, assignee, previous_id`

// scanConversation scans conversationColumns, then any extra destinations.
func scanConversation(row pgx.Row, extra ...any) (ConversationView, error) {
	var v ConversationView
	var id, cust uuid.UUID
	var closedAt *time.Time
	var reason, assignee *string
	var prev *uuid.UUID
	dest := append([]any{&id, &cust, &v.Status, &v.Channels, &v.OpenedAt, &closedAt, &reason, &v.LastEventAt, &assignee, &prev}, extra...)
	if err := row.Scan(dest...); err != nil {
		return v, err
	}
	v.ID, v.CustomerID, v.ClosedAt = id.String(), cust.String(), closedAt
	if reason != nil {
		v.CloseReason = *reason
	}
	if assignee != nil {
		v.Assignee = *assignee
	}
	if prev != nil {
		v.PreviousID = prev.String()
	}
	return v, nil
}
