package project

import (
	"context"

	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// TypeSuggestFeedback is an agent's verdict on an AI suggestion, which the desk's API publishes
// and writes at once; projecting it again (idempotent on the event id) is what rebuilds the
// analytics of a lost store from OMNI_TOOL.
const TypeSuggestFeedback = schemas.TypeToolAiSuggestFeedback

func (p *Projector) applyFeedback(ctx context.Context, e event.Event) error {
	var f store.Feedback
	if err := decode(e, &f); err != nil {
		return err
	}
	if f.ConversationID == "" || f.SuggestionID == "" {
		return nil
	}
	f.EventID, f.At = e.ID(), e.Time()
	return p.Store.AddFeedback(ctx, f)
}
