package payment

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/pkg/wire/alipay"
	"github.com/omnibus-dev/omnibus/pkg/wire/wechatpay"
)

// notifyMaxBody caps a notify (Alipay's forms and WeChat's JSON are a few KiB).
const notifyMaxBody = 64 << 10

// mountWebhooks mounts POST /hooks/payment/alipay and /hooks/payment/wechatpay for the providers
// configured. Each notify is verified, checked against its stored order and published before
// the provider is answered; a refusal is a 4xx with the reason and publishes nothing.
func (c *Connector) mountWebhooks() error {
	if _, ok := c.providers[ProviderAlipay]; ok {
		if err := c.rt.Webhook(connector.Webhook{Path: "/" + ProviderAlipay, MaxBody: notifyMaxBody, Verify: c.verifyAlipay,
			Decode: c.decodeAlipay, Respond: c.respond(func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/plain;charset=utf-8")
				_, _ = w.Write([]byte(alipay.NotifyAck))
			})}); err != nil {
			return err
		}
	}
	if _, ok := c.providers[ProviderWechatPay]; ok {
		return c.rt.Webhook(connector.Webhook{Path: "/" + ProviderWechatPay, MaxBody: notifyMaxBody, Verify: c.verifyWechat,
			Decode: c.decodeWechat, Respond: c.respond(func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) })})
	}
	return nil
}

// respond answers the provider once the status event is stored, after marking the order.
func (c *Connector) respond(ack func(w http.ResponseWriter)) func(http.ResponseWriter, *http.Request, []bus.Outgoing) {
	return func(w http.ResponseWriter, r *http.Request, published []bus.Outgoing) {
		for _, o := range published {
			var d statusChanged
			if event.DecodeData(o.Event, &d) == nil {
				c.settle(r.Context(), d.OutTradeNo, d.Status)
			}
		}
		ack(w)
	}
}

// settle records an order's final status (best effort: the event is what counts; a stale
// pending order is only queried again by the sweep).
func (c *Connector) settle(ctx context.Context, outTradeNo, status string) {
	if err := c.orders.update(ctx, outTradeNo, func(o *order) { o.Status = status }); err != nil {
		c.rt.Log.WarnContext(ctx, "payment: order status not stored", "out_trade_no", outTradeNo, "status", status, "err", err)
	}
}

func (c *Connector) verifyAlipay(_ *http.Request, body []byte) error {
	form, _, err := alipay.ParseNotify(body)
	if err != nil {
		return wrapWire(err)
	}
	if err := alipay.VerifyNotify(c.providers[ProviderAlipay].(*alipayProvider).k.alipayPublic, form); err != nil {
		return fmt.Errorf("%w: %w", webhook.ErrSignature, err)
	}
	return nil
}

// wrapWire maps the wire packages' sentinels to pkg/webhook's.
func wrapWire(err error) error {
	switch {
	case errors.Is(err, alipay.ErrSignature), errors.Is(err, wechatpay.ErrSerial):
		return fmt.Errorf("%w: %w", webhook.ErrSignature, err)
	case errors.Is(err, wechatpay.ErrExpired):
		return fmt.Errorf("%w: %w", webhook.ErrExpired, err)
	}
	return fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
}

// refuse is a 4xx for a verified notify that does not match what we created: unknown order,
// another app, another amount.
func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", webhook.ErrMalformed, fmt.Sprintf(format, args...))
}

// lookup returns the stored order of a notify, or a refusal (unknown) or a 503 (bucket down).
func (c *Connector) lookup(ctx context.Context, outTradeNo string) (order, error) {
	o, _, err := c.orders.get(ctx, outTradeNo)
	switch {
	case errors.Is(err, errUnknownOrder):
		return order{}, refuse("out_trade_no %q is no order of ours", outTradeNo)
	case err != nil:
		return order{}, fmt.Errorf("%w: %w", webhook.ErrUnavailable, err)
	}
	return o, nil
}

