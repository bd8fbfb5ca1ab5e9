// Package sms is the SMS channel connector, with two providers: Aliyun SMS (Dysmsapi 2017-05-25,
// V3 ACS3-HMAC-SHA256 signed) and Tencent Cloud SMS (sms 2021-01-11, TC3-HMAC-SHA256 signed).
// SMS_PROVIDER chooses the one every send goes through; with the other provider configured too,
// a canary rollout (pkg/canary, target "sms": SMS_CANARY=tencent:10% or the operator's
// omni.ops.canary.set.requested on omni.ops.canary.set.sms) sends a stable share of the
// customers through it, tracks both providers' failures and latency from the resilience
// outcomes and rolls back to SMS_PROVIDER when the candidate fails more. Wire formats and
// signatures live in pkg/wire/aliyun and pkg/wire/tencent, shared with the sandbox simulators.
//
// Inbound, the vendor pushes to /hooks/sms/<provider>/<kind>:
//
//	aliyun:  POST /hooks/sms/aliyun/up       SmsUp batch (JSON array)      → omni.channel.message.received on omni.in.sms.message
//	         POST /hooks/sms/aliyun/report   SmsReport batch (JSON array)  → omni.channel.message.status.updated on omni.in.sms.status
//	tencent: POST /hooks/sms/tencent/reply   reply callback (JSON object)  → omni.channel.message.received
//	         POST /hooks/sms/tencent/status  status callback (JSON array)  → omni.channel.message.status.updated
//
// Neither vendor signs its pushes, so the webhooks check what the operator can configure: a
// token in the push URL (?token=SMS_WEBHOOK_TOKEN) and/or the source address
// (SMS_WEBHOOK_ALLOW_IPS). A push of any size is published 1,000 events at a time
// (connector.Webhook publishes with PublishChunks); the vendor gets its documented acknowledgement
// ({"code":0,"msg":"接收成功"}, {"result":0,"errmsg":"OK"}) only after JetStream acked every
// event, else a 5xx and it pushes again. Event ids derive from the vendor's ids, so a repeated
// item is stored once (JetStream's duplicate window, and beyond it the state bucket, read and
// written in batches). Numbers become E.164 phone identities, partition key phone:<E.164>. An
// event's time is the vendor's, unless a wrong clock puts it out of bounds
// (connector.DefaultTimeWindow): then it is the time the push arrived, the vendor's kept as
// vendor_time.
//
// Outbound, omni.out.sms.message.send commands become one SendSms call each, to the number of
// the command's phone identity, from the command's account (the SMS sign) or the configured
// one. SMS in China is template-based: the agent's text fills the single variable of one
// approved template (Aliyun: TemplateParam {"<SMS_ALIYUN_TEMPLATE_PARAM>": text}; Tencent:
// TemplateParamSet [text]). The outcome is an omni.channel.message.status.updated, id
// sms:status:<command id>:<status>: "sent" with the vendor id, or "failed" with the vendor
// code when the vendor rejected the message. Throttling and outages are retried through the
// bus's backoff (SMS_SEND_BACKOFF, SMS_SEND_MAX_DELIVER); a wrong credential dead-letters the
// command with the reason. Every call goes through the resilience route <provider>.send_sms
// (rate limit, breaker, timeout, a masked audit record on omni.audit.sms; see provider.go). Delivery receipts then report "delivered" or "failed" for the same
// message id. Every status names the provider that sent the message (provider).
package sms

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/canary"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	aliwire "github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
	tcwire "github.com/omnibus-dev/omnibus/pkg/wire/tencent"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Channel is the omnibus channel name.
const Channel = "sms"

// Event types, subjects, routes and the Spec that declares them.
const (
	TypeReceived  = schemas.TypeChannelMessageReceived
	TypeSend      = schemas.TypeChannelMessageSendRequested
	TypeStatus    = schemas.TypeChannelMessageStatusUpdated
	SubjectIn     = "omni.in.sms.message"
	SubjectStatus = "omni.in.sms.status"
	SubjectOut    = "omni.out.sms.message.send"
)

var (
	RouteIn     = connector.Route{Subject: SubjectIn, Type: TypeReceived}
	RouteStatus = connector.Route{Subject: SubjectStatus, Type: TypeStatus}
	RouteSend   = connector.Route{Subject: SubjectOut, Type: TypeSend}
	// RouteCanary carries the operator's rollout commands for the SMS providers.
	RouteCanary = connector.Route{Subject: canary.SubjectSet(Channel), Type: canary.TypeSet}
	Spec        = connector.Spec{
		Name:        Channel,
		Buckets:     []string{Bucket, canary.BucketName},
		Description: "SMS through Aliyun or Tencent Cloud (or both, in a canary rollout): uplinks and receipts pushed in, template sends out",
		Produces:    append(append([]connector.Route{RouteIn, RouteStatus}, connector.ResilienceRoutes(Channel)...), canaryRoutes()...),
		Consumes:    []connector.Route{RouteSend, RouteCanary},
	}
)

func canaryRoutes() []connector.Route {
	var out []connector.Route
	for _, r := range canary.Produces() {
		out = append(out, connector.Route{Subject: r.Subject, Type: r.Type})
	}
	return out
}

