package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// SentimentMark is the sentiment connector's score of one inbound message
// (omni.tool.ai.sentiment.scored), as a timeline shows it next to the message.
type SentimentMark struct {
	MessageID    string    `json:"message_id"`
	EventID      string    `json:"event_id"`
	Label        string    `json:"label"`
	Score        float64   `json:"score"`
	Confidence   float64   `json:"confidence"`
	Escalation   bool      `json:"escalation,omitempty"`
	Negative     bool      `json:"negative_episode"`
	Provider     string    `json:"provider"`
	FallbackFrom string    `json:"fallback_from,omitempty"`
	At           time.Time `json:"at"`
}

// ApplySentimentMark records a score; a redelivered one changes nothing.
func (s *Store) ApplySentimentMark(ctx context.Context, conversationID string, m SentimentMark) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO desk.sentiment_marks (message_id, event_id, conversation_id, label, score, confidence,
			escalation, negative, provider, fallback_from, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (message_id) DO NOTHING`,
		m.MessageID, m.EventID, conversationID, m.Label, m.Score, m.Confidence, m.Escalation, m.Negative, m.Provider,
		nullable(m.FallbackFrom), m.At)
	return err
}

// SentimentMarks returns a conversation's marks by message id.
func (s *Store) SentimentMarks(ctx context.Context, conversationID string) (map[string]SentimentMark, error) {
	rows, err := s.pool.Query(ctx, `SELECT message_id, event_id, label, score, confidence, escalation, negative, provider,
			coalesce(fallback_from, ''), at
		FROM desk.sentiment_marks WHERE conversation_id::text = $1`, conversationID)
	if err != nil {
		return nil, err
	}
	marks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SentimentMark, error) {
		var m SentimentMark
		return m, r.Scan(&m.MessageID, &m.EventID, &m.Label, &m.Score, &m.Confidence, &m.Escalation, &m.Negative, &m.Provider,
			&m.FallbackFrom, &m.At)
	})
	out := make(map[string]SentimentMark, len(marks))
	for _, m := range marks {
		out[m.MessageID] = m
	}
	return out, err
}

// SentimentAlert is what omni.tool.ai.sentiment.alert.raised and .cleared say of an episode.
type SentimentAlert struct {
	EventID        string    `json:"-"`
	ConversationID string    `json:"conversation_id"`
	CustomerID     string    `json:"customer_id"`
	MessageID      string    `json:"message_id"`
	Episode        int       `json:"episode"`
	MeanScore      float64   `json:"mean_score"`
	Label          string    `json:"label,omitempty"`
	Escalation     bool      `json:"escalation"`
	Provider       string    `json:"provider,omitempty"`
	At             time.Time `json:"-"`
}

// SentimentAlertTitle is the title of a sentiment episode's alert row.
const SentimentAlertTitle = "customer turned negative"

// ApplySentimentRaised opens the episode's alert on the conversation and marks the conversation
// negative (the inbox's mark). A redelivered raise, even after the episode cleared, changes
// nothing: the row is keyed by the raised event's id.
func (s *Store) ApplySentimentRaised(ctx context.Context, a SentimentAlert) (bool, error) {
	detail, err := json.Marshal(a)
	if err != nil {
		return false, err
	}
	var inserted bool
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO desk.alerts (id, kind, severity, title, detail, conversation_id, at)
			VALUES ($1, 'sentiment', 'warning', $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
			a.EventID, SentimentAlertTitle, detail, a.ConversationID, a.At)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		inserted = true
		_, err = tx.Exec(ctx, `UPDATE desk.conversations SET sentiment = 'negative' WHERE id = $1`, a.ConversationID)
		return err
	})
	return inserted, err
}

// ApplySentimentCleared resolves the conversation's open sentiment alerts of this episode or an
// earlier one and sets the conversation's sentiment to the recovering message's label.
func (s *Store) ApplySentimentCleared(ctx context.Context, a SentimentAlert) (bool, error) {
	var resolved bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE desk.alerts SET resolved_at = $2
			WHERE kind = 'sentiment' AND conversation_id = $1 AND resolved_at IS NULL
				AND coalesce((detail->>'episode')::int, 0) <= $3`, a.ConversationID, a.At, a.Episode)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		resolved = true
		label := a.Label
		if label == "" || label == "negative" {
			label = "neutral"
		}
		_, err = tx.Exec(ctx, `UPDATE desk.conversations SET sentiment = $2 WHERE id = $1`, a.ConversationID, label)
		return err
	})
	return resolved, err
}

// OpenSentimentAlert returns the conversation's open sentiment alert, if any.
func (s *Store) OpenSentimentAlert(ctx context.Context, conversationID string) (*Alert, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, kind, severity, title, detail, coalesce(conversation_id::text, ''), coalesce(route, ''), at, resolved_at
		FROM desk.alerts WHERE kind = 'sentiment' AND conversation_id::text = $1 AND resolved_at IS NULL ORDER BY at DESC LIMIT 1`, conversationID)
	if err != nil {
		return nil, err
	}
	a, err := pgx.CollectOneRow(rows, scanAlert)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return &a, err
}

// VisibleAlerts returns the most recent alerts (only unresolved ones when active) that an agent
// sees: every alert for a supervisor; for an agent, ops alerts and the sentiment alerts of the
// conversations assigned to them.
func (s *Store) VisibleAlerts(ctx context.Context, active bool, limit int, agentID string, supervisor bool) ([]Alert, error) {
	if supervisor {
		return s.Alerts(ctx, active, limit)
	}
	rows, err := s.pool.Query(ctx, `SELECT a.id, a.kind, a.severity, a.title, a.detail, coalesce(a.conversation_id::text, ''),
			coalesce(a.route, ''), a.at, a.resolved_at
		FROM desk.alerts a LEFT JOIN desk.conversations c ON c.id = a.conversation_id
		WHERE ($1::bool = false OR a.resolved_at IS NULL) AND (a.kind <> 'sentiment' OR c.assignee = $2)
		ORDER BY a.at DESC LIMIT $3`, active, agentID, limit)
	if err != nil {
		return nil, err
	}
	return collectAlerts(rows)
}

// collectAlerts reads rows of (id, kind, severity, title, detail, conversation id, route, at,
// resolved_at); none is an empty list.
func collectAlerts(rows pgx.Rows) ([]Alert, error) {
	out, err := pgx.CollectRows(rows, scanAlert)
	if out == nil {
		out = []Alert{}
	}
	return out, err
}

func scanAlert(r pgx.CollectableRow) (Alert, error) {
	var a Alert
	return a, r.Scan(&a.ID, &a.Kind, &a.Severity, &a.Title, &a.Detail, &a.ConversationID, &a.Route, &a.At, &a.ResolvedAt)
}
