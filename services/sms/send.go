package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/canary"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
)

// sendCommand is the data of omni.channel.message.send.requested, as far as SMS needs it.
type sendCommand struct {
	To struct {
		Kind  string `json:"kind"`
		Value string `json:"value"`
	} `json:"to"`
	ConversationID string          `json:"conversation_id"`
	Account        string          `json:"account"`
	AgentID        string          `json:"agent_id"`
	Message        json.RawMessage `json:"message"`
}

// outcome is what one attempt at a send command ends with.
type outcome struct {
	status   string // sent or failed
	vendorID string
	code     string // error_code of a failed status
	reason   string
	to       string // E.164, "" when the command's address is unusable
	provider string // the provider that sent it (or refused it), "" when none was called
}

// handleSend sends one command. It is idempotent by the command id: an accepted send is
// remembered (state cmd.*), and a redelivery publishes the same status again instead of sending
// twice. See the package doc for the error handling.
func (c *conn) handleSend(ctx context.Context, d bus.Delivery) error {
	var cmd sendCommand
	if err := event.DecodeData(d.Event, &cmd); err != nil {
		return bus.Permanent(fmt.Errorf("undecodable send command: %w", err))
	}
	id := d.Event.ID()
	out, err := c.attempt(ctx, id, &cmd)
	if err != nil {
		v, ve := verdictOf(err)
		switch {
		case v == misconfigured:
			c.rt.Log.ErrorContext(ctx, "sms provider refuses the connector's configuration; command dead-lettered", "command", id, "err", err)
			return bus.Permanent(err)
		case int(d.NumDelivered) < c.cfg.SendMaxDeliver:
			c.rt.Log.WarnContext(ctx, "sms send failed; will retry", "command", id, "attempt", d.NumDelivered, "err", err)
			return err // redelivered after the consumer's backoff
		}
		out.status, out.code = "failed", "send_error"
		if ve != nil {
			out.code = ve.Code
		}
		out.reason = fmt.Sprintf("gave up after %d attempts: %v", d.NumDelivered, err)
	}
	return c.publishStatus(ctx, d, &cmd, out)
}

// attempt checks the command and calls the vendor. A nil error comes with the outcome to
// publish; an error is the vendor's (or the transport's) and is classified by handleSend.
func (c *conn) attempt(ctx context.Context, id string, cmd *sendCommand) (outcome, error) {
	if cmd.To.Kind != "phone" {
		return outcome{status: "failed", code: "unaddressable", reason: fmt.Sprintf("SMS needs a phone identity, the command names a %q", cmd.To.Kind)}, nil
	}
	to, err := normalizePhone(cmd.To.Value, c.cfg.DefaultRegion)
	if err != nil {
		return outcome{status: "failed", code: "invalid_number", reason: err.Error()}, nil
	}
	var msg struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	_ = json.Unmarshal(cmd.Message, &msg)
	switch {
	case msg.Type != "text" || strings.TrimSpace(msg.Text) == "":
		return outcome{status: "failed", code: "unsupported_message_type", to: to,
			reason: fmt.Sprintf("SMS carries text only (one template variable); got a %q message", msg.Type)}, nil
	case utf8.RuneCountInString(msg.Text) > c.cfg.MaxTextRunes:
		return outcome{status: "failed", code: "text_too_long", to: to,
			reason: fmt.Sprintf("text has %d characters, SMS_MAX_TEXT_RUNES is %d", utf8.RuneCountInString(msg.Text), c.cfg.MaxTextRunes)}, nil
	}
	if rec, found, err := c.st.get(ctx, cmdKey(id)); err != nil {
		return outcome{to: to}, fmt.Errorf("sms state: %w", err) // transient: do not risk a second send
	} else if found {
		return outcome{status: "sent", vendorID: rec.VendorID, to: to, provider: rec.Provider}, nil
	}
	// The canary rollout picks the provider: by the customer's number, so a customer's messages
	// all go through one provider (and a retry through the same, unless the rollout ended).
	pick := c.canary.Pick(canary.Request{Key: "phone:" + to, Channel: Channel, Account: strings.TrimSpace(cmd.Account), Agent: cmd.AgentID})
	sign := strings.TrimSpace(cmd.Account)
	if sign == "" {
		sign = c.signName(pick.Variant)
	}
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	vendorID, err := c.provs[pick.Variant].send(callCtx, to, msg.Text, sign, id)
	c.canary.Record(ctx, pick.Variant, canaryResult(err), time.Since(start))
	if err != nil {
		if v, ve := verdictOf(err); v == rejected {
			return outcome{status: "failed", code: ve.Code, reason: ve.Message, to: to, provider: pick.Variant}, nil
		}
		return outcome{to: to, provider: pick.Variant}, err
	}
	if err := c.st.remember(ctx, sentRecord{MessageID: id, Provider: pick.Variant, VendorID: vendorID, To: to, At: c.now().UTC()}); err != nil {
		// The message is sent; only receipt matching and redelivery protection suffer.
		c.rt.Log.WarnContext(ctx, "sms state: could not remember a send", "command", id, "err", err)
	}
	return outcome{status: "sent", vendorID: vendorID, to: to, provider: pick.Variant}, nil
}

