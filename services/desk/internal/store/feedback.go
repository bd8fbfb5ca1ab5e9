package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Suggestion is a completed AI suggestion on a timeline, as feedback needs it.
type Suggestion struct {
	EventID        string
	ConversationID string
	RequestID      string
	Text           string // the first suggestion's text
	Model          string
	TemplateID     string
}

// GetSuggestion returns the completed AI suggestion whose result event is eventID, or
// ErrNotFound.
func (s *Store) GetSuggestion(ctx context.Context, eventID string) (Suggestion, error) {
	var sg Suggestion
	var raw json.RawMessage
	err := s.pool.QueryRow(ctx, `SELECT event_id, conversation_id::text, coalesce(correlation_id, ''), result FROM desk.tool_results
		WHERE event_id = $1 AND tool = 'ai' AND op = 'suggest' AND outcome = 'completed'`, eventID).Scan(&sg.EventID, &sg.ConversationID, &sg.RequestID, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return sg, ErrNotFound
	}
	if err != nil {
		return sg, err
	}
	var r struct {
		Model       string `json:"model"`
		Suggestions []struct {
			Text string `json:"text"`
		} `json:"suggestions"`
		Provenance struct {
			Model            string `json:"model"`
			PromptTemplateID string `json:"prompt_template_id"`
		} `json:"provenance"`
	}
	_ = json.Unmarshal(raw, &r)
	if len(r.Suggestions) > 0 {
		sg.Text = r.Suggestions[0].Text
	}
	sg.Model, sg.TemplateID = r.Provenance.Model, r.Provenance.PromptTemplateID
	if sg.Model == "" {
		sg.Model = r.Model
	}
	return sg, nil
}

// Feedback is one verdict on a suggestion.
type Feedback struct {
	EventID          string    `json:"event_id"`
	SuggestionID     string    `json:"suggestion_event_id"`
	RequestID        string    `json:"request_id,omitempty"`
	ConversationID   string    `json:"conversation_id"`
	AgentID          string    `json:"agent_id"`
	Verdict          string    `json:"verdict"`
	EditDistance     *int      `json:"edit_distance,omitempty"`
	SuggestionLength int       `json:"suggestion_length"`
	Model            string    `json:"model,omitempty"`
	TemplateID       string    `json:"prompt_template_id,omitempty"`
	At               time.Time `json:"at"`
}

// AddFeedback records a verdict (once per event id).
func (s *Store) AddFeedback(ctx context.Context, f Feedback) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO desk.suggestion_feedback (event_id, suggestion_event_id, request_id, conversation_id, agent_id,
		verdict, edit_distance, suggestion_length, model, template_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (event_id) DO NOTHING`, f.EventID, f.SuggestionID, f.RequestID, f.ConversationID, f.AgentID, f.Verdict, f.EditDistance,
		f.SuggestionLength, f.Model, f.TemplateID, f.At)
	return err
}

// SuggestionStats is the acceptance of the suggestions of one model and prompt template.
type SuggestionStats struct {
	Model      string `json:"model"`
	TemplateID string `json:"prompt_template_id"`
	// Suggestions is how many suggestions got a verdict (the last one counts).
	Suggestions int `json:"suggestions"`
	Accepted    int `json:"accepted"`
	Edited      int `json:"edited"`
	Rejected    int `json:"rejected"`
	// AcceptanceRate is (accepted + edited) / suggestions: how often a suggestion was used.
	AcceptanceRate float64 `json:"acceptance_rate"`
	// MeanEditDistance is the mean edit distance of the used ones, in characters.
	MeanEditDistance float64 `json:"mean_edit_distance"`
}

// SuggestionStats returns the acceptance per model and prompt template of the suggestions whose
// last verdict came after since, the most used first.
func (s *Store) SuggestionStats(ctx context.Context, since time.Time) ([]SuggestionStats, error) {
	rows, err := s.pool.Query(ctx, `WITH last AS (
			SELECT DISTINCT ON (suggestion_event_id) * FROM desk.suggestion_feedback ORDER BY suggestion_event_id, at DESC, event_id DESC)
		SELECT model, template_id, count(*)::int, count(*) FILTER (WHERE verdict = 'accepted')::int,
			count(*) FILTER (WHERE verdict = 'edited')::int, count(*) FILTER (WHERE verdict = 'rejected')::int,
			coalesce(avg(edit_distance) FILTER (WHERE verdict <> 'rejected'), 0)::float8
		FROM last WHERE at >= $1 GROUP BY model, template_id ORDER BY count(*) DESC, model, template_id`, since)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SuggestionStats, error) {
		var st SuggestionStats
		err := r.Scan(&st.Model, &st.TemplateID, &st.Suggestions, &st.Accepted, &st.Edited, &st.Rejected, &st.MeanEditDistance)
		if st.Suggestions > 0 {
			st.AcceptanceRate = float64(st.Accepted+st.Edited) / float64(st.Suggestions)
		}
		return st, err
	})
	if out == nil {
		out = []SuggestionStats{}
	}
	return out, err
}