func (c *Connector) decodeAlipay(r *http.Request, body []byte) ([]bus.Outgoing, error) {
	_, n, err := alipay.ParseNotify(body)
	if err != nil {
		return nil, wrapWire(err)
	}
	if n.AppID != c.cfg.AlipayAppID {
		return nil, refuse("app_id %q is not ours", n.AppID)
	}
	o, err := c.lookup(r.Context(), n.OutTradeNo)
	if err != nil {
		return nil, err
	}
	if o.Provider != ProviderAlipay {
		return nil, refuse("order %s was not made with alipay", o.OutTradeNo)
	}
	fen, _ := alipay.ParseYuan(n.TotalAmount)
	if fen != o.Fen {
		return nil, refuse("total_amount %s differs from the order's %s", n.TotalAmount, alipay.FormatYuan(o.Fen))
	}
	out := outcome{TransactionID: n.TradeNo, Fen: fen}
	switch n.TradeStatus {
	case alipay.TradeSuccess, alipay.TradeFinished:
		out.Status = StatusPaid
		if t, err := alipay.ParseTime(n.GmtPayment); err == nil {
			out.At = t
		}
	case alipay.TradeClosed:
		out.Status = StatusClosed
		if isRefund(body) {
			out.Status = StatusRefunded
		}
	default:
		return nil, nil // WAIT_BUYER_PAY: acknowledged, nothing happened yet
	}
	e, err := c.statusEvent(o, out, "notify")
	if err != nil {
		return nil, err
	}
	return []bus.Outgoing{e}, nil
}

// isRefund reports whether a TRADE_CLOSED notify closes a paid trade by a full refund (it then
// carries refund_fee / gmt_refund).
func isRefund(body []byte) bool {
	form, _, err := alipay.ParseNotify(body)
	return err == nil && (form.Get("gmt_refund") != "" || form.Get("refund_fee") != "")
}

func (c *Connector) verifyWechat(r *http.Request, body []byte) error {
	p := c.providers[ProviderWechatPay].(*wechatProvider)
	s := wechatpay.SignedFrom(r.Header)
	if err := wechatpay.VerifyResponse(wechatpay.Keys{c.cfg.WechatPlatformID: p.k.wechatPlatform}, s, body, c.now(), c.cfg.WechatNotifyWindow); err != nil {
		return wrapWire(err)
	}
	switch err := c.nonces.use(r.Context(), s.Nonce); {
	case errors.Is(err, errReplay):
		return fmt.Errorf("%w: Wechatpay-Nonce %s was used already (a replay)", webhook.ErrExpired, s.Nonce)
	case err != nil:
		return fmt.Errorf("%w: %w", webhook.ErrUnavailable, err)
	}
	return nil
}

func (c *Connector) decodeWechat(r *http.Request, body []byte) ([]bus.Outgoing, error) {
	n, err := wechatpay.ParseNotify(body)
	if err != nil {
		return nil, wrapWire(err)
	}
	tx, err := n.DecryptTransaction(c.cfg.WechatAPIv3Key)
	if err != nil {
		return nil, wrapWire(err)
	}
	if tx.MchID != c.cfg.WechatMchID || (c.cfg.WechatAppID != "" && tx.AppID != c.cfg.WechatAppID) {
		return nil, refuse("mchid %q / appid %q are not ours", tx.MchID, tx.AppID)
	}
	o, err := c.lookup(r.Context(), baseTradeNo(tx.OutTradeNo))
	if err != nil {
		return nil, err
	}
	if o.Provider != ProviderWechatPay {
		return nil, refuse("order %s was not made with wechatpay", o.OutTradeNo)
	}
	out := txOutcome(tx)
	if out.Fen != o.Fen {
		return nil, refuse("amount.total %d differs from the order's %d", out.Fen, o.Fen)
	}
	if out.Status == StatusPending {
		return nil, nil
	}
	e, err := c.statusEvent(o, out, "notify")
	if err != nil {
		return nil, err
	}
	return []bus.Outgoing{e}, nil
}
