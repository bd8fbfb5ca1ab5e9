package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omnibus-dev/omnibus/pkg/pii"
)

// Conversation is an inbox row: the header, the desk's own state and the customer's name.
type Conversation struct {
	ID             string     `json:"id"`
	CustomerID     string     `json:"customer_id"`
	CustomerName   string     `json:"customer_name"`
	Status         string     `json:"status"`
	Channels       []string   `json:"channels"`
	CurrentChannel string     `json:"current_channel,omitempty"`
	OpenedAt       time.Time  `json:"opened_at"`
	ClosedAt       *time.Time `json:"closed_at,omitempty"`
	CloseReason    string     `json:"close_reason,omitempty"`
	LastEventAt    time.Time  `json:"last_event_at"`
	PreviousID     string     `json:"previous_id,omitempty"`
	Assignee       string     `json:"assignee,omitempty"`
	AssignedAt     *time.Time `json:"assigned_at,omitempty"`
	Language       string     `json:"language,omitempty"`
	LastPreview    string     `json:"last_preview,omitempty"`
	LastDirection  string     `json:"last_direction,omitempty"`
	LastMessageAt  *time.Time `json:"last_message_at,omitempty"`
	Unread         int        `json:"unread"`
	WaitingSince   *time.Time `json:"waiting_since,omitempty"`
	Sentiment      string     `json:"sentiment,omitempty"`
	// Summary is the summary of its latest summarised close (past conversations show it).
	Summary *Summary `json:"summary,omitempty"`
}

// The name the desk shows for a customer: the CRM's (profile.name, a record the contact centre
// keeps) over the channel profile's nickname (display_name, what the customer calls themself on
// WeChat or web chat), so a caller the CRM knows is not shown as an id.
const (
	customerNameOfCu = `coalesce(nullif(cu.profile->>'name', ''), cu.display_name, '')`
	customerName     = `coalesce(nullif(profile->>'name', ''), display_name, '')`
)

const convColumns = `c.id::text, c.customer_id::text, ` + customerNameOfCu + `, c.status, c.channels,
	coalesce(c.current_channel, ''), c.opened_at, c.closed_at, coalesce(c.close_reason, ''), c.last_event_at,
	coalesce(c.previous_id::text, ''), coalesce(c.assignee, ''), c.assigned_at, coalesce(c.language, ''),
	coalesce(c.last_preview, ''), coalesce(c.last_direction, ''), c.last_message_at, c.unread, c.waiting_since,
	coalesce(c.sentiment, ''), c.summary`

const convFrom = ` FROM desk.conversations c LEFT JOIN desk.customers cu ON cu.id = c.customer_id`

func scanConversation(r pgx.Row) (Conversation, error) {
	var c Conversation
	err := r.Scan(&c.ID, &c.CustomerID, &c.CustomerName, &c.Status, &c.Channels, &c.CurrentChannel, &c.OpenedAt,
		&c.ClosedAt, &c.CloseReason, &c.LastEventAt, &c.PreviousID, &c.Assignee, &c.AssignedAt, &c.Language,
		&c.LastPreview, &c.LastDirection, &c.LastMessageAt, &c.Unread, &c.WaitingSince, &c.Sentiment, &c.Summary)
	if c.Channels == nil {
		c.Channels = []string{}
	}
	return c, err
}

// Filter selects inbox rows. Zero fields select everything.
type Filter struct {
	Status     string // open, closed, merged; "" = open and closed
	Channel    string // conversations that used this channel
	Assignee   string // an agent id; "none" = unassigned
	CustomerID string
	Limit      int // default 100, at most 500
}

