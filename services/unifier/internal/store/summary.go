package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Summary is the summary of a conversation's close (omni.tool.ai.summary.completed), as the
// conversation keeps it.
type Summary struct {
	Conversation uuid.UUID
	EventID      string
	ClosedAt     time.Time // the close it summarises
	Text         string    // masked
	Source       string    // llm or rules
	BusinessType string    // "" when not given
	Language     string
	Provider     string // source llm
	Model        string
	At           time.Time // the summary event's time
}

// Replaces reports whether s replaces old (nil: none stored): it summarises a later close, or the
// same close with a greater event id. The order is total, so the stored summary does not depend
// on the order summaries arrive in.
func (s Summary) Replaces(old *Summary) bool {
	if old == nil {
		return true
	}
	if !s.ClosedAt.Equal(old.ClosedAt) {
		return s.ClosedAt.After(old.ClosedAt)
	}
	return s.EventID > old.EventID
}

const (
	sqlSummary = `SELECT event_id, closed_at, summary, source, coalesce(business_type, ''), coalesce(language, ''),
			coalesce(provider, ''), coalesce(model, ''), at
		FROM conversation_summaries WHERE conversation_id = $1`
	// The same rule as Summary.Replaces, in SQL: a summary of an older close never overwrites one
	// of a newer close, whoever writes last.
	sqlUpsertSummary = `INSERT INTO conversation_summaries AS s (conversation_id, event_id, closed_at, summary, source,
			business_type, language, provider, model, at)
		VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''), NULLIF($7, ''), NULLIF($8, ''), NULLIF($9, ''), $10)
		ON CONFLICT (conversation_id) DO UPDATE SET event_id = EXCLUDED.event_id, closed_at = EXCLUDED.closed_at,
			summary = EXCLUDED.summary, source = EXCLUDED.source, business_type = EXCLUDED.business_type,
			language = EXCLUDED.language, provider = EXCLUDED.provider, model = EXCLUDED.model, at = EXCLUDED.at
		WHERE (EXCLUDED.closed_at, EXCLUDED.event_id) > (s.closed_at, s.event_id)`
)

// ReadSummary returns the summary stored on conversation id, or nil.
func ReadSummary(ctx context.Context, tx pgx.Tx, id uuid.UUID) (*Summary, error) {
	s := Summary{Conversation: id}
	err := tx.QueryRow(ctx, sqlSummary, id).Scan(&s.EventID, &s.ClosedAt, &s.Text, &s.Source, &s.BusinessType, &s.Language,
		&s.Provider, &s.Model, &s.At)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// QueueUpsertSummary stores s on its conversation unless the conversation has a summary s does
// not replace.
func QueueUpsertSummary(b *pgx.Batch, s Summary) {
	b.Queue(sqlUpsertSummary, s.Conversation, s.EventID, s.ClosedAt, s.Text, s.Source, s.BusinessType, s.Language,
		s.Provider, s.Model, s.At)
}
