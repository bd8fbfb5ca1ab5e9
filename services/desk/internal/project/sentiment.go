package project

import (
	"context"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// The sentiment connector's events (OMNI_TOOL omni.tool.ai.sentiment.>, durable desk-sentiment).
const (
	TypeSentimentScored       = schemas.TypeToolAiSentimentScored
	TypeSentimentAlertRaised  = schemas.TypeToolAiSentimentAlertRaised
	TypeSentimentAlertCleared = schemas.TypeToolAiSentimentAlertCleared
	SubjectSentiment          = "omni.tool.ai.sentiment.>"
)

// HandleSentiment applies the sentiment connector's events: a score becomes the mark of its
// message on the timeline; a raised alert opens the conversation's banner and marks it in the
// inbox, until its episode's cleared event. Open pages get the conversation's row and, on an
// alert, the alert list.
func (p *Projector) HandleSentiment(ctx context.Context, d bus.Delivery) error {
	e := d.Event
	switch e.Type() {
	case TypeSentimentScored:
		var v struct {
			ConversationID  string  `json:"conversation_id"`
			MessageID       string  `json:"message_id"`
			Label           string  `json:"label"`
			Score           float64 `json:"score"`
			Confidence      float64 `json:"confidence"`
			Escalation      bool    `json:"escalation"`
			NegativeEpisode bool    `json:"negative_episode"`
			Provenance      struct {
				Provider     string `json:"provider"`
				FallbackFrom string `json:"fallback_from"`
			} `json:"provenance"`
		}
		if err := decode(e, &v); err != nil {
			return err
		}
		if err := p.Store.ApplySentimentMark(ctx, v.ConversationID, store.SentimentMark{MessageID: v.MessageID, EventID: e.ID(),
			Label: v.Label, Score: v.Score, Confidence: v.Confidence, Escalation: v.Escalation, Negative: v.NegativeEpisode,
			Provider: v.Provenance.Provider, FallbackFrom: v.Provenance.FallbackFrom, At: e.Time()}); err != nil {
			return err
		}
		p.conversationChanged(ctx, e.Type(), v.ConversationID)
	case TypeSentimentAlertRaised, TypeSentimentAlertCleared:
		var a store.SentimentAlert
		if err := decode(e, &a); err != nil {
			return err
		}
		a.EventID, a.At = e.ID(), e.Time()
		apply := p.Store.ApplySentimentRaised
		if e.Type() == TypeSentimentAlertCleared {
			apply = p.Store.ApplySentimentCleared
		}
		changed, err := apply(ctx, a)
		if err != nil {
			return err
		}
		if changed {
			p.conversationChanged(ctx, e.Type(), a.ConversationID)
			p.alertsChanged(ctx)
		}
	}
	return nil
}
