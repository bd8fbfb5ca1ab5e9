package api

import (
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/auth"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// Feedback on AI suggestions and its analytics.
const (
	TypeSuggestFeedback    = schemas.TypeToolAiSuggestFeedback
	SubjectSuggestFeedback = TypeSuggestFeedback
)

func (a *API) feedbackRoutes() []Route {
	return []Route{
		{"POST", "/api/conversations/{id}/suggestions/feedback", false, a.suggestionFeedback},
		{"GET", "/api/analytics/suggestions", false, a.suggestionAnalytics},
	}
}

// FeedbackRequest is the body of POST /api/conversations/{id}/suggestions/feedback: the agent
// used the suggestion (and sent text) or rejected it. The desk works out accepted or edited,
// and the edit distance, from the suggestion it holds.
type FeedbackRequest struct {
	SuggestionEventID string `json:"suggestion_event_id"`
	Verdict           string `json:"verdict"` // used or rejected
	Text              string `json:"text,omitempty"`
}

func (a *API) suggestionFeedback(w http.ResponseWriter, r *http.Request) {
	c, ok := a.conversation(w, r)
	if !ok {
		return
	}
	var req FeedbackRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Verdict != "used" && req.Verdict != "rejected" {
		fail(w, http.StatusBadRequest, "verdict must be used or rejected")
		return
	}
	if req.Verdict == "used" && (req.Text == "" || utf8.RuneCountInString(req.Text) > 10000) {
		fail(w, http.StatusBadRequest, "text (the reply sent) must be 1-10000 characters")
		return
	}
	ctx := r.Context()
	sg, err := a.Store.GetSuggestion(ctx, req.SuggestionEventID)
	if err == nil && sg.ConversationID != c.ID {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		fail(w, http.StatusNotFound, "no completed AI suggestion "+req.SuggestionEventID+" on this conversation")
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	f := store.Feedback{SuggestionID: sg.EventID, RequestID: sg.RequestID, ConversationID: c.ID, AgentID: principal(r).AgentID,
		Verdict: "rejected", SuggestionLength: utf8.RuneCountInString(sg.Text), Model: sg.Model, TemplateID: sg.TemplateID}
	if req.Verdict == "used" {
		d := EditDistance(sg.Text, req.Text)
		f.EditDistance, f.Verdict = &d, "accepted"
		if d > 0 {
			f.Verdict = "edited"
		}
	}
	data := map[string]any{"conversation_id": c.ID, "suggestion_event_id": f.SuggestionID, "verdict": f.Verdict,
		"suggestion_length": f.SuggestionLength, "agent_id": f.AgentID}
	for k, v := range map[string]string{"request_id": f.RequestID, "model": f.Model, "prompt_template_id": f.TemplateID} {
		if v != "" {
			data[k] = v
		}
	}
	if f.EditDistance != nil {
		data["edit_distance"] = *f.EditDistance
	}
	opts := []event.Option{event.WithSubject(c.ID), event.WithPartitionKey(c.ID)}
	if f.RequestID != "" {
		opts = append(opts, event.WithCorrelationID(f.RequestID))
	}
	e, err := event.New(TypeSuggestFeedback, Source, data, opts...)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if err := a.Bus.Publish(ctx, SubjectSuggestFeedback, e); err != nil {
		a.publishError(w, r, err)
		return
	}
	f.EventID, f.At = e.ID(), e.Time()
	if err := a.Store.AddFeedback(ctx, f); err != nil {
		a.Log.Warn("suggestion feedback not counted (its event is on OMNI_TOOL)", "id", e.ID(), "err", err)
	}
	webhook.WriteJSON(w, http.StatusAccepted, f)
}

func (a *API) suggestionAnalytics(w http.ResponseWriter, r *http.Request) {
	if !principal(r).HasRole(auth.RoleSupervisor) {
		fail(w, http.StatusForbidden, "only supervisors see the analytics")
		return
	}
	window := 7 * 24 * time.Hour
	if s := r.URL.Query().Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Hour || d > 90*24*time.Hour {
			fail(w, http.StatusBadRequest, "window must be a duration between 1h and 2160h")
			return
		}
		window = d
	}
	rows, err := a.Store.SuggestionStats(r.Context(), time.Now().Add(-window))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	webhook.WriteJSON(w, http.StatusOK, map[string]any{"window": window.String(), "rows": rows})
}

// EditDistance is the Levenshtein distance between a and b in characters (config.EditDistance).
// Texts longer than the desk's reply limit are compared by length alone.
func EditDistance(a, b string) int {
	na, nb := utf8.RuneCountInString(a), utf8.RuneCountInString(b)
	if na*nb > 16_000_000 {
		return max(na, nb)
	}
	return config.EditDistance(a, b)
}
