package engine

import (
	"encoding/json"
	"time"

	"github.com/omnibus-dev/omnibus/schemas"
)

// Event types the unifier consumes and produces (schemas/ has one JSON Schema each).
const (
	TypeMessageReceived    = schemas.TypeChannelMessageReceived
	TypeStatusUpdated      = schemas.TypeChannelMessageStatusUpdated
	TypeCloseRequested     = schemas.TypeConversationCloseRequested
	TypeReopenRequested    = schemas.TypeConversationReopenRequested
	TypeUnmergeRequested   = schemas.TypeCustomerUnmergeRequested
	TypeCRMLookupRequested = schemas.TypeToolCrmLookupRequested
	TypeCRMLookupCompleted = schemas.TypeToolCrmLookupCompleted
	TypeCRMLookupFailed    = schemas.TypeToolCrmLookupFailed
	TypeCallStarted        = schemas.TypeChannelCallStarted
	TypeCallAnswered       = schemas.TypeChannelCallAnswered
	TypeCallEnded          = schemas.TypeChannelCallEnded
	TypeCallTransferred    = schemas.TypeChannelCallTransferred
	TypeCallTransferFailed = schemas.TypeChannelCallTransferFailed
	TypeCallTranscribed    = schemas.TypeChannelCallTranscribed
	TypeSegment            = schemas.TypeChannelCallSegmentTranscribed
	TypeSummaryCompleted   = schemas.TypeToolAiSummaryCompleted

	TypeDeskConversationOpened  = schemas.TypeDeskConversationOpened
	TypeDeskConversationUpdated = schemas.TypeDeskConversationUpdated
	TypeDeskConversationClosed  = schemas.TypeDeskConversationClosed
	TypeDeskMessageAdded        = schemas.TypeDeskMessageAdded
	TypeDeskMessageUpdated      = schemas.TypeDeskMessageUpdated
	TypeDeskCustomerUpdated     = schemas.TypeDeskCustomerUpdated
	TypeDeskCustomerMerged      = schemas.TypeDeskCustomerMerged
	TypeDeskCustomerUnmerged    = schemas.TypeDeskCustomerUnmerged
	TypeDeskToolResult          = schemas.TypeDeskToolResult
	TypeDeskCallRinging         = schemas.TypeDeskCallRinging
	TypeDeskCallUpdated         = schemas.TypeDeskCallUpdated
)

// Subjects the unifier publishes on.
const (
	SubjectCRMLookup = "omni.tool.crm.lookup.requested"
)

// Identity is a channel identity as carried in events.
type Identity struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
	// Index and Masked are set in the sealed form (pkg/pii Events): Value is then a ciphertext,
	// which an engine without the keys does not open; it matches by Index.
	Index  string `json:"index,omitempty"`
	Masked string `json:"masked,omitempty"`
}

// MessageReceived is the data of omni.channel.message.received.
type MessageReceived struct {
	Channel          string          `json:"channel"`
	ChannelMessageID string          `json:"channel_message_id"`
	From             Identity        `json:"from"`
	Identities       []Identity      `json:"identities,omitempty"`
	DisplayName      string          `json:"display_name,omitempty"`
	Account          string          `json:"account,omitempty"`
	Message          json.RawMessage `json:"message"`
	SentAt           time.Time       `json:"sent_at"`
}

// StatusUpdated is the data of omni.channel.message.status.updated.
type StatusUpdated struct {
	Channel         string          `json:"channel"`
	MessageID       string          `json:"message_id"`
	VendorMessageID string          `json:"vendor_message_id,omitempty"`
	Status          string          `json:"status"`
	ErrorCode       string          `json:"error_code,omitempty"`
	Error           string          `json:"error,omitempty"`
	At              time.Time       `json:"at"`
	To              *Identity       `json:"to,omitempty"`
	Message         json.RawMessage `json:"message,omitempty"`
	ConversationID  string          `json:"conversation_id,omitempty"`
}

// CallEvent is the data of omni.channel.call.started, .answered and .ended (the fields the
// unifier keeps; ended has them all).
type CallEvent struct {
	Channel    string     `json:"channel"`
	CallID     string     `json:"call_id"`
	Direction  string     `json:"direction"`
	From       Identity   `json:"from"`
	To         Identity   `json:"to"`
	At         time.Time  `json:"at"`          // started, answered
	StartedAt  time.Time  `json:"started_at"`  // ended
	AnsweredAt *time.Time `json:"answered_at"` // ended, if it was answered
	EndedAt    time.Time  `json:"ended_at"`    // ended
	DurationMS int64      `json:"duration_ms"` // ended
	TalkMS     int64      `json:"talk_ms"`     // ended
	HangupSide string     `json:"hangup_side"` // ended
	Reason     string     `json:"reason"`      // ended
	Recording  *struct {
		Legs []struct {
			Leg string `json:"leg"`
			URL string `json:"url"`
		} `json:"legs"`
	} `json:"recording"` // ended, if something was recorded
	// Transcript is the transcript's state: live (answered), pending, complete, partial or
	// none (ended); absent when the call is not transcribed.
	Transcript string `json:"transcript"`
}