// Limits of one vendor push. Aliyun pushes receipts and uplinks as JSON arrays of any length
// (thousands of items after a bulk send); neither SMS vendor documents how long it waits for the
// answer — shared/vendors/README.md §4.4: "a non-200 status or a timeout triggers re-push after
// 1 min, 5 min and 10 min", §5.3 gives no figure — while every push vendor there that does gives
// 5 s: WeCom "answer within 5 s, otherwise WeCom retries" (§1.2), the Official Account "answer
// within 5 s" (§2.1), Douyin "the connection is dropped after 5 s" (§3.1), Weibo "respond within
// 5 s" (part2-voice-ai-channels.md). The connector answers within that: a push waits at most
// waitBudget (0.5 s) for receipts that overtook its own bookkeeping, pushPublishTimeout (3 s) for
// JetStream and markTimeout (1 s) for its de-duplication marks, each step one batched round trip
// per 1,000 items; a 5,000-item push is answered in well under a second (BenchmarkPush5000). A
// push that cannot be stored in time gets a 503 and the vendor pushes it again.
const (
	// pushMaxBody caps a push: about 25,000 receipts or 50,000 uplinks.
	pushMaxBody = 8 << 20
	// pushPublishTimeout bounds the wait for JetStream's acks of a push's events.
	pushPublishTimeout = 3 * time.Second
)

// markTimeout bounds recording a push's event ids in the state (in.*), after JetStream stored
// the events and before the vendor is answered; a failure only weakens de-duplication past
// JetStream's duplicate window. Tests that check the marks, not their timing, lengthen it.
var markTimeout = time.Second

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

// conn is a running connector.
type conn struct {
	rt     *connector.Runtime
	cfg    *Config
	st     *state
	provs  map[string]provider // by provider name: SMS_PROVIDER and the other one when configured
	canary *canary.Rollout
	allow  []netip.Prefix
	now    func() time.Time
}

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
	st, err := openState(ctx, rt, rt.Bus.JetStream(), cfg.StateTTL, rt.Log)
	if err != nil {
		return err
	}
	c := &conn{rt: rt, cfg: cfg, st: st, now: time.Now}
	for _, a := range cfg.WebhookAllowIPs {
		p, _ := parsePrefix(a) // checked by Validate
		c.allow = append(c.allow, p)
	}
	reg, err := rt.Resilience()
	if err != nil {
		return err
	}
	type hook struct {
		path   string
		decode func(context.Context, []byte) ([]bus.Outgoing, error)
		ack    any
	}
	var hooks []hook
	c.provs = map[string]provider{}
	for _, p := range cfg.Variants() {
		var v vendor
		switch p {
		case ProviderAliyun:
			v = &aliyun{cfg: cfg.Aliyun, base: cfg.Aliyun.APIBase, now: time.Now}
			hooks = append(hooks, hook{"/aliyun/up", c.decodeAliyunUp, aliwire.PushOK}, hook{"/aliyun/report", c.decodeAliyunReport, aliwire.PushOK})
		case ProviderTencent:
			v = &tencent{cfg: cfg.Tencent, base: cfg.Tencent.APIBase, now: time.Now}
			hooks = append(hooks, hook{"/tencent/reply", c.decodeTencentReply, tcwire.CallbackOK}, hook{"/tencent/status", c.decodeTencentStatus, tcwire.CallbackOK})
		default:
			return fmt.Errorf("unknown provider %q", p) // Validate rejects it first
		}
		rs, err := newResilientSend(reg, p, v, cfg.Timeout)
		if err != nil {
			return err
		}
		// Before taking commands: the vendor accepts the credentials and the signature.
		if err := rs.check(ctx, rt); err != nil {
			return err
		}
		c.provs[p] = rs
	}
	kv, err := rt.KeyValue(ctx, canary.KVConfig)
	if err != nil {
		return fmt.Errorf("sms canary bucket: %w", err)
	}
	c.canary, err = canary.Start(ctx, canary.Options{Target: Channel, Service: Channel, Source: rt.Source(), Baseline: cfg.Provider,
		Variants: cfg.Variants(), Config: cfg.Canary, Publish: rt.Publish, KV: kv, Log: rt.Log})
	if err != nil {
		return fmt.Errorf("SMS_CANARY: %w", err)
	}
	rt.Go(ctx, "canary", func(ctx context.Context) error {
		<-ctx.Done()
		c.canary.Close()
		return nil
	})
	for _, h := range hooks {
		err := rt.Webhook(connector.Webhook{
			Path:           h.path,
			MaxBody:        pushMaxBody,
			PublishTimeout: pushPublishTimeout,
			Verify:         c.verify,
			Decode: func(r *http.Request, body []byte) ([]bus.Outgoing, error) {
				return h.decode(r.Context(), body)
			},
			Respond: func(w http.ResponseWriter, r *http.Request, published []bus.Outgoing) {
				ids := make([]string, len(published))
				for i, o := range published {
					ids[i] = o.Event.ID()
				}
				ctx, cancel := context.WithTimeout(r.Context(), markTimeout)
				c.st.markSeen(ctx, ids)
				cancel()
				webhook.WriteJSON(w, http.StatusOK, h.ack)
			},
		})
		if err != nil {
			return err
		}
	}
	if err := rt.Consume(ctx, RouteCanary, c.canary.HandleCommand, bus.ConsumerConfig{}); err != nil {
		return err
	}
	return rt.Consume(ctx, RouteSend, c.handleSend, bus.ConsumerConfig{MaxDeliver: cfg.SendMaxDeliver, Backoff: cfg.backoff})
}
