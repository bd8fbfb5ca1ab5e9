package engine

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omnibus-dev/omnibus/services/unifier/internal/identity"
)

// customerView reads what the desk shows of a customer; identities are masked, in the order they
// were first seen, ties in byte order (whatever the database's collation: the set-based path
// builds the same list in Go).
func (en *Engine) customerView(ctx context.Context, tx pgx.Tx, id uuid.UUID) (CustomerView, error) {
	b := &pgx.Batch{}
	v := queueCustomerView(b, id)
	err := tx.SendBatch(ctx, b).Close()
	return *v, err
}

// queueCustomerView queues the reads of customerView on b; the view is filled when b's results
// are read.
func queueCustomerView(b *pgx.Batch, id uuid.UUID) *CustomerView {
	v := &CustomerView{ID: id.String(), Identities: []IdentityView{}}
	b.Queue(`SELECT display_name, profile, profile_sources, created_at FROM customers WHERE id = $1`, id).QueryRow(func(r pgx.Row) error {
		var name *string
		var profile, sources json.RawMessage
		if err := r.Scan(&name, &profile, &sources, &v.CreatedAt); err != nil {
			return err
		}
		if name != nil {
			v.DisplayName = *name
		}
		_ = json.Unmarshal(profile, &v.Profile)
		_ = json.Unmarshal(sources, &v.ProfileSources)
		return nil
	})
	b.Queue(`SELECT kind, value, source FROM identities WHERE customer_id = $1
		ORDER BY first_seen, kind COLLATE "C", value COLLATE "C"`, id).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var i identity.ID
			var src string
			if err := rows.Scan(&i.Kind, &i.Value, &src); err != nil {
				return err
			}
			v.Identities = append(v.Identities, IdentityView{Kind: i.Kind, Masked: identity.Mask(i), Source: src})
		}
		return rows.Err()
	})
	return v
}

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

func (en *Engine) conversationView(ctx context.Context, tx pgx.Tx, id uuid.UUID) (ConversationView, error) {
	return scanConversation(tx.QueryRow(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE id = $1`, id))
}
