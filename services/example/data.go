package example

import (
	"encoding/json"
	"time"
)

// The vendor's wire: its webhook body, a send and the send's answer.
type (
	inbound struct {
		ID, From, Text string
		SentAt         time.Time `json:"sent_at"`
	}
	vendorSend struct {
		To   string `json:"to"`
		Text string `json:"text"`
		Ref  string `json:"ref"` // the command's event id: the vendor keeps one message per ref
	}
	sent struct {
		MessageID string `json:"message_id"`
	}
)

// The data of the events, as schemas/omni.channel.message.*.json define it.
type (
	identity struct {
		Kind  string `json:"kind"`
		Value string `json:"value"`
	}
	text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	received struct {
		Channel          string    `json:"channel"`
		ChannelMessageID string    `json:"channel_message_id"`
		From             identity  `json:"from"`
		Message          text      `json:"message"`
		SentAt           time.Time `json:"sent_at"`
		VendorTime       string    `json:"vendor_time,omitempty"`
	}
	sendCommand struct {
		To             identity        `json:"to"`
		Message        json.RawMessage `json:"message"`
		ConversationID string          `json:"conversation_id,omitempty"`
	}
	status struct {
		Channel         string          `json:"channel"`
		MessageID       string          `json:"message_id"`
		VendorMessageID string          `json:"vendor_message_id,omitempty"`
		Status          string          `json:"status"`
		ErrorCode       string          `json:"error_code,omitempty"`
		At              time.Time       `json:"at"`
		To              identity        `json:"to"`
		Message         json.RawMessage `json:"message"`
		ConversationID  string          `json:"conversation_id,omitempty"`
	}
)
