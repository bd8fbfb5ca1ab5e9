// Package example is the connector template; copy this folder to start a connector. Its vendor
// POSTs {"id","from","text","sent_at"} to /hooks/example/messages with X-Example-Timestamp (Unix
// seconds) and X-Example-Signature = hex(HMAC-SHA256(secret, timestamp + "." + body)); sends go
// to POST {EXAMPLE_API_BASE}/send, signed the same way, and answer {"message_id"}; the vendor
// keeps one message per ref, so a send may be retried.
package example

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Event types, subjects, routes and the Spec that declares them.
const (
	TypeReceived = schemas.TypeChannelMessageReceived
	TypeSend     = schemas.TypeChannelMessageSendRequested
	TypeStatus   = schemas.TypeChannelMessageStatusUpdated
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
		// The resilience routes carry the audit record of every vendor call and the route alerts.
		Produces: append([]connector.Route{RouteIn, RouteStatus}, connector.ResilienceRoutes("example")...),
		Consumes: []connector.Route{RouteSend},
	}
)

// Config is read from the environment.
type Config struct {
	Secret  string        `env:"EXAMPLE_SECRET" enable:"true" desc:"shared HMAC secret of the example vendor (required)"`
	APIBase string        `env:"EXAMPLE_API_BASE" desc:"example vendor API base URL (required; the example vendor is the all-in-one's sandbox: http://127.0.0.1:8080/sandbox/example)"`
	Window  time.Duration `env:"EXAMPLE_SIGNATURE_WINDOW" default:"5m" desc:"accepted clock skew of webhook timestamps"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Secret == "" || c.APIBase == "" {
		return fmt.Errorf("EXAMPLE_SECRET and EXAMPLE_API_BASE are required")
	}
	return nil
}

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

// Sign returns the vendor signature of body at ts (also used by the vendor simulator).
func Sign(secret, ts string, b []byte) string {
	return webhook.HMACSHA256Hex([]byte(secret), []byte(ts+"."), b)
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
		// A vendor clock far off (or a forged sent_at) must not date the message: out of
		// bounds, it is the time of receipt, and the vendor's is kept as vendor_time.
		at, original := connector.EventTime(in.SentAt, time.Now())
		data := received{Channel: "example", ChannelMessageID: in.ID, From: identity{"phone", in.From},
			Message: text{"text", in.Text}, SentAt: at}
		if original != nil {
			data.VendorTime = original.Format(time.RFC3339Nano)
		}
		e, err := rt.NewEvent(TypeReceived, data, event.WithID("example:"+in.ID), event.WithPartitionKey("phone:"+in.From), event.WithTime(at))
		return []bus.Outgoing{{Subject: SubjectIn, Event: e}}, err
	}
	if err := rt.Webhook(connector.Webhook{Path: "/messages", Verify: verify, Decode: decode}); err != nil {
		return err
	}
	// Every send goes through a resilience route: rate limit, breaker, per-attempt timeout,
	// retries (the vendor dedupes by ref) and one masked audit record on omni.audit.example.
	reg, err := rt.Resilience()
	if err != nil {
		return err
	}
	route, err := reg.Route(resilience.RouteSpec{Vendor: "example", Op: "send", Idempotent: true,
		Settings: resilience.Settings{RateLimit: 50}})
	if err != nil {
		return err
	}
	send := func(ctx context.Context, d bus.Delivery) error {
		var cmd sendCommand
		var msg text
		if err := event.DecodeData(d.Event, &cmd); err != nil {
			return bus.Permanent(fmt.Errorf("undecodable send command: %w", err))
		}
		if err := json.Unmarshal(cmd.Message, &msg); err != nil || msg.Type != "text" {
			return bus.Permanent(fmt.Errorf("example sends text messages only, not %s", cmd.Message))
		}
		body, err := json.Marshal(vendorSend{To: cmd.To.Value, Text: msg.Text, Ref: d.Event.ID()})
		if err != nil {
			return bus.Permanent(err)
		}
		var out sent
		_, err = route.HTTP(ctx, resilience.Call{CorrelationID: d.Event.ID(), Key: d.Event.ID()}, func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.APIBase+"/send", bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			ts := strconv.FormatInt(time.Now().Unix(), 10) // signed afresh for every attempt
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Example-Timestamp", ts)
			req.Header.Set("X-Example-Signature", Sign(cfg.Secret, ts, body))
			return req, nil
		}, &out)
		// The status carries what was sent, so the unifier records the outbound message.
		st := status{Channel: "example", MessageID: d.Event.ID(), VendorMessageID: out.MessageID, Status: "sent",
			At: time.Now().UTC(), To: cmd.To, Message: cmd.Message, ConversationID: cmd.ConversationID}
		var failed *resilience.Error
		switch {
		case errors.As(err, &failed) && bus.IsPermanent(err): // the vendor refused it (4xx): say so
			st.Status, st.ErrorCode = "failed", failed.Code()
		case err != nil:
			return err // transient: redelivered with backoff, or when the vendor or breaker says
		}
		// Deterministic id: a redelivered command republishes the same status, stored once.
		e, err := rt.NewEvent(TypeStatus, st, event.WithID("example:status:"+d.Event.ID()),
			event.WithCorrelationID(d.Event.ID()), event.WithPartitionKey(event.PartitionKey(d.Event)))
		if err != nil {
			return bus.Permanent(err)
		}
		return rt.Publish(ctx, bus.Outgoing{Subject: SubjectState, Event: e})
	}
	return rt.Consume(ctx, RouteSend, send, bus.ConsumerConfig{})
}
