package assign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// Event type, subject and source of the assignments the desk publishes.
const (
	TypeAssignmentChanged = schemas.TypeDeskAssignmentChanged
	SubjectAssignment     = "omni.desk.assignment.changed"
	Source                = "/services/desk"
	// By is the "by" of assignments the rules made.
	By = "desk"
)

// Assigner assigns waiting conversations. One pass takes the open unassigned conversations
// oldest first and applies the rules with the agents' current loads; each decision is published
// (the log is the truth) and applied to the store at once (the projection's copy of the event
// is then a no-op), so the next decision sees the new load.
//
// Passes run only while the projection is caught up with the log (CaughtUp), so a rebuild
// replays the historical assignments instead of making new ones.
type Assigner struct {
	Store    *store.Store
	Bus      bus.Publisher
	Log      *slog.Logger
	CaughtUp func(ctx context.Context) bool
	Notify   func(a store.AssignmentChanged) // after each assignment applied (SSE)

	kick chan struct{}
}

// NewAssigner returns an assigner; set CaughtUp and Notify before Run.
func NewAssigner(st *store.Store, pub bus.Publisher, log *slog.Logger) *Assigner {
	return &Assigner{Store: st, Bus: pub, Log: log, kick: make(chan struct{}, 1)}
}

// Kick asks for a pass soon (a conversation opened, one closed, an agent changed).
func (a *Assigner) Kick() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run makes a pass on every kick and every interval until ctx ends.
func (a *Assigner) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-t.C:
		}
		if n, err := a.Pass(ctx); err != nil && ctx.Err() == nil {
			a.Log.Warn("assignment pass failed", "err", err)
		} else if n > 0 {
			a.Log.Debug("conversations assigned", "count", n)
		}
	}
}

// Pass assigns what it can and returns how many conversations it assigned.
func (a *Assigner) Pass(ctx context.Context) (int, error) {
	if a.CaughtUp != nil && !a.CaughtUp(ctx) {
		return 0, nil
	}
	waiting, err := a.Store.UnassignedConversations(ctx, 200)
	if err != nil || len(waiting) == 0 {
		return 0, err
	}
	loads, err := a.Store.Agents(ctx)
	if err != nil {
		return 0, err
	}
	cands := make([]Candidate, len(loads))
	for i, l := range loads {
		cands[i] = Candidate{ID: l.ID, Skills: l.Skills, Languages: l.Languages, Channels: l.Channels,
			Capacity: l.Capacity, Load: l.Load, Active: l.Active}
	}
	n := 0
	for _, w := range waiting {
		need := Need{Channel: w.Channel, Language: w.Language, Skills: Skills(w.Profile, w.LastText), LastAgent: w.LastAgent}
		d, ok := Choose(need, cands)
		if !ok {
			continue
		}
		if _, err := a.assign(ctx, w.ConversationID, w.CustomerID, "", d, By); err != nil {
			return n, err
		}
		for i := range cands {
			if cands[i].ID == d.AgentID {
				cands[i].Load++
			}
		}
		n++
	}
	return n, nil
}

// ErrUnknownAgent is returned by Transfer for an agent the desk does not know.
var ErrUnknownAgent = errors.New("unknown agent")

// ErrNotOpen is returned by Transfer for a conversation that is not open.
var ErrNotOpen = errors.New("conversation is not open")

// Transfer moves a conversation to agentID on behalf of by.
func (a *Assigner) Transfer(ctx context.Context, conversationID, agentID, by, note string) (store.AssignmentChanged, error) {
	c, err := a.Store.GetConversation(ctx, conversationID)
	if err != nil {
		return store.AssignmentChanged{}, err
	}
	if c.Status != "open" {
		return store.AssignmentChanged{}, fmt.Errorf("%w: %s is %s", ErrNotOpen, conversationID, c.Status)
	}
	if _, err := a.Store.GetAgent(ctx, agentID); errors.Is(err, store.ErrNotFound) {
		return store.AssignmentChanged{}, fmt.Errorf("%w: %s", ErrUnknownAgent, agentID)
	} else if err != nil {
		return store.AssignmentChanged{}, err
	}
	return a.assign(ctx, c.ID, c.CustomerID, c.Assignee, Decision{AgentID: agentID, Rule: RuleTransfer, Note: note}, by)
}

// Claim assigns an open, unassigned conversation to agentID, who answered it: replying takes it
// (so nobody else answers the same customer at once). A conversation that is assigned, or not
// open, is left as it is: claimed is false.
func (a *Assigner) Claim(ctx context.Context, conversationID, agentID string) (ch store.AssignmentChanged, claimed bool, err error) {
	c, err := a.Store.GetConversation(ctx, conversationID)
	if err != nil || c.Status != "open" || c.Assignee != "" {
		return ch, false, err
	}
	if _, err := a.Store.GetAgent(ctx, agentID); err != nil {
		return ch, false, err // an agent the desk does not know (a supervisor answering) claims nothing
	}
	ch, err = a.assign(ctx, c.ID, c.CustomerID, "", Decision{AgentID: agentID, Rule: RuleClaimed, Note: "replied"}, agentID)
	return ch, err == nil, err
}

func (a *Assigner) assign(ctx context.Context, convID, customerID, previous string, d Decision, by string) (store.AssignmentChanged, error) {
	ch := store.AssignmentChanged{ConversationID: convID, CustomerID: customerID, AgentID: d.AgentID,
		PreviousAgentID: previous, Rule: d.Rule, Note: truncateNote(d.Note), By: by, At: time.Now().UTC()}
	if ch.PreviousAgentID == ch.AgentID {
		ch.PreviousAgentID = ""
	}
	e, err := event.New(TypeAssignmentChanged, Source, ch, event.WithSubject(convID), event.WithPartitionKey(convID))
	if err != nil {
		return ch, err
	}
	if err := a.Bus.Publish(ctx, SubjectAssignment, e); err != nil {
		return ch, err
	}
	if _, err := a.Store.ApplyAssignment(ctx, e.ID(), ch); err != nil {
		return ch, err
	}
	a.Log.Info("conversation assigned", "conversation", convID, "agent", d.AgentID, "rule", d.Rule, "by", by)
	if a.Notify != nil {
		a.Notify(ch)
	}
	return ch, nil
}

func truncateNote(s string) string {
	r := []rune(s)
	if len(r) > 1000 {
		return string(r[:1000])
	}
	return s
}