// IdleConversations returns the ids and last activity of up to limit open conversations with no
// activity since before, the longest idle first.
func (s *Store) IdleConversations(ctx context.Context, before time.Time, limit int) (ids []string, last []time.Time, err error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text, last_event_at FROM desk.conversations
		WHERE status = 'open' AND last_event_at < $1 ORDER BY last_event_at LIMIT $2`, before, limit)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, nil, err
		}
		ids, last = append(ids, id), append(last, at)
	}
	return ids, last, rows.Err()
}

// ListConversations returns inbox rows, most recent activity first.
func (s *Store) ListConversations(ctx context.Context, f Filter) ([]Conversation, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	switch f.Status {
	case "":
		where = append(where, "c.status <> 'merged'")
	default:
		where = append(where, "c.status = "+arg(f.Status))
	}
	if f.Channel != "" {
		where = append(where, arg(f.Channel)+" = ANY(c.channels)")
	}
	switch f.Assignee {
	case "":
	case "none":
		where = append(where, "c.assignee IS NULL")
	default:
		where = append(where, "c.assignee = "+arg(f.Assignee))
	}
	if f.CustomerID != "" {
		where = append(where, "c.customer_id = "+arg(f.CustomerID))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 500)
	q := `SELECT ` + convColumns + convFrom
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY c.last_event_at DESC, c.id LIMIT " + arg(limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Conversation, error) { return scanConversation(r) })
	if out == nil {
		out = []Conversation{}
	}
	return out, err
}

// GetConversation returns one inbox row, or ErrNotFound.
func (s *Store) GetConversation(ctx context.Context, id string) (Conversation, error) {
	c, err := scanConversation(s.pool.QueryRow(ctx, `SELECT `+convColumns+convFrom+` WHERE c.id::text = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNotFound
	}
	return c, err
}

// Message is a message on a timeline.
type Message struct {
	EventID        string          `json:"event_id"`
	ConversationID string          `json:"conversation_id"`
	Channel        string          `json:"channel"`
	Direction      string          `json:"direction"`
	Party          json.RawMessage `json:"party,omitempty"`
	Body           json.RawMessage `json:"body"`
	SentAt         time.Time       `json:"sent_at"`
	Status         string          `json:"status,omitempty"`
	StatusAt       *time.Time      `json:"status_at,omitempty"`
	ErrorCode      string          `json:"error_code,omitempty"`
	Error          string          `json:"error,omitempty"`
	AgentID        string          `json:"agent_id,omitempty"`
	DisplayName    string          `json:"display_name,omitempty"`
}

// Messages returns a conversation's messages in order.
func (s *Store) Messages(ctx context.Context, conversationID string) ([]Message, error) {
	rows, err := s.pool.Query(ctx, `SELECT event_id, conversation_id::text, channel, direction, party, body, sent_at,
			coalesce(status, ''), status_at, coalesce(error_code, ''), coalesce(error, ''), coalesce(agent_id, ''), coalesce(display_name, '')
		FROM desk.messages WHERE conversation_id::text = $1 ORDER BY sent_at, event_id`, conversationID)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) {
		var m Message
		var party []byte
		err := r.Scan(&m.EventID, &m.ConversationID, &m.Channel, &m.Direction, &party, &m.Body, &m.SentAt, &m.Status,
			&m.StatusAt, &m.ErrorCode, &m.Error, &m.AgentID, &m.DisplayName)
		if len(party) > 0 && string(party) != "null" {
			m.Party = party
		}
		return m, err
	})
	if out == nil {
		out = []Message{}
	}
	return out, err
}

// TimelineItem is one entry of a conversation's timeline: a message, a tool request, a tool
// result, an assignment or a phone call (at its start), in time order.
type TimelineItem struct {
	Kind       string           `json:"kind"` // message | tool_request | tool_result | assignment | call | note
	At         time.Time        `json:"at"`
	Message    *Message         `json:"message,omitempty"`
	Request    *ToolRequest     `json:"request,omitempty"`
	Result     *ToolResultRow   `json:"result,omitempty"`
	Assignment *AssignmentEntry `json:"assignment,omitempty"`
	Call       *CallRow         `json:"call,omitempty"`
	Note       *Note            `json:"note,omitempty"`
}

// ToolRequest is a tool button press (or another service's tool request about the conversation).
type ToolRequest struct {
	EventID     string          `json:"event_id"`
	Tool        string          `json:"tool"`
	Op          string          `json:"op"`
	AgentID     string          `json:"agent_id,omitempty"`
	Data        json.RawMessage `json:"data"`
	RequestedAt time.Time       `json:"requested_at"`
	Answered    bool            `json:"answered"`
}

