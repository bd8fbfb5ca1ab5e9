// Package payment is the payment tool connector: it answers omni.tool.payment.link.requested with
// a payment link the agent sends to the customer — omni.tool.payment.link.completed (the mobile
// link, the QR content, out_trade_no, amount, expiry) or .failed (the reason and a fallback for
// the agent) — and reports what the customer did with it on omni.tool.payment.status.changed
// (paid, closed, refunded).
//
// Providers (PAYMENT_PROVIDER, or the request's provider): Alipay — alipay.trade.precreate for the
// QR and a signed alipay.trade.wap.pay link for mobile browsers, RSA2 request signatures with the
// app private key, every synchronous answer verified with Alipay's public key over its raw text —
// and WeChat Pay API v3 — Native (code_url) and H5 orders, WECHATPAY2-SHA256-RSA2048
// Authorization, every answer's Wechatpay-Signature verified with the platform key named by its
// serial. The wire formats are pkg/wire/alipay and pkg/wire/wechatpay.
//
// Idempotence: out_trade_no derives from the request's id, and the order (amount, expiry) is
// stored in the payment_orders bucket before the provider is called, so a redelivered request
// re-sends the same order — which the providers dedupe by out_trade_no, making create safe to
// retry — and is answered with the same event id (payment:link:<request id>), stored once.
//
// Notifies (POST /hooks/payment/alipay, /hooks/payment/wechatpay): verified (rsaCheckV1; the
// Wechatpay-* headers within WECHATPAY_NOTIFY_WINDOW, a nonce used once), decrypted (WeChat's
// AEAD_AES_256_GCM resource), checked against the stored order (app/merchant, amount) and
// published as payment:status:<out_trade_no>:<status> before the provider is answered (Alipay's
// "success", WeChat's 204). Forged, replayed, tampered or unknown notifies get a 4xx and publish
// nothing. A sweep (PAYMENT_SWEEP) queries links whose notify is late and closes expired ones.
//
// Every provider call goes through its pkg/resilience route (alipay.precreate, alipay.query,
// alipay.close, wechatpay.native, wechatpay.h5, wechatpay.query, wechatpay.close): per-attempt
// timeout within PAYMENT_BUDGET, retries (all of them are idempotent by out_trade_no), breaker,
// rate limit and one masked audit record per call on omni.audit.payment.
package payment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/wire/alipay"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Event types and subjects.
const (
	TypeRequested     = schemas.TypeToolPaymentLinkRequested
	TypeCompleted     = schemas.TypeToolPaymentLinkCompleted
	TypeFailed        = schemas.TypeToolPaymentLinkFailed
	TypeStatusChanged = schemas.TypeToolPaymentStatusChanged
)

// Routes and the Spec.
var (
	RouteRequested     = connector.Route{Subject: TypeRequested, Type: TypeRequested}
	RouteCompleted     = connector.Route{Subject: TypeCompleted, Type: TypeCompleted}
	RouteFailed        = connector.Route{Subject: TypeFailed, Type: TypeFailed}
	RouteStatusChanged = connector.Route{Subject: TypeStatusChanged, Type: TypeStatusChanged}
	// Spec declares the connector.
	Spec = connector.Spec{
		Name:        "payment",
		Buckets:     []string{"payment_orders", "payment_nonces"},
		Description: "payment links: Alipay (precreate QR, wap.pay link) and WeChat Pay v3 (Native, H5), verified notifies turned into paid/closed status events",
		Consumes:    []connector.Route{RouteRequested},
		Produces:    append([]connector.Route{RouteCompleted, RouteFailed, RouteStatusChanged}, connector.ResilienceRoutes("payment")...),
	}
)

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setupWith(Options{})) }

// money is tool.defs.json's money.
type money struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

func cny(fen int64) money { return money{Value: alipay.FormatYuan(fen), Currency: "CNY"} }

// request is the data of omni.tool.payment.link.requested.
type request struct {
	ConversationID string `json:"conversation_id"`
	CustomerID     string `json:"customer_id,omitempty"`
	Amount         money  `json:"amount"`
	Description    string `json:"description"`
	OrderID        string `json:"order_id,omitempty"`
	Provider       string `json:"provider,omitempty"`
	AgentID        string `json:"agent_id,omitempty"`
}

