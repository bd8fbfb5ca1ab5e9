// Package hub is the desk's in-process fan-out: the projection publishes a Notice after each
// change it commits, and every open Server-Sent Events stream of the workbench receives it.
package hub

import (
	"encoding/json"
	"sync"
)

// Notice tells the workbench what changed. Data is the changed row as the API serves it (an
// inbox row, an alert, ...), so a page updates without another request.
type Notice struct {
	Type           string          `json:"type"` // the CloudEvents type that caused it, or desk.* for local changes
	ConversationID string          `json:"conversation_id,omitempty"`
	CustomerID     string          `json:"customer_id,omitempty"`
	Data           json.RawMessage `json:"data,omitempty"`
	// AgentID, when set, addresses the notice to that agent's streams only (an AI suggestion
	// streamed to the agent who asked); it is not sent.
	AgentID string `json:"-"`
}

// Buffer is how many notices a slow subscriber may fall behind before it is cut off (its
// stream ends; the browser reconnects and reloads).
const Buffer = 256

// Hub fans notices out to subscribers.
type Hub struct {
	mu   sync.Mutex
	subs map[chan Notice]string // → the subscriber's agent id
}

// New returns an empty hub.
func New() *Hub { return &Hub{subs: map[chan Notice]string{}} }

// Subscribe returns a channel of notices and a cancel function. The channel is closed by
// cancel, or by the hub when the subscriber falls Buffer notices behind. It receives no notice
// addressed to an agent (Notice.AgentID); SubscribeAs does.
func (h *Hub) Subscribe() (<-chan Notice, func()) { return h.SubscribeAs("") }

// SubscribeAs is Subscribe for a page of agent: it also receives the notices addressed to agent.
func (h *Hub) SubscribeAs(agent string) (<-chan Notice, func()) {
	ch := make(chan Notice, Buffer)
	h.mu.Lock()
	h.subs[ch] = agent
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// Publish delivers n to every subscriber without blocking.
func (h *Hub) Publish(n Notice) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch, agent := range h.subs {
		if n.AgentID != "" && n.AgentID != agent {
			continue
		}
		select {
		case ch <- n:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// Subscribers returns how many streams are open.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