// ToolResultRow is a tool result on a timeline.
type ToolResultRow struct {
	EventID       string          `json:"event_id"`
	Tool          string          `json:"tool"`
	Op            string          `json:"op"`
	Outcome       string          `json:"outcome"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	Result        json.RawMessage `json:"result"`
	At            time.Time       `json:"at"`
}

// AssignmentEntry is an assignment on a timeline.
type AssignmentEntry struct {
	EventID         string    `json:"event_id"`
	AgentID         string    `json:"agent_id"`
	PreviousAgentID string    `json:"previous_agent_id,omitempty"`
	Rule            string    `json:"rule"`
	Note            string    `json:"note,omitempty"`
	By              string    `json:"by"`
	At              time.Time `json:"at"`
}

// Timeline returns everything that happened on a conversation, oldest first.
func (s *Store) Timeline(ctx context.Context, conversationID string) ([]TimelineItem, error) {
	msgs, err := s.Messages(ctx, conversationID)
	if err != nil {
		return nil, err
	}
	items := make([]TimelineItem, 0, len(msgs))
	for i := range msgs {
		items = append(items, TimelineItem{Kind: "message", At: msgs[i].SentAt, Message: &msgs[i]})
	}
	reqs, err := s.toolRequests(ctx, `r.conversation_id::text = $1`, conversationID)
	if err != nil {
		return nil, err
	}
	for i := range reqs {
		items = append(items, TimelineItem{Kind: "tool_request", At: reqs[i].RequestedAt, Request: &reqs[i]})
	}
	results, err := s.toolResults(ctx, `conversation_id::text = $1 ORDER BY at`, conversationID)
	if err != nil {
		return nil, err
	}
	for i := range results {
		items = append(items, TimelineItem{Kind: "tool_result", At: results[i].At, Result: &results[i]})
	}
	rows, err := s.pool.Query(ctx, `SELECT event_id, agent_id, coalesce(previous_agent_id, ''), rule, coalesce(note, ''), by_agent, at
		FROM desk.assignments WHERE conversation_id::text = $1 ORDER BY at`, conversationID)
	if err != nil {
		return nil, err
	}
	asg, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AssignmentEntry, error) {
		var a AssignmentEntry
		return a, r.Scan(&a.EventID, &a.AgentID, &a.PreviousAgentID, &a.Rule, &a.Note, &a.By, &a.At)
	})
	if err != nil {
		return nil, err
	}
	for i := range asg {
		items = append(items, TimelineItem{Kind: "assignment", At: asg[i].At, Assignment: &asg[i]})
	}
	calls, err := s.Calls(ctx, conversationID)
	if err != nil {
		return nil, err
	}
	for i := range calls {
		items = append(items, TimelineItem{Kind: "call", At: calls[i].At, Call: &calls[i]})
	}
	notes, err := s.Notes(ctx, conversationID)
	if err != nil {
		return nil, err
	}
	for i := range notes {
		items = append(items, TimelineItem{Kind: "note", At: notes[i].At, Note: &notes[i]})
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].At.Before(items[j].At) })
	return items, nil
}

func (s *Store) toolRequests(ctx context.Context, where string, args ...any) ([]ToolRequest, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.event_id, r.tool, r.op, coalesce(r.agent_id, ''), r.data, r.requested_at,
			EXISTS (SELECT 1 FROM desk.tool_results t WHERE t.correlation_id = r.event_id)
		FROM desk.tool_requests r WHERE `+where+` ORDER BY r.requested_at`, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ToolRequest, error) {
		var t ToolRequest
		err := r.Scan(&t.EventID, &t.Tool, &t.Op, &t.AgentID, &t.Data, &t.RequestedAt, &t.Answered)
		t.Data = pii.Conceal(t.Data) // a sealed identity: its kind and mask only
		return t, err
	})
}

