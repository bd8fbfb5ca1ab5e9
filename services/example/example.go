// Package example is the connector template; copy this folder to start a connector. Its vendor
// POSTs {"id","from","text","sent_at"} to /hooks/example/messages with X-Example-Timestamp (Unix
// seconds) and X-Example-Signature = hex(HMAC-SHA256(secret, timestamp + "." + body)); sends go
// to POST {EXAMPLE_API_BASE}/send, signed the same way, and answer {"message_id"}.
package example

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
)

// Event types, subjects, routes and the Spec that declares them.
const (
	TypeReceived = "omni.channel.message.received"
	TypeSend     = "omni.channel.message.send.requested"
	TypeStatus   = "omni.channel.message.status.updated"
	SubjectIn    = "omni.in.example.message"
	SubjectOut   = "omni.out.example.message.send"
	SubjectState = "omni.in.example.status"
)

var (
	RouteIn     = connector.Route{Subject: SubjectIn, Type: TypeReceived}
	RouteStatus = connector.Route{Subject: SubjectState, Type: TypeStatus}
	RouteSend   = connector.Route{Subject: SubjectOut, Type: TypeSend}
	Spec        = connector.Spec{
		Name:        "example",
		Description: "template channel: signed JSON webhooks in, signed JSON sends out",
		Produces:    []connector.Route{RouteIn, RouteStatus},
		Consumes:    []connector.Route{RouteSend},
	}
)

// Config is read from the environment.
type Config struct {
	Secret  string        `env:"EXAMPLE_SECRET" desc:"shared HMAC secret of the example vendor (required)"`
	APIBase string        `env:"EXAMPLE_API_BASE" default:"http://127.0.0.1:8080/sandbox/example" desc:"example vendor API base URL"`
	Window  time.Duration `env:"EXAMPLE_SIGNATURE_WINDOW" default:"5m" desc:"accepted clock skew of webhook timestamps"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Secret == "" {
		return fmt.Errorf("EXAMPLE_SECRET is required")
	}
	return nil
}

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

// Sign returns the vendor signature of body at ts (also used by the vendor simulator).
func Sign(secret, ts string, b []byte) string {
	return webhook.HMACSHA256Hex([]byte(secret), []byte(ts+"."), b)
}

type inbound struct {
	ID, From, Text string
	SentAt         time.Time `json:"sent_at"`
}

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
	verify := func(r *http.Request, body []byte) error {
		ts := r.Header.Get("X-Example-Timestamp")
		if _, err := webhook.CheckTimestamp(ts, cfg.Window, time.Now()); err != nil {
			return err
		}
		if !webhook.EqualHex(r.Header.Get("X-Example-Signature"), Sign(cfg.Secret, ts, body)) {
			return webhook.ErrSignature
		}
		return nil
	}
	decode := func(_ *http.Request, body []byte) ([]bus.Outgoing, error) {
		var in inbound
		if err := json.Unmarshal(body, &in); err != nil || in.ID == "" || in.From == "" {
			return nil, fmt.Errorf("%w: want JSON {id, from, text, sent_at}", webhook.ErrMalformed)
		}
		from := map[string]string{"kind": "phone", "value": in.From}
		// A vendor clock far off (or a forged sent_at) must not date the message: out of
		// bounds, it is the time of receipt, and the vendor's is kept as vendor_time.
		at, original := connector.EventTime(in.SentAt, time.Now())
		data := map[string]any{
			"channel": "example", "channel_message_id": in.ID, "from": from,
			"message": map[string]any{"type": "text", "text": in.Text}, "sent_at": at,
		}
		if original != nil {
			data["vendor_time"] = original.Format(time.RFC3339Nano)
		}
		e, err := rt.NewEvent(TypeReceived, data, event.WithID("example:"+in.ID), event.WithPartitionKey("phone:"+in.From), event.WithTime(at))
		return []bus.Outgoing{{Subject: SubjectIn, Event: e}}, err
	}
	if err := rt.Webhook(connector.Webhook{Path: "/messages", Verify: verify, Decode: decode}); err != nil {
		return err
	}
	client := &http.Client{Timeout: 5 * time.Second}
	send := func(ctx context.Context, d bus.Delivery) error {
		var cmd struct {
			To             map[string]string `json:"to"`
			Message        json.RawMessage   `json:"message"`
			ConversationID string            `json:"conversation_id,omitempty"`
		}
		var text struct{ Text string }
		if err := event.DecodeData(d.Event, &cmd); err != nil || json.Unmarshal(cmd.Message, &text) != nil {
			return bus.Permanent(fmt.Errorf("undecodable send command: %w", err))
		}
		body, _ := json.Marshal(map[string]string{"to": cmd.To["value"], "text": text.Text, "ref": d.Event.ID()})
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, cfg.APIBase+"/send", bytes.NewReader(body))
		req.Header.Set("X-Example-Timestamp", ts)
		req.Header.Set("X-Example-Signature", Sign(cfg.Secret, ts, body))
		resp, err := client.Do(req)
		if err != nil {
			return err // transient: redelivered with backoff
		}
		defer resp.Body.Close()
		var out struct {
			MessageID string `json:"message_id"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		// The status carries what was sent, so the unifier records the outbound message.
		status := map[string]any{"channel": "example", "message_id": d.Event.ID(), "status": "sent", "at": time.Now().UTC(),
			"to": cmd.To, "message": cmd.Message}
		if cmd.ConversationID != "" {
			status["conversation_id"] = cmd.ConversationID
		}
		switch {
		case resp.StatusCode >= 500:
			return fmt.Errorf("vendor answered %d", resp.StatusCode)
		case resp.StatusCode >= 400:
			status["status"], status["error_code"] = "failed", strconv.Itoa(resp.StatusCode)
		case out.MessageID != "":
			status["vendor_message_id"] = out.MessageID
		}
		// Deterministic id: a redelivered command republishes the same status, stored once.
		st, err := rt.NewEvent(TypeStatus, status, event.WithID("example:status:"+d.Event.ID()),
			event.WithCorrelationID(d.Event.ID()), event.WithPartitionKey(event.PartitionKey(d.Event)))
		if err != nil {
			return bus.Permanent(err)
		}
		return rt.Publish(ctx, bus.Outgoing{Subject: SubjectState, Event: st})
	}
	return rt.Consume(ctx, RouteSend, send, bus.ConsumerConfig{})
}
