package desk

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/desk/internal/hub"
)

// The assist connector's live suggestion pieces (bus.Live: core NATS, at most once).
const (
	TypeSuggestDelta    = schemas.TypeLiveAiSuggestDelta
	SubjectSuggestDelta = "omni.live.ai.suggest.*"
)

// suggestDelta is the data of omni.live.ai.suggest.delta, as the page gets it: with the id of
// the request it answers.
type suggestDelta struct {
	RequestID      string `json:"request_id"`
	ConversationID string `json:"conversation_id"`
	AgentID        string `json:"agent_id,omitempty"`
	Seq            int    `json:"seq"`
	Attempt        int    `json:"attempt,omitempty"`
	Offset         int    `json:"offset"`
	Text           string `json:"text"`
}

// relaySuggestions passes each piece of an AI suggestion, as the model writes it, to the open
// pages of the agent who asked (hub notices addressed to agent_id, type
// omni.live.ai.suggest.delta). Nothing is stored: the completed result on the timeline replaces
// the streamed text, and a piece lost on the way only makes the text jump. Every replica relays
// to its own pages.
func relaySuggestions(b bus.Live, h *hub.Hub, log *slog.Logger) (*bus.LiveSubscription, error) {
	return b.SubscribeLive(SubjectSuggestDelta, func(_ context.Context, subject string, e event.Event) {
		var d suggestDelta
		if err := event.DecodeData(e, &d); err != nil || d.AgentID == "" {
			return // schema-valid but addressed to no one (a request without agent_id)
		}
		d.RequestID = event.CorrelationID(e)
		if d.RequestID == "" {
			d.RequestID = strings.TrimPrefix(subject, strings.TrimSuffix(SubjectSuggestDelta, "*"))
		}
		raw, err := json.Marshal(d)
		if err != nil {
			log.Debug("suggestion delta not relayed", "err", err)
			return
		}
		h.Publish(hub.Notice{Type: TypeSuggestDelta, ConversationID: d.ConversationID, AgentID: d.AgentID, Data: raw})
	})
}