func (s *Store) toolResults(ctx context.Context, where string, args ...any) ([]ToolResultRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT event_id, tool, op, outcome, coalesce(correlation_id, ''), result, at
		FROM desk.tool_results WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ToolResultRow, error) {
		var t ToolResultRow
		return t, r.Scan(&t.EventID, &t.Tool, &t.Op, &t.Outcome, &t.CorrelationID, &t.Result, &t.At)
	})
}

// Customer is the 360° view of a customer.
type Customer struct {
	ID             string          `json:"id"`
	DisplayName    string          `json:"display_name,omitempty"`
	Identities     json.RawMessage `json:"identities"`
	Profile        json.RawMessage `json:"profile"`
	ProfileSources json.RawMessage `json:"profile_sources"`
	CreatedAt      time.Time       `json:"created_at"`
	MergedInto     string          `json:"merged_into,omitempty"`
	// CRM: the latest CRM lookup result (found or not, or the failure with its fallback).
	CRM *ToolResultRow `json:"crm,omitempty"`
	// Orders: the orders the latest order tool result listed (omni.tool.oms.*), when one did.
	Orders        json.RawMessage `json:"orders,omitempty"`
	Conversations []Conversation  `json:"conversations"`
	// ReplyChannels: the channels the desk has an address for (it can send on them).
	ReplyChannels []string `json:"reply_channels"`
}

// Customer360 returns the customer (following merges to the surviving one) with its CRM
// fields, recent orders, every conversation on every channel and the channels it can be
// answered on.
func (s *Store) Customer360(ctx context.Context, id string) (Customer, error) {
	var c Customer
	for range 8 { // follow merged_into to the surviving customer
		var into *string
		err := s.pool.QueryRow(ctx, `SELECT id::text, `+customerName+`, identities, profile, profile_sources, created_at, merged_into::text
			FROM desk.customers WHERE id::text = $1`, id).
			Scan(&c.ID, &c.DisplayName, &c.Identities, &c.Profile, &c.ProfileSources, &c.CreatedAt, &into)
		if errors.Is(err, pgx.ErrNoRows) {
			return c, ErrNotFound
		}
		if err != nil {
			return c, err
		}
		if into == nil {
			break
		}
		c.MergedInto, id = *into, *into
	}
	crm, err := s.toolResults(ctx, `customer_id::text = $1 AND tool = 'crm' ORDER BY at DESC LIMIT 1`, c.ID)
	if err != nil {
		return c, err
	}
	if len(crm) > 0 {
		c.CRM = &crm[0]
	}
	oms, err := s.toolResults(ctx, `customer_id::text = $1 AND tool = 'oms' AND outcome = 'completed' ORDER BY at DESC LIMIT 1`, c.ID)
	if err != nil {
		return c, err
	}
	if len(oms) > 0 {
		var r struct {
			Orders json.RawMessage `json:"orders"`
		}
		if json.Unmarshal(oms[0].Result, &r) == nil && len(r.Orders) > 0 {
			c.Orders = r.Orders
		}
	}
	if c.Conversations, err = s.ListConversations(ctx, Filter{CustomerID: c.ID, Status: "", Limit: 50}); err != nil {
		return c, err
	}
	if c.ReplyChannels, err = s.replyChannels(ctx, c.ID); err != nil {
		return c, err
	}
	return c, nil
}

// phoneChannels are channels that address a customer by phone number, so a phone a CRM record
// gave is enough to answer on them.
var phoneChannels = []string{"sms", "voice"}