// completed is the data of omni.tool.payment.link.completed.
type completed struct {
	ConversationID string    `json:"conversation_id,omitempty"`
	CustomerID     string    `json:"customer_id,omitempty"`
	Provider       string    `json:"provider"`
	URL            string    `json:"url"`
	QRCode         string    `json:"qr_code,omitempty"`
	Amount         money     `json:"amount"`
	PaymentID      string    `json:"payment_id,omitempty"`
	OutTradeNo     string    `json:"out_trade_no"`
	OrderID        string    `json:"order_id,omitempty"`
	ExpiresAt      time.Time `json:"expires_at"`
}

// failed is the data of omni.tool.payment.link.failed.
type failed struct {
	ConversationID string               `json:"conversation_id,omitempty"`
	CustomerID     string               `json:"customer_id,omitempty"`
	Provider       string               `json:"provider"`
	OutTradeNo     string               `json:"out_trade_no,omitempty"`
	ErrorCode      string               `json:"error_code,omitempty"`
	Error          string               `json:"error"`
	Fallback       *resilience.Fallback `json:"fallback,omitempty"`
}

// statusChanged is the data of omni.tool.payment.status.changed.
type statusChanged struct {
	ConversationID string    `json:"conversation_id,omitempty"`
	CustomerID     string    `json:"customer_id,omitempty"`
	Provider       string    `json:"provider"`
	OutTradeNo     string    `json:"out_trade_no"`
	TransactionID  string    `json:"transaction_id,omitempty"`
	OrderID        string    `json:"order_id,omitempty"`
	Status         string    `json:"status"`
	Amount         money     `json:"amount"`
	ChangedAt      time.Time `json:"changed_at"`
	Source         string    `json:"source,omitempty"`
}

// Statuses of status.changed and of stored orders.
const (
	StatusPending  = "pending"
	StatusPaid     = "paid"
	StatusClosed   = "closed"
	StatusRefunded = "refunded"
)

// link is what a provider created.
type link struct {
	URL, QRCode, PaymentID string
}

// outcome is what a provider learnt about an order (query, close, notify).
type outcome struct {
	Status        string // StatusPending, StatusPaid, StatusClosed, StatusRefunded
	TransactionID string
	Fen           int64
	At            time.Time
}

// provider is one payment provider behind its routes.
type provider interface {
	create(ctx context.Context, o order) (link, error)
	query(ctx context.Context, o order) (outcome, error)
	close(ctx context.Context, o order) error
	// check is the start check (check.go): nil, an error wrapping connector.ErrMisconfigured,
	// or the failure of a provider it could not reach.
	check(ctx context.Context) error
}

// Connector is the running connector. Tests build one with New and drive it through the bus.
type Connector struct {
	cfg       Config
	rt        *connector.Runtime
	providers map[string]provider
	orders    *orders
	nonces    *nonces
	now       func() time.Time
}

// setupWith is the connector's setup with o (tests set a clock).
func setupWith(o Options) connector.SetupFunc[Config] {
	return func(ctx context.Context, rt *connector.Runtime, cfg *Config) error { return setup(ctx, rt, cfg, o) }
}

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config, o Options) error {
	c, err := New(ctx, rt, *cfg, o)
	if err != nil {
		return err
	}
	// Before taking requests: each provider accepts the keys (check.go).
	if err := c.checkProviders(ctx); err != nil {
		return err
	}
	if err := c.mountWebhooks(); err != nil {
		return err
	}
	if cfg.Sweep > 0 {
		rt.Go(ctx, "payment-sweep", c.sweepLoop)
	}
	return rt.Consume(ctx, RouteRequested, c.Handle, bus.ConsumerConfig{
		Concurrency:   cfg.Concurrency,
		MaxAckPending: max(1024, cfg.Concurrency),
		AckWait:       cfg.Budget + 30*time.Second,
	})
}

