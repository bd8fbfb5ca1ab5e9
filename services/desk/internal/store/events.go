package store

import (
	"encoding/json"
	"time"
)

// The data of the events the desk projects, as their schemas under schemas/ define them.

// IdentityView is a masked identity (desk.defs.json#/$defs/identityView).
type IdentityView struct {
	Kind   string `json:"kind"`
	Masked string `json:"masked"`
	Source string `json:"source"`
}

// CustomerView is a customer as the unifier sends it (desk.defs.json#/$defs/customerView).
type CustomerView struct {
	ID             string          `json:"id"`
	DisplayName    string          `json:"display_name,omitempty"`
	Identities     []IdentityView  `json:"identities"`
	Profile        json.RawMessage `json:"profile"`
	ProfileSources json.RawMessage `json:"profile_sources"`
	CreatedAt      time.Time       `json:"created_at"`
}

// ConversationView is a conversation header (desk.defs.json#/$defs/conversationView). The
// unifier's assignee is ignored: assignment is the desk's (omni.desk.assignment.changed).
type ConversationView struct {
	ID          string     `json:"id"`
	CustomerID  string     `json:"customer_id"`
	Status      string     `json:"status"`
	Channels    []string   `json:"channels"`
	OpenedAt    time.Time  `json:"opened_at"`
	ClosedAt    *time.Time `json:"closed_at,omitempty"`
	CloseReason string     `json:"close_reason,omitempty"`
	LastEventAt time.Time  `json:"last_event_at"`
	PreviousID  string     `json:"previous_id,omitempty"`
	// Summary is set only on the conversation.updated that announces a stored summary.
	Summary *Summary `json:"summary,omitempty"`
}

// Summary is the summary of a conversation's close (desk.defs.json#/$defs/conversationSummary):
// masked text, written by a model (source llm) or by the assist connector's rules.
type Summary struct {
	Text         string    `json:"text"`
	Source       string    `json:"source"`
	BusinessType string    `json:"business_type,omitempty"`
	Model        string    `json:"model,omitempty"`
	ClosedAt     time.Time `json:"closed_at"`
	EventID      string    `json:"event_id"`
	At           time.Time `json:"at"`
}

// MessageAdded is omni.desk.message.added.
type MessageAdded struct {
	Message struct {
		EventID        string          `json:"event_id"`
		ConversationID string          `json:"conversation_id"`
		CustomerID     string          `json:"customer_id"`
		Channel        string          `json:"channel"`
		Direction      string          `json:"direction"`
		From           *IdentityView   `json:"from,omitempty"`
		To             *IdentityView   `json:"to,omitempty"`
		Body           json.RawMessage `json:"body"`
		SentAt         time.Time       `json:"sent_at"`
		Status         string          `json:"status,omitempty"`
	} `json:"message"`
	Conversation ConversationView `json:"conversation"`
	Customer     struct {
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
	} `json:"customer"`
}

// MessageUpdated is omni.desk.message.updated.
type MessageUpdated struct {
	MessageID      string    `json:"message_id"`
	ConversationID string    `json:"conversation_id"`
	Channel        string    `json:"channel"`
	Status         string    `json:"status"`
	ErrorCode      string    `json:"error_code,omitempty"`
	Error          string    `json:"error,omitempty"`
	At             time.Time `json:"at"`
}

// CustomerMerged is omni.desk.customer.merged.
type CustomerMerged struct {
	MergeID  string       `json:"merge_id"`
	FromID   string       `json:"from_id"`
	IntoID   string       `json:"into_id"`
	At       time.Time    `json:"at"`
	Customer CustomerView `json:"customer"`
}

// CustomerUnmerged is omni.desk.customer.unmerged.
type CustomerUnmerged struct {
	MergeID   string         `json:"merge_id"`
	FromID    string         `json:"from_id"`
	IntoID    string         `json:"into_id"`
	At        time.Time      `json:"at"`
	Customers []CustomerView `json:"customers"`
}

// ToolResult is omni.desk.tool.result.
type ToolResult struct {
	EventID        string          `json:"event_id"`
	ConversationID string          `json:"conversation_id"`
	CustomerID     string          `json:"customer_id"`
	Tool           string          `json:"tool"`
	Op             string          `json:"op"`
	Outcome        string          `json:"outcome"`
	CorrelationID  string          `json:"correlation_id"`
	Result         json.RawMessage `json:"result"`
	At             time.Time       `json:"at"`
}

// AssignmentChanged is omni.desk.assignment.changed.
type AssignmentChanged struct {
	ConversationID  string    `json:"conversation_id"`
	CustomerID      string    `json:"customer_id"`
	AgentID         string    `json:"agent_id"`
	PreviousAgentID string    `json:"previous_agent_id,omitempty"`
	Rule            string    `json:"rule"`
	Note            string    `json:"note,omitempty"`
	By              string    `json:"by"`
	At              time.Time `json:"at"`
}

// AgentUpdated is omni.desk.agent.updated.
type AgentUpdated struct {
	Agent Agent     `json:"agent"`
	By    string    `json:"by"`
	At    time.Time `json:"at"`
}