func (s *Store) replyChannels(ctx context.Context, customerID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT m.channel FROM desk.messages m JOIN desk.addresses a ON a.source_event = m.event_id
		WHERE m.customer_id::text = $1 AND m.direction = 'inbound'
		UNION SELECT DISTINCT unnest($2::text[]) FROM desk.addresses WHERE customer_id::text = $1 AND kind = 'phone'
		ORDER BY 1`, customerID, phoneChannels)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if out == nil {
		out = []string{}
	}
	return out, err
}

// ErrNoAddress is returned by ReplyAddress when the desk knows no identity of the customer it
// could send to on the channel.
var ErrNoAddress = errors.New("no address for the customer on that channel")

// ReplyAddress returns where a reply in the conversation goes on channel: the identity the
// customer last wrote from on that channel, or for phone channels a phone a CRM record gave.
func (s *Store) ReplyAddress(ctx context.Context, conversationID, channel string) (Address, error) {
	var a Address
	var sealed *string
	err := s.pool.QueryRow(ctx, `SELECT a.kind, a.value, coalesce(a.account, ''), a.sealed FROM desk.messages m
			JOIN desk.addresses a ON a.source_event = m.event_id
		WHERE m.customer_id = (SELECT customer_id FROM desk.conversations WHERE id::text = $1)
			AND m.direction = 'inbound' AND m.channel = $2
		ORDER BY m.sent_at DESC LIMIT 1`, conversationID, channel).Scan(&a.Kind, &a.Value, &a.Account, &sealed)
	if err == nil {
		return s.open(a, sealed)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return a, err
	}
	for _, pc := range phoneChannels {
		if pc != channel {
			continue
		}
		err = s.pool.QueryRow(ctx, `SELECT kind, value, '', sealed FROM desk.addresses
			WHERE customer_id = (SELECT customer_id FROM desk.conversations WHERE id::text = $1) AND kind = 'phone'
			ORDER BY at DESC LIMIT 1`, conversationID).Scan(&a.Kind, &a.Value, &a.Account, &sealed)
		if err == nil {
			return s.open(a, sealed)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return a, err
		}
	}
	return a, ErrNoAddress
}

// MaskedParty returns the masked identity the customer last wrote from on channel (shown on a
// pending reply until the unifier's record replaces it).
func (s *Store) MaskedParty(ctx context.Context, conversationID, channel string) IdentityView {
	var v IdentityView
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT party FROM desk.messages WHERE conversation_id::text = $1 AND channel = $2
		AND direction = 'inbound' AND party IS NOT NULL ORDER BY sent_at DESC LIMIT 1`, conversationID, channel).Scan(&raw)
	if err == nil {
		_ = json.Unmarshal(raw, &v)
	}
	if v.Kind == "" {
		v = IdentityView{Kind: "unknown", Masked: "…", Source: channel}
	}
	return v
}

// RecentTexts returns the conversation's last n text messages, oldest first, as (direction, channel, text).
func (s *Store) RecentTexts(ctx context.Context, conversationID string, n int) ([][3]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT direction, channel, body->>'text' FROM (
			SELECT direction, channel, body, sent_at FROM desk.messages
			WHERE conversation_id::text = $1 AND body->>'type' = 'text' ORDER BY sent_at DESC LIMIT $2) t ORDER BY sent_at`, conversationID, n)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) ([3]string, error) {
		var v [3]string
		return v, r.Scan(&v[0], &v[1], &v[2])
	})
}

// Alerts returns the most recent alerts (only unresolved ones when active).
func (s *Store) Alerts(ctx context.Context, active bool, limit int) ([]Alert, error) {
	q := `SELECT id, kind, severity, title, detail, coalesce(conversation_id::text, ''), coalesce(route, ''), at, resolved_at FROM desk.alerts`
	if active {
		q += ` WHERE resolved_at IS NULL`
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY at DESC LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	return collectAlerts(rows)
}

// ErrSealed is returned by ReplyAddress for an address kept sealed when the store holds no keys
// that open it.
var ErrSealed = errors.New("the address is sealed and this desk holds no keys that open it (PII_KEYSET_FILE)")

// open returns a with its value opened from sealed, if it was kept sealed.
func (s *Store) open(a Address, sealed *string) (Address, error) {
	if sealed == nil {
		return a, nil
	}
	if s.sealer == nil {
		return a, ErrSealed
	}
	v, err := s.sealer.Keys().Decrypt(*sealed)
	if err != nil {
		return a, fmt.Errorf("%w: %w", ErrSealed, err)
	}
	a.Value = v
	return a, nil
}
