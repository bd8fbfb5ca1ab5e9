// Package weibo is the Weibo fan service platform (粉丝服务平台) channel connector.
//
// Inbound: Weibo verifies the callback URL with GET /hooks/weibo/callback?signature&timestamp&
// nonce&echostr and POSTs every private message and event there as JSON with the same signed
// query (signature = hex SHA-1 of the sorted app secret, timestamp in milliseconds and nonce;
// see pkg/wire/weibo). A push is refused with 401 when its signature is wrong, its timestamp is
// outside WEIBO_SIGNATURE_WINDOW or its nonce was already used for another body; with 400 when
// it is not a push; with 413 over 64 KiB. A nonce is bound to its body across replicas by the KV
// bucket <WEIBO_KV_BUCKET>_nonces (see callback). A valid push becomes omni.channel.message.received on
// omni.in.weibo.message (from = weibo_uid:<sender_id>, partition key the same, account = the
// receiving account's uid) and is answered 200 with an empty body (Weibo: no passive reply, no
// retry) only once JetStream stored it; a JetStream failure or WEIBO_PUSH_BUDGET elapsing is a
// 503 and Weibo retries (3 times within its 5 s deadline each). Weibo gives no message id: the
// event id is weibo:<sender_id>:<created_at Unix seconds>:<hash of type, text and data>, so a
// retried push is stored once. Unknown types and event subtypes are acknowledged and dropped,
// as Weibo's documentation asks.
//
// The reply window: Weibo accepts replies for 48 h after a fan's message, follow, subscription,
// menu click or QR scan, and none after an unfollow. The connector keeps each fan's last such
// time in the JetStream KV bucket WEIBO_KV_BUCKET (key uid.<sender_id>), written before the push
// is published.
//
// Outbound: omni.out.weibo.message.send commands to a weibo_uid become messages/reply.json
// calls (text only: the API's other types are articles and positions) through the weibo.reply
// resilience route (300 ms per attempt, retried only when the request provably never left,
// breaker, masked audit record on omni.audit.weibo). The outcome is
// omni.channel.message.status.updated on omni.in.weibo.status: sent; failed with error_code
// outside_window (no message within 48 h, or unfollowed), invalid_recipient,
// unsupported_message, text_too_long, or Weibo's error_code when it refuses the reply.
package weibo

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Channel is the omnibus channel name.
const Channel = "weibo"

// IdentityKind is the kind of a fan's identity: the Weibo uid, a decimal int64.
const IdentityKind = "weibo_uid"

// Event types, subjects and the Spec that declares them.
const (
	TypeReceived   = schemas.TypeChannelMessageReceived
	TypeSend       = schemas.TypeChannelMessageSendRequested
	TypeStatus     = schemas.TypeChannelMessageStatusUpdated
	SubjectMessage = "omni.in.weibo.message"
	SubjectStatus  = "omni.in.weibo.status"
	SubjectSend    = "omni.out.weibo.message.send"
	// CallbackPath is the URL to register in the fan service platform's developer mode
	// (https://<host>/hooks/weibo/callback).
	CallbackPath = "/hooks/weibo/callback"
)

var (
	RouteIn     = connector.Route{Subject: SubjectMessage, Type: TypeReceived}
	RouteStatus = connector.Route{Subject: SubjectStatus, Type: TypeStatus}
	RouteSend   = connector.Route{Subject: SubjectSend, Type: TypeSend}
	// Spec declares the connector. The audit records of its Weibo calls and the route alerts are
	// published by its resilience registry.
	Spec = connector.Spec{
		Name:        Channel,
		Buckets:     []string{"weibo", "weibo_nonces"}, // WEIBO_KV_BUCKET's default
		Description: "Weibo fan service platform: signed JSON pushes in, messages/reply.json out within the 48 h window",
		Produces:    append([]connector.Route{RouteIn, RouteStatus}, connector.ResilienceRoutes(Channel)...),
		Consumes:    []connector.Route{RouteSend},
	}
)

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
	kv, err := rt.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.KVBucket,
		Description: "weibo: each fan's last message time, for the 48 h reply window (key uid.<uid>)",
		History:     1,
		Replicas:    cfg.KVReplicas,
	})
	if err != nil {
		return fmt.Errorf("reply-window bucket %s: %w", cfg.KVBucket, err)
	}
	win := &windows{kv: kv}
	shared, err := rt.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.KVBucket + "_nonces",
		Description: "weibo: the callback nonces of the signature window, each bound to its body's SHA-256",
		History:     1,
		TTL:         2 * cfg.Window,
		Replicas:    cfg.KVReplicas,
	})
	if err != nil {
		return fmt.Errorf("nonce bucket %s_nonces: %w", cfg.KVBucket, err)
	}
	cb := &callback{secret: cfg.AppSecret, window: cfg.Window, nonces: newNonces(2 * cfg.Window), shared: shared,
		rt: rt, windows: win, now: time.Now}
	if err := rt.Handle("GET "+CallbackPath, http.HandlerFunc(cb.verifyURL)); err != nil {
		return err
	}
	if err := rt.Webhook(connector.Webhook{Path: "/callback", MaxBody: maxPushBody, Verify: cb.verify, Decode: cb.decode,
		Respond: cb.respond, PublishTimeout: cfg.PushBudget}); err != nil {
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