// Segment is the data of omni.channel.call.segment.transcribed.
type Segment struct {
	Channel   string `json:"channel"`
	CallID    string `json:"call_id"`
	SegmentID int64  `json:"segment_id"`
	Speaker   string `json:"speaker"` // caller or callee
	StartMS   int64  `json:"start_ms"`
	EndMS     int64  `json:"end_ms"`
	Text      string `json:"text"`
	Final     bool   `json:"final"`
	// Tone is the caller's voice tone over the segment (common.defs.json voiceTone), copied as
	// is onto the voice message's body.
	Tone json.RawMessage `json:"tone,omitempty"`
}

// ConversationCommand is the data of omni.conversation.close|reopen.requested.
type ConversationCommand struct {
	ConversationID string `json:"conversation_id"`
	Reason         string `json:"reason,omitempty"`
	AgentID        string `json:"agent_id,omitempty"`
}

// UnmergeCommand is the data of omni.customer.unmerge.requested.
type UnmergeCommand struct {
	MergeID string `json:"merge_id"`
	Reason  string `json:"reason,omitempty"`
	AgentID string `json:"agent_id,omitempty"`
}

// CRMLookupRequest is the data of omni.tool.crm.lookup.requested.
type CRMLookupRequest struct {
	CustomerID     string   `json:"customer_id"`
	ConversationID string   `json:"conversation_id,omitempty"`
	Query          Identity `json:"query"`
}

// CRMLookupResult is the data of omni.tool.crm.lookup.completed and .failed.
type CRMLookupResult struct {
	CustomerID     string            `json:"customer_id"`
	ConversationID string            `json:"conversation_id,omitempty"`
	Query          Identity          `json:"query"`
	Provider       string            `json:"provider"`
	Found          bool              `json:"found"`
	Identities     []Identity        `json:"identities,omitempty"`
	Profile        map[string]string `json:"profile,omitempty"`
	ErrorCode      string            `json:"error_code,omitempty"`
	Error          string            `json:"error,omitempty"`
	Fallback       json.RawMessage   `json:"fallback,omitempty"`
}

// IdentityView is an identity as the desk shows it: masked.
type IdentityView struct {
	Kind   string `json:"kind"`
	Masked string `json:"masked"`
	Source string `json:"source"`
}

// CustomerView is what the desk needs to render a customer without querying back.
type CustomerView struct {
	ID             string         `json:"id"`
	DisplayName    string         `json:"display_name,omitempty"`
	Identities     []IdentityView `json:"identities"`
	Profile        map[string]any `json:"profile"`
	ProfileSources map[string]any `json:"profile_sources"`
	CreatedAt      time.Time      `json:"created_at"`
}

// ConversationView is what the desk needs to render a conversation header.
type ConversationView struct {
	ID          string     `json:"id"`
	CustomerID  string     `json:"customer_id"`
	Status      string     `json:"status"`
	Channels    []string   `json:"channels"`
	OpenedAt    time.Time  `json:"opened_at"`
	ClosedAt    *time.Time `json:"closed_at,omitempty"`
	CloseReason string     `json:"close_reason,omitempty"`
	LastEventAt time.Time  `json:"last_event_at"`
	Assignee    string     `json:"assignee,omitempty"`
	PreviousID  string     `json:"previous_id,omitempty"`
	// Summary is set on the omni.desk.conversation.updated that announces a stored summary; the
	// other events leave it out (the desk keeps the last one it got).
	Summary *SummaryView `json:"summary,omitempty"`
}

// SummaryView is the summary of a conversation's close as the desk shows it
// (desk.defs.json#/$defs/conversationSummary).
type SummaryView struct {
	Text         string    `json:"text"`
	Source       string    `json:"source"`
	BusinessType string    `json:"business_type,omitempty"`
	Model        string    `json:"model,omitempty"`
	ClosedAt     time.Time `json:"closed_at"`
	EventID      string    `json:"event_id"`
	At           time.Time `json:"at"`
}

// SummaryCompleted is the data of omni.tool.ai.summary.completed (the fields the unifier keeps).
type SummaryCompleted struct {
	ConversationID string    `json:"conversation_id"`
	ClosedAt       time.Time `json:"closed_at"`
	Summary        string    `json:"summary"`
	Language       string    `json:"language,omitempty"`
	BusinessType   string    `json:"business_type,omitempty"`
	Source         string    `json:"source"`
	Provenance     *struct {
		Provider string `json:"provider"`
		Model    string `json:"model"`
	} `json:"provenance,omitempty"`
}
