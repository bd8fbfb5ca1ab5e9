package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// errNoTurns: the conversation has no text turn on the desk yet.
var errNoTurns = errors.New("no text turn yet")

// fillSuggestion completes the data of an AI suggestion request with what the caller did not
// give: the recent turns (context), the conversation's language and the knowledge-base articles
// that match the customer's turns. Errors: errNoTurns, or the store's.
func (a *API) fillSuggestion(ctx context.Context, c store.Conversation, data map[string]any) error {
	if _, given := data["context"]; !given {
		turns, err := a.Store.RecentTexts(ctx, c.ID, 20)
		if err != nil {
			return err
		}
		ctxTurns := []map[string]string{}
		for _, t := range turns {
			role := "customer"
			if t[0] == "outbound" {
				role = "agent"
			}
			ctxTurns = append(ctxTurns, map[string]string{"role": role, "channel": t[1], "text": t[2]})
		}
		if len(ctxTurns) == 0 {
			return errNoTurns
		}
		data["context"] = ctxTurns
	}
	if _, given := data["language"]; !given && c.Language != "" {
		data["language"] = c.Language
	}
	if _, given := data["knowledge"]; !given {
		data["knowledge"] = a.knowledgeFor(ctx, data) // kb.go
	}
	return nil
}

// publishToolRequest publishes omni.tool.<tool>.<op>.requested with data on conversation c (its
// correlationid its own id, which the tool's result carries back) for agent (may be ""), records
// it on the timeline and tells the open pages. Errors are the bus's.
func (a *API) publishToolRequest(ctx context.Context, c store.Conversation, tool, op, agent string, data map[string]any) (event.Event, error) {
	typ := "omni.tool." + tool + "." + op + ".requested"
	e, err := event.New(typ, Source, data, event.WithSubject(c.ID), event.WithPartitionKey(c.ID))
	if err != nil {
		return e, err
	}
	e.SetExtension(event.ExtCorrelationID, e.ID())
	if err := a.Bus.Publish(ctx, typ, e); err != nil {
		return e, err
	}
	raw, _ := json.Marshal(data)
	if err := a.Store.ApplyToolRequest(ctx, e.ID(), c.ID, c.CustomerID, tool, op, agent, raw, e.Time()); err != nil {
		a.Log.Warn("tool request not recorded (its copy on OMNI_TOOL will be)", "id", e.ID(), "err", err)
	}
	a.notify(ctx, "desk.tool_request", c.ID)
	return e, nil
}

// AutoSuggest asks for an AI suggestion on conversation id without the button (the channel's
// automatic suggestions, DESK_AI_AUTO_CHANNELS), for its assignee: the pieces stream to the
// assignee's pages, and the result lands on the timeline for whoever opens it. A closed
// conversation or one without a text turn gets none.
func (a *API) AutoSuggest(ctx context.Context, id string) error {
	c, err := a.Store.GetConversation(ctx, id)
	if err != nil {
		return fmt.Errorf("auto suggestion on %s: %w", id, err)
	}
	if c.Status != "open" {
		return nil
	}
	data := map[string]any{"conversation_id": c.ID, "customer_id": c.CustomerID}
	if c.Assignee != "" {
		data["agent_id"] = c.Assignee
	}
	if err := a.fillSuggestion(ctx, c, data); errors.Is(err, errNoTurns) {
		return nil
	} else if err != nil {
		return fmt.Errorf("auto suggestion on %s: %w", id, err)
	}
	_, err = a.publishToolRequest(ctx, c, "ai", "suggest", c.Assignee, data)
	return err
}
