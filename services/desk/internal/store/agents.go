package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Agent is a desk agent: what the routing rules match conversations against.
type Agent struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Skills    []string `json:"skills"`
	Languages []string `json:"languages"`
	Channels  []string `json:"channels"` // empty: every channel
	Capacity  int      `json:"capacity"` // most open conversations at once
	Active    bool     `json:"active"`
}

// AgentLoad is an agent with its current load (open conversations assigned to it).
type AgentLoad struct {
	Agent
	Load int `json:"load"`
}

// Agents returns every agent with its load, by id.
func (s *Store) Agents(ctx context.Context) ([]AgentLoad, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.id, a.name, a.skills, a.languages, a.channels, a.capacity, a.active,
			(SELECT count(*) FROM desk.conversations c WHERE c.assignee = a.id AND c.status = 'open')
		FROM desk.agents a ORDER BY a.id`)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AgentLoad, error) {
		var a AgentLoad
		return a, r.Scan(&a.ID, &a.Name, &a.Skills, &a.Languages, &a.Channels, &a.Capacity, &a.Active, &a.Load)
	})
	if out == nil {
		out = []AgentLoad{}
	}
	return out, err
}

// GetAgent returns one agent, or ErrNotFound.
func (s *Store) GetAgent(ctx context.Context, id string) (Agent, error) {
	var a Agent
	err := s.pool.QueryRow(ctx, `SELECT id, name, skills, languages, channels, capacity, active FROM desk.agents WHERE id = $1`, id).
		Scan(&a.ID, &a.Name, &a.Skills, &a.Languages, &a.Channels, &a.Capacity, &a.Active)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, ErrNotFound
	}
	return a, err
}

// Unassigned is an open conversation waiting for an agent, with what the routing rules need.
type Unassigned struct {
	ConversationID string
	CustomerID     string
	Channel        string // the customer's current channel
	Language       string
	Profile        json.RawMessage
	LastText       string // the customer's last text, for skill keywords
	LastAgent      string // the agent of the customer's previous conversation, if any
	OpenedAt       time.Time
}

// UnassignedConversations returns up to limit open conversations without an assignee, oldest
// first; only those where the customer has written (their channel, language and topic are known).
func (s *Store) UnassignedConversations(ctx context.Context, limit int) ([]Unassigned, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.id::text, c.customer_id::text,
			coalesce(c.current_channel, c.channels[array_length(c.channels, 1)], ''), coalesce(c.language, ''),
			coalesce(cu.profile, '{}'),
			coalesce((SELECT m.body->>'text' FROM desk.messages m WHERE m.conversation_id = c.id AND m.direction = 'inbound'
				ORDER BY m.sent_at DESC LIMIT 1), ''),
			coalesce((SELECT p.assignee FROM desk.conversations p WHERE p.customer_id = c.customer_id AND p.id <> c.id
				AND p.assignee IS NOT NULL ORDER BY p.opened_at DESC LIMIT 1), ''),
			c.opened_at
		FROM desk.conversations c LEFT JOIN desk.customers cu ON cu.id = c.customer_id
		WHERE c.status = 'open' AND c.assignee IS NULL AND c.current_channel IS NOT NULL
		ORDER BY c.opened_at LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Unassigned, error) {
		var u Unassigned
		return u, r.Scan(&u.ConversationID, &u.CustomerID, &u.Channel, &u.Language, &u.Profile, &u.LastText, &u.LastAgent, &u.OpenedAt)
	})
}