// Options are the knobs tests set; production uses the zero value.
type Options struct {
	// HTTP is the providers' client. Default: 64 idle connections per host, no overall timeout
	// (every attempt is bounded by its route's timeout).
	HTTP *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// New builds the connector on rt: its state buckets and the providers configured.
func New(ctx context.Context, rt *connector.Runtime, cfg Config, o Options) (*Connector, error) {
	if o.HTTP == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		o.HTTP = &http.Client{Transport: tr}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	k, err := cfg.parseKeys()
	if err != nil {
		return nil, err
	}
	c := &Connector{cfg: cfg, rt: rt, providers: map[string]provider{}, now: o.Now}
	if c.orders, err = openOrders(ctx, rt, cfg.Expiry); err != nil {
		return nil, err
	}
	if c.nonces, err = openNonces(ctx, rt, cfg.WechatNotifyWindow); err != nil {
		return nil, err
	}
	reg, err := rt.Resilience()
	if err != nil {
		return nil, err
	}
	if cfg.alipayEnabled() {
		p, err := newAlipay(cfg, k, o, reg)
		if err != nil {
			return nil, err
		}
		c.providers[ProviderAlipay] = p
	}
	if cfg.wechatEnabled() {
		p, err := newWechat(cfg, k, o, reg)
		if err != nil {
			return nil, err
		}
		c.providers[ProviderWechatPay] = p
	}
	return c, nil
}

// OutTradeNo derives the merchant trade number of a request: OB + 29 hex digits of SHA-256 of
// its id (31 characters: with WeChat's H5 suffix within its 32, and within Alipay's 64).
func OutTradeNo(requestID string) string {
	h := sha256.Sum256([]byte(requestID))
	return "OB" + hex.EncodeToString(h[:])[:29]
}

// errNotConfigured fails requests for a provider without credentials.
var errNotConfigured = errors.New("provider not configured")

// Handle answers one request delivery with .completed or .failed.
func (c *Connector) Handle(ctx context.Context, d bus.Delivery) error {
	var req request
	if err := event.DecodeData(d.Event, &req); err != nil {
		return bus.Permanent(err)
	}
	prov := c.cfg.Provider
	if req.Provider != "" {
		prov = providerName(req.Provider)
	}
	o := order{OutTradeNo: OutTradeNo(d.Event.ID()), Provider: prov, RequestID: d.Event.ID(), ConversationID: req.ConversationID,
		CustomerID: req.CustomerID, OrderID: req.OrderID, Description: req.Description, PartitionKey: event.PartitionKey(d.Event)}
	fen, err := alipay.ParseYuan(req.Amount.Value)
	switch {
	case err != nil || fen <= 0:
		return c.answer(ctx, d.Event, o, link{}, bus.Permanent(fmt.Errorf("amount %q: want a positive yuan amount", req.Amount.Value)))
	case req.Amount.Currency != "CNY":
		return c.answer(ctx, d.Event, o, link{}, bus.Permanent(fmt.Errorf("currency %q: the providers take CNY only", req.Amount.Currency)))
	}
	o.Fen = fen
	p, ok := c.providers[prov]
	if !ok {
		return c.answer(ctx, d.Event, o, link{}, bus.Permanent(fmt.Errorf("%w: %s", errNotConfigured, prov)))
	}
	budget, cancel := context.WithTimeout(ctx, c.cfg.Budget)
	defer cancel()
	// The order is stored before the provider is asked: a notify may arrive before the answer,
	// and a redelivery re-sends the same order (same expiry) instead of a new one.
	now := c.now().UTC()
	o.CreatedAt, o.ExpiresAt, o.Status = now, now.Add(c.cfg.Expiry).Truncate(time.Second), StatusPending
	if o, err = c.orders.create(ctx, o); err != nil {
		return err // the bucket is down: redelivered
	}
	budget = resilience.WithCall(budget, resilience.Call{CustomerID: req.CustomerID, CorrelationID: d.Event.ID(), Key: o.OutTradeNo})
	l, err := p.create(budget, o)
	return c.answer(ctx, d.Event, o, l, err)
}

// answer publishes the request's result: .completed with l, or .failed with err's reason and
// the fallback.
func (c *Connector) answer(ctx context.Context, req event.Event, o order, l link, err error) error {
	opts := []event.Option{event.WithID("payment:link:" + req.ID()), event.WithCorrelationID(req.ID())}
	if o.ConversationID != "" {
		opts = append(opts, event.WithSubject(o.ConversationID))
	}
	if pk := event.PartitionKey(req); pk != "" {
		opts = append(opts, event.WithPartitionKey(pk))
	}
	var out bus.Outgoing
	if err == nil {
		e, eerr := c.rt.NewEvent(TypeCompleted, completed{ConversationID: o.ConversationID, CustomerID: o.CustomerID, Provider: o.Provider,
			URL: l.URL, QRCode: l.QRCode, Amount: cny(o.Fen), PaymentID: l.PaymentID, OutTradeNo: o.OutTradeNo, OrderID: o.OrderID,
			ExpiresAt: o.ExpiresAt}, opts...)
		if eerr != nil {
			return bus.Permanent(eerr)
		}
		out = bus.Outgoing{Subject: TypeCompleted, Event: e}
	} else {
		code, msg := describe(err)
		fb := resilience.FallbackOf(err)
		if fb == nil {
			fb = &resilience.Fallback{}
		}
		if fb.Note == "" {
			fb.Note = fallbackNote(err)
		}
		prov := o.Provider
		if !providerPattern.MatchString(prov) {
			prov = "unknown"
		}
		e, eerr := c.rt.NewEvent(TypeFailed, failed{ConversationID: o.ConversationID, CustomerID: o.CustomerID, Provider: prov,
			OutTradeNo: o.OutTradeNo, ErrorCode: code, Error: msg, Fallback: fb}, opts...)
		if eerr != nil {
			return bus.Permanent(eerr)
		}
		out = bus.Outgoing{Subject: TypeFailed, Event: e}
	}
	// The budget may be spent: publishing the answer gets its own bound.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return c.rt.Publish(pctx, out)
}

// providerPattern is common.defs.json's provider.
var providerPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// fallbackNote tells the agent what to do when no link could be made.
func fallbackNote(err error) string {
	if errors.Is(err, errNotConfigured) {
		return "该支付渠道未接入，请选择其他支付方式 / This payment provider is not set up: choose another."
	}
	return "支付渠道暂时不可用，请稍后重试，或引导客户通过其他方式付款 / The payment provider is unavailable: retry in a moment or offer the customer another way to pay."
}

// describe turns a failure into the failed event's error_code and error.
func describe(err error) (code, msg string) {
	msg = err.Error()
	if len(msg) > 2000 {
		msg = msg[:2000]
	}
	var fail *resilience.Error
	switch {
	case errors.Is(err, errNotConfigured):
		code = "not_configured"
	case errors.As(err, &fail):
		switch {
		case fail.VendorCode != "":
			code = fail.VendorCode
		case fail.Status != 0:
			code = fmt.Sprintf("http_%d", fail.Status)
		default:
			code = fail.Outcome
		}
	case errors.Is(err, context.DeadlineExceeded):
		code = "timeout"
	case bus.IsPermanent(err):
		code = "invalid_request"
	default:
		code = "unavailable"
	}
	return code, msg
}

// statusEvent is the status.changed event of o reaching out.Status.
func (c *Connector) statusEvent(o order, out outcome, source string) (bus.Outgoing, error) {
	at := out.At
	if at.IsZero() {
		at = c.now()
	}
	fen := out.Fen
	if fen == 0 {
		fen = o.Fen
	}
	opts := []event.Option{event.WithID("payment:status:" + o.OutTradeNo + ":" + out.Status), event.WithCorrelationID(o.RequestID)}
	if o.ConversationID != "" {
		opts = append(opts, event.WithSubject(o.ConversationID))
	}
	if o.PartitionKey != "" {
		opts = append(opts, event.WithPartitionKey(o.PartitionKey))
	}
	e, err := c.rt.NewEvent(TypeStatusChanged, statusChanged{ConversationID: o.ConversationID, CustomerID: o.CustomerID, Provider: o.Provider,
		OutTradeNo: o.OutTradeNo, TransactionID: out.TransactionID, OrderID: o.OrderID, Status: out.Status, Amount: cny(fen),
		ChangedAt: at.UTC(), Source: source}, opts...)
	return bus.Outgoing{Subject: TypeStatusChanged, Event: e}, err
}

// concurrently runs fns at once and returns their errors joined.
func concurrently(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, f := range fns {
		wg.Go(func() { errs[i] = f() })
	}
	wg.Wait()
	return errors.Join(errs...)
}
