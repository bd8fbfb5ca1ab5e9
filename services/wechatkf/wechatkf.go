// Package wechatkf is the WeChat Customer Service (微信客服, WeCom kf API) channel connector.
//
// Inbound: WeCom POSTs an encrypted, signed kf_msg_or_event callback to
// /hooks/wechatkf/callback; the connector checks it (WXBizMsgCrypt: msg_signature, AES-256-CBC,
// receive id = WECHATKF_CORP_ID), then pulls the kf account's new messages with kf/sync_msg from
// the cursor it keeps in a JetStream KV bucket, publishes each page as
// omni.channel.message.received on omni.in.wechatkf.message (event id wechatkf:<msgid>,
// partitionkey wecom_external_userid:<id>) and only then advances the cursor. GET on the same
// path answers WeCom's URL verification. See puller.go for the delivery guarantee and
// normalize.go for the mapping of every kf message type.
//
// Identity: from is the customer's wecom_external_userid. A customer who opened the kf link from
// the business's own app carries a scene_param; when it is "p.<E.164>.<MAC>" signed with
// WECHATKF_SCENE_KEY (see pkg/wire/wecom.SignScenePhone), the enter_session event also names the
// phone in identities. Any other scene_param stays in the event's detail and is trusted for
// nothing: anyone can edit a link.
//
// Outbound: omni.out.wechatkf.message.send commands become kf/send_msg calls; the outcome is
// published as omni.channel.message.status.updated on omni.in.wechatkf.status (see send.go).
// The access_token comes from a pkg/token cache, refreshed ahead of expiry and once more when
// WeCom rejects it (40014, 42001, 40001).
//
// Every WeCom API call goes through its pkg/resilience route, wecom.gettoken, wecom.sync_msg or
// wecom.send_msg (per-attempt timeout within the caller's budget, retries for gettoken and
// sync_msg only, breaker, bulkhead), with one audit record per call on omni.audit.wechatkf and
// omnibus_vendor_* metrics; see client.go.
package wechatkf

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/wire/wecom"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Channel is the omnibus channel name.
const Channel = "wechatkf"

// Event types, subjects and the Spec that declares them.
const (
	TypeReceived   = schemas.TypeChannelMessageReceived
	TypeSend       = schemas.TypeChannelMessageSendRequested
	TypeStatus     = schemas.TypeChannelMessageStatusUpdated
	SubjectMessage = "omni.in.wechatkf.message"
	SubjectStatus  = "omni.in.wechatkf.status"
	SubjectSend    = "omni.out.wechatkf.message.send"
	// CallbackPath is where WeCom's callbacks arrive (set it in the WeCom console as
	// https://<host>/hooks/wechatkf/callback).
	CallbackPath = "/hooks/wechatkf/callback"
)

var (
	RouteIn     = connector.Route{Subject: SubjectMessage, Type: TypeReceived}
	RouteStatus = connector.Route{Subject: SubjectStatus, Type: TypeStatus}
	RouteSend   = connector.Route{Subject: SubjectSend, Type: TypeSend}
	// Spec declares the connector. The audit records of its WeCom calls and the route alerts are
	// published by its resilience registry.
	Spec = connector.Spec{
		Name:        Channel,
		Buckets:     []string{"wechatkf"}, // WECHATKF_KV_BUCKET's default
		Description: "WeChat Customer Service (WeCom kf): encrypted callbacks + kf/sync_msg in, kf/send_msg out",
		Produces:    append([]connector.Route{RouteIn, RouteStatus}, connector.ResilienceRoutes(Channel)...),
		Consumes:    []connector.Route{RouteSend},
	}
)

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
	crypto, err := wecom.NewCrypto(cfg.Token, cfg.AESKey, cfg.CorpID)
	if err != nil {
		return err
	}
	reg, err := rt.Resilience()
	if err != nil {
		return err
	}
	api, err := newClient(cfg, reg, rt.Log)
	if err != nil {
		return err
	}
	// Before taking callbacks: WeCom gives the corp id and secret a token.
	if err := api.checkVendor(ctx, rt); err != nil {
		return err
	}
	kv, err := rt.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.KVBucket,
		Description: "wechatkf: kf/sync_msg cursor per kf account (key cursor.<open_kfid>)",
		History:     5,
		Replicas:    cfg.KVReplicas,
	})
	if err != nil {
		return fmt.Errorf("cursor bucket %s: %w", cfg.KVBucket, err)
	}
	norm := &normalizer{rt: rt, source: rt.Source(), sceneKey: []byte(cfg.SceneKey), schemas: rt.Bus.Schemas(), log: rt.Log, now: time.Now}
	p := newPuller(api, kv, norm, rt.Publish, cfg.SyncLimit, rt.Log)
	cb := &callbacks{crypto: crypto, puller: p, window: cfg.Window, budget: cfg.CallbackBudget, log: rt.Log, now: time.Now}
	if err := rt.Handle("GET "+CallbackPath, http.HandlerFunc(cb.verifyURL)); err != nil {
		return err
	}
	if err := rt.Handle("POST "+CallbackPath, http.HandlerFunc(cb.notice)); err != nil {
		return err
	}
	rt.Go(ctx, "sync_msg", func(ctx context.Context) error { return p.run(ctx, cfg.OpenKfID) })
	s := &sender{api: api, openKfID: cfg.OpenKfID, source: rt.Source(), publish: rt.Publish, log: rt.Log}
	return rt.Consume(ctx, RouteSend, s.handle, bus.ConsumerConfig{})
}
