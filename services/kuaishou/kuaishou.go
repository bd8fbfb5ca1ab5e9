// Package kuaishou is the Kuaishou open platform (快手开放平台) channel connector, built on the
// platform's documented webhook; its private messages are not publicly documented (see
// message.go and the README).
//
// Inbound: Kuaishou POSTs the app's webhook events to /hooks/kuaishou/webhook as JSON, signed
// with the kwaisign header = hex MD5(raw body + app secret) (see pkg/wire/kuaishou), and retries
// an event (3 times at 5 s intervals; a mini-program SDK says up to 16 times) until the answer
// is {"result":1}. An event is refused with 401 when kwaisign is wrong or missing, with 400 when
// it is not an event, names another app (KUAISHOU_APP_KEY) or is a message event whose data is
// not a message, with 413 over 64 KiB. The TEST event sent when the URL is saved, the
// authorisation events and any other event are acknowledged and not published. The event named
// KUAISHOU_MESSAGE_EVENT becomes omni.channel.message.received on omni.in.kuaishou.message
// (from = kuaishou_openid:<from_user_id>, partition key the same), acknowledged only once
// JetStream stored it; a JetStream failure or KUAISHOU_PUSH_BUDGET elapsing is a 503 and
// Kuaishou retries. The event id is kuaishou:<msg_id>, and the ids stored in the last 24 h are
// kept in the bucket <KUAISHOU_KV_BUCKET>_seen, so a retry is stored once however late.
//
// Outbound: Kuaishou publishes no send API for private messages. omni.out.kuaishou.message.send
// commands are answered at once with omni.channel.message.status.updated on
// omni.in.kuaishou.status, failed with error_code not_supported, so the desk shows why and the
// agent can answer on another channel of the same customer.
package kuaishou

import (
	"context"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Channel is the omnibus channel name.
const Channel = "kuaishou"

// IdentityKind is the kind of a user's identity: the user's open_id towards the app.
const IdentityKind = "kuaishou_openid"

// Event types, subjects and the Spec that declares them.
const (
	TypeReceived   = schemas.TypeChannelMessageReceived
	TypeSend       = schemas.TypeChannelMessageSendRequested
	TypeStatus     = schemas.TypeChannelMessageStatusUpdated
	SubjectMessage = "omni.in.kuaishou.message"
	SubjectStatus  = "omni.in.kuaishou.status"
	SubjectSend    = "omni.out.kuaishou.message.send"
	// WebhookPath is the URL to register in the open platform's webhook settings
	// (https://<host>/hooks/kuaishou/webhook).
	WebhookPath = "/hooks/kuaishou/webhook"
)

var (
	RouteIn     = connector.Route{Subject: SubjectMessage, Type: TypeReceived}
	RouteStatus = connector.Route{Subject: SubjectStatus, Type: TypeStatus}
	RouteSend   = connector.Route{Subject: SubjectSend, Type: TypeSend}
	// Spec declares the connector. It calls no Kuaishou API (none is documented for messages).
	Spec = connector.Spec{
		Name:        Channel,
		Buckets:     []string{"kuaishou_seen"}, // KUAISHOU_KV_BUCKET's default
		Description: "Kuaishou open platform: kwaisign-signed webhook events in; sends answered not_supported (no public send API)",
		Produces:    []connector.Route{RouteIn, RouteStatus},
		Consumes:    []connector.Route{RouteSend},
	}
)

// seenTTL is how long a stored message id is remembered: past Kuaishou's retries.
const seenTTL = 24 * time.Hour

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
	seen, err := rt.Seen(ctx, cfg.KVBucket+"_seen", seenTTL, cfg.KVReplicas)
	if err != nil {
		return err
	}
	cb := &callback{cfg: cfg, rt: rt, seen: seen, now: time.Now}
	if err := rt.Webhook(connector.Webhook{Path: "/webhook", MaxBody: maxEventBody, Verify: cb.verify,
		Decode: cb.decode, Respond: cb.respond, PublishTimeout: cfg.PushBudget}); err != nil {
		return err
	}
	return rt.Consume(ctx, RouteSend, func(ctx context.Context, d bus.Delivery) error { return notSupported(ctx, rt, d) }, bus.ConsumerConfig{})
}

// notSupported answers a send command: failed, not_supported.
func notSupported(ctx context.Context, rt *connector.Runtime, d bus.Delivery) error {
	_, st, err := connector.DecodeSend(Channel, d)
	if err != nil {
		return err
	}
	st.Fail("not_supported", "Kuaishou publishes no API to send private messages; answer the customer on another channel")
	return rt.ReportSend(ctx, SubjectStatus, d, st)
}
