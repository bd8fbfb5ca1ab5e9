package connector

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Outbound commands: what a channel connector reads of an omni.channel.message.send.requested
// and the omni.channel.message.status.updated it answers with, as the schemas define them.

// Identity is a customer identity on a channel (schemas common.defs.json identity).
type Identity struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// Key is the identity as a partition key, kind:value.
func (i Identity) Key() string { return i.Kind + ":" + i.Value }

// SendCommand is the part of a send command a channel connector reads; Message is left raw for
// the connector to decode into the types it sends.
type SendCommand struct {
	To             Identity        `json:"to"`
	Message        json.RawMessage `json:"message"`
	ConversationID string          `json:"conversation_id,omitempty"`
	Account        string          `json:"account,omitempty"`
}

// TextMessage is the text of an outbound message; Type is the message's type, whatever it is.
type TextMessage struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// SendStatus is the data of the status of a send command.
type SendStatus struct {
	Channel         string          `json:"channel"`
	MessageID       string          `json:"message_id"`
	VendorMessageID string          `json:"vendor_message_id,omitempty"`
	Status          string          `json:"status"`
	ErrorCode       string          `json:"error_code,omitempty"`
	Error           string          `json:"error,omitempty"`
	At              time.Time       `json:"at"`
	To              Identity        `json:"to"`
	Message         json.RawMessage `json:"message"`
	ConversationID  string          `json:"conversation_id,omitempty"`
}

// Statuses of a send.
const (
	StatusSent   = "sent"
	StatusFailed = "failed"
)

// maxStatusError bounds SendStatus.Error.
const maxStatusError = 2048

// DecodeSend reads the send command d carries and returns it with its status, "sent" until the
// connector decides otherwise (Fail). An undecodable command is a bus.Permanent error: it is
// dead-lettered.
func DecodeSend(channel string, d bus.Delivery) (SendCommand, *SendStatus, error) {
	var cmd SendCommand
	if err := event.DecodeData(d.Event, &cmd); err != nil {
		return SendCommand{}, nil, bus.Permanent(fmt.Errorf("undecodable send command: %w", err))
	}
	st := &SendStatus{Channel: channel, MessageID: d.Event.ID(), Status: StatusSent, To: cmd.To, Message: cmd.Message}
	if _, err := uuid.Parse(cmd.ConversationID); err == nil {
		st.ConversationID = cmd.ConversationID
	}
	return cmd, st, nil
}

// Fail marks the send failed with a machine-readable code and a reason for people (cut to 2 KiB
// on a character boundary).
func (st *SendStatus) Fail(code, reason string) {
	if len(reason) > maxStatusError {
		n := maxStatusError
		for n > 0 && reason[n]&0xC0 == 0x80 {
			n--
		}
		reason = reason[:n]
	}
	st.Status, st.ErrorCode, st.Error = StatusFailed, code, reason
}

// ReportSend publishes st, the status of the send command d carried, on subject: id
// <connector>:status:<command id> (a redelivered command republishes the same status, stored
// once), correlated with the command, partitioned by the recipient (the command's partition key
// when it has none).
func (rt *Runtime) ReportSend(ctx context.Context, subject string, d bus.Delivery, st *SendStatus) error {
	st.At = time.Now().UTC()
	key := st.To.Key()
	if st.To.Kind == "" || st.To.Value == "" {
		key = event.PartitionKey(d.Event)
	}
	e, err := rt.NewEvent(schemas.TypeChannelMessageStatusUpdated, st, event.WithID(rt.Spec.Name+":status:"+d.Event.ID()),
		event.WithCorrelationID(d.Event.ID()), event.WithPartitionKey(key))
	if err != nil {
		return bus.Permanent(err)
	}
	return rt.Publish(ctx, bus.Outgoing{Subject: subject, Event: e})
}
