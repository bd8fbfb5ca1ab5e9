// Package douyin is the Douyin (抖音开放平台) enterprise-account private-message channel connector.
//
// Inbound: Douyin POSTs every webhook event of the app to /hooks/douyin/webhook as JSON, signed
// with X-Douyin-Signature = hex SHA-1(client_secret + raw body) (see pkg/wire/douyin). An event
// is refused with 401 when the signature is wrong or missing, with 400 when it is not an event or
// names another app's client_key, with 413 over 64 KiB. The console's URL check (verify_webhook)
// is answered {"challenge":<the same number>}. im_receive_msg (a user wrote to the account)
// becomes omni.channel.message.received on omni.in.douyin.message (from = douyin_openid:<the
// user's open_id>, partition key the same, account = the account's open_id) and is answered 200
// only once JetStream stored it; a JetStream failure or DOUYIN_PUSH_BUDGET elapsing is a 503 and
// Douyin retries (3 times). The event id is douyin:<server_message_id>, and the ids stored in the
// last 24 h are kept in the bucket <DOUYIN_KV_BUCKET>_seen, so a retry is stored once however
// late it comes. Text, image, video and card messages are mapped (normalize.go); other message
// types become "unsupported" with the raw content; other events (im_send_msg, the account's own
// sends echoed; im_enter_direct_msg; authorisations) are acknowledged and dropped.
//
// The reply window: Douyin accepts replies to a user's message for DOUYIN_REPLY_WINDOW (24 h)
// and at most DOUYIN_REPLY_QUOTA (6) of them before the user writes again; a reply names the
// message it answers and its conversation. The connector keeps each user's last message (its id,
// conversation, time, the account) and the replies since in the JetStream KV bucket
// DOUYIN_KV_BUCKET, written before the message is published.
//
// Outbound: omni.out.douyin.message.send commands to a douyin_openid become /im/send/msg/ calls
// (text only) through the douyin.send resilience route (300 ms per attempt, retried only when the
// request provably never left, breaker, masked audit record on omni.audit.douyin). The outcome
// is omni.channel.message.status.updated on omni.in.douyin.status: sent; failed with error_code
// outside_window (no message on record, or the last one older than the window), quota_exceeded
// (the replies since the user's last message used up), invalid_recipient, unsupported_message,
// text_too_long, or Douyin's error_code when it refuses the reply (its window and quota codes
// are reported as outside_window and quota_exceeded too).
package douyin

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Channel is the omnibus channel name.
const Channel = "douyin"

// IdentityKind is the kind of a user's identity: the user's open_id towards the app.
const IdentityKind = "douyin_openid"

// Event types, subjects and the Spec that declares them.
const (
	TypeReceived   = schemas.TypeChannelMessageReceived
	TypeSend       = schemas.TypeChannelMessageSendRequested
	TypeStatus     = schemas.TypeChannelMessageStatusUpdated
	SubjectMessage = "omni.in.douyin.message"
	SubjectStatus  = "omni.in.douyin.status"
	SubjectSend    = "omni.out.douyin.message.send"
	// WebhookPath is the URL to register in the open platform console's webhook settings
	// (https://<host>/hooks/douyin/webhook).
	WebhookPath = "/hooks/douyin/webhook"
)

var (
	RouteIn     = connector.Route{Subject: SubjectMessage, Type: TypeReceived}
	RouteStatus = connector.Route{Subject: SubjectStatus, Type: TypeStatus}
	RouteSend   = connector.Route{Subject: SubjectSend, Type: TypeSend}
	// Spec declares the connector. The audit records of its Douyin calls and the route alerts
	// are published by its resilience registry.
	Spec = connector.Spec{
		Name:        Channel,
		Buckets:     []string{"douyin", "douyin_seen"}, // DOUYIN_KV_BUCKET's default
		Description: "Douyin enterprise-account private messages: signed webhook events in, /im/send/msg/ out within the reply window and quota",
		Produces:    append([]connector.Route{RouteIn, RouteStatus}, connector.ResilienceRoutes(Channel)...),
		Consumes:    []connector.Route{RouteSend},
	}
)

// seenTTL is how long a stored message id is remembered: past Douyin's retries (3, within
// minutes), well inside the reply window.
const seenTTL = 24 * time.Hour

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
	kv, err := rt.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.KVBucket,
		Description: "douyin: each user's last message and the replies since, for the reply window and quota (key u.<hash of open_id>)",
		History:     1,
		Replicas:    cfg.KVReplicas,
	})
	if err != nil {
		return fmt.Errorf("reply-window bucket %s: %w", cfg.KVBucket, err)
	}
	seen, err := rt.Seen(ctx, cfg.KVBucket+"_seen", seenTTL, cfg.KVReplicas)
	if err != nil {
		return err
	}
	win := &windows{kv: kv, window: cfg.ReplyWindow, quota: cfg.ReplyQuota}
	cb := &callback{cfg: cfg, rt: rt, windows: win, seen: seen, now: time.Now}
	if err := rt.Webhook(connector.Webhook{Path: "/webhook", MaxBody: maxEventBody, Verify: cb.verify, Answer: cb.answer,
		Decode: cb.decode, Respond: cb.respond, PublishTimeout: cfg.PushBudget}); err != nil {
		return err
	}
	reg, err := rt.Resilience()
	if err != nil {
		return err
	}
	s, err := newSender(cfg, reg, win, rt)
	if err != nil {
		return err
	}
	return rt.Consume(ctx, RouteSend, s.handle, bus.ConsumerConfig{})
}