// canaryResult is what a send says about its provider: a message the vendor refuses (invalid
// number, blocked content) says nothing, the connector's misconfiguration with that provider
// (wrong credentials, unapproved sign) is its failure; the rest is read from the resilience
// outcome (canary.ResultOf).
func canaryResult(err error) canary.Result {
	switch v, _ := verdictOf(err); {
	case err == nil:
		return canary.Success
	case v == rejected:
		return canary.Skip
	case v == misconfigured:
		return canary.Failure
	}
	return canary.ResultOf(err)
}

// signName is provider's configured sign.
func (c *conn) signName(provider string) string {
	if provider == ProviderTencent {
		return c.cfg.Tencent.SignName
	}
	return c.cfg.Aliyun.SignName
}

// publishStatus publishes the command's status, id sms:status:<command id>:<status>. With a
// usable number it carries what was sent (to, message, conversation_id), so the unifier records
// the outbound message; it is partitioned behind the customer's phone, like the receipts that
// follow it.
func (c *conn) publishStatus(ctx context.Context, d bus.Delivery, cmd *sendCommand, out outcome) error {
	id := d.Event.ID()
	now := c.now().UTC()
	data := map[string]any{"channel": Channel, "message_id": id, "status": out.status, "at": now.Format(time.RFC3339Nano)}
	if out.vendorID != "" {
		data["vendor_message_id"] = out.vendorID
	}
	if out.provider != "" {
		data["provider"] = out.provider
	}
	if out.status == "failed" {
		data["error_code"] = clip(out.code, 128)
		if out.reason != "" {
			data["error"] = clip(out.reason, 2048)
		}
	}
	key := event.PartitionKey(d.Event)
	if out.to != "" {
		key = "phone:" + out.to
		data["to"] = map[string]string{"kind": "phone", "value": out.to}
		data["message"] = cmd.Message
		if _, err := uuid.Parse(cmd.ConversationID); err == nil {
			data["conversation_id"] = cmd.ConversationID
		}
	}
	if key == "" {
		key = "sms:" + id
	}
	st, err := c.rt.NewEvent(TypeStatus, data, event.WithID("sms:status:"+id+":"+out.status), event.WithCorrelationID(id),
		event.WithPartitionKey(key), event.WithTime(now))
	if err != nil {
		return bus.Permanent(err)
	}
	if err := c.rt.Publish(ctx, bus.Outgoing{Subject: SubjectStatus, Event: st}); err != nil {
		if errors.Is(err, schema.ErrInvalid) {
			return bus.Permanent(err)
		}
		return err // the command is redelivered; the state keeps it from being sent twice
	}
	c.rt.Log.InfoContext(ctx, "sms send", "command", id, "status", out.status, "code", out.code, "vendor_id", out.vendorID)
	return nil
}
