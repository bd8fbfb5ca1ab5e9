package payment

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/alipay"
	"github.com/omnibus-dev/omnibus/pkg/wire/wechatpay"
)

// The start check (connector.CheckVendor): each configured provider is asked, on a route of its
// own (<provider>.check: the query route's breaker and alerts never see it), for a trade no link
// ever has. The answer "no such trade" proves every key: the request's signature (the app or
// merchant private key, the app id or merchant id and serial) and the answer's (the provider's
// public key). A refused key stops the start naming the variables; a provider that does not
// answer only warns.

// checkTradeNo is the out_trade_no the start check asks about (never a link's: those are 31
// characters of the link's id).
const checkTradeNo = "omnibus-start-check"

// vendorStatus is the HTTP status and code of a failed call (0, "" when it has none).
func vendorStatus(err error) (int, string) {
	var re *resilience.Error
	if errors.As(err, &re) {
		return re.Status, re.VendorCode
	}
	return 0, ""
}

// refusal reports whether a failed call is the provider's refusal of the request (a 4xx but 408
// and 429, or a code in codes), not an outage.
func refusal(status int, code string, codes ...string) bool {
	for _, c := range codes {
		if code == c {
			return true
		}
	}
	return status >= 400 && status < 500 && status != http.StatusTooManyRequests && status != http.StatusRequestTimeout
}

// check asks alipay.trade.query for checkTradeNo: ACQ.TRADE_NOT_EXIST is the good answer.
func (p *alipayProvider) check(ctx context.Context) error {
	var resp alipay.QueryResponse
	err := p.call(ctx, p.checkRt, order{OutTradeNo: checkTradeNo}, alipay.MethodQuery, alipay.TradeRef{OutTradeNo: checkTradeNo}, &resp)
	if err == nil {
		return nil
	}
	status, code := vendorStatus(err)
	switch {
	case code == alipay.SubInvalidAppID:
		return connector.Misconfigured("ALIPAY_APP_ID=%s refused by the gateway (%s): %w", p.cfg.AlipayAppID, code, err)
	case code == alipay.SubInvalidSign:
		return connector.Misconfigured("the gateway refused the signature of ALIPAY_APP_PRIVATE_KEY (%s): it is not the private key of the app public key uploaded for ALIPAY_APP_ID=%s",
			code, p.cfg.AlipayAppID)
	case code == codeBadSignature:
		return connector.Misconfigured("ALIPAY_PUBLIC_KEY does not verify the gateway's answer: set Alipay's public key of app %s (not the app's own)", p.cfg.AlipayAppID)
	case strings.HasPrefix(code, "isv."):
		return connector.Misconfigured("the gateway refused app ALIPAY_APP_ID=%s: %w", p.cfg.AlipayAppID, err)
	case refusal(status, code):
		return connector.Misconfigured("ALIPAY_GATEWAY=%s answered HTTP %d: %w", p.cfg.AlipayGateway, status, err)
	}
	return err
}

// check asks GET /v3/pay/transactions/out-trade-no/{checkTradeNo}: 404 ORDER_NOT_EXIST is the
// good answer. (GET /v3/certificates would prove the same keys, but merchants on the WeChat Pay
// public key, PUB_KEY_ID_..., have no platform certificates to list.)
func (p *wechatProvider) check(ctx context.Context) error {
	var tx wechatpay.Transaction
	path := wechatpay.PathOutTradeNo + checkTradeNo + "?mchid=" + url.QueryEscape(p.cfg.WechatMchID)
	err := p.call(ctx, p.checkRt, checkTradeNo, http.MethodGet, path, nil, &tx, wechatpay.CodeOrderNotExist)
	if err == nil {
		return nil
	}
	status, code := vendorStatus(err)
	switch {
	case code == wechatpay.CodeSignError || status == http.StatusUnauthorized:
		return connector.Misconfigured("WECHATPAY_MCH_ID=%s, WECHATPAY_MCH_SERIAL=%s, WECHATPAY_MCH_PRIVATE_KEY refused (%s): the serial must be the merchant API certificate's whose private key this is: %w",
			p.cfg.WechatMchID, p.cfg.WechatSerial, code, err)
	case code == codeBadSignature:
		return connector.Misconfigured("WECHATPAY_PLATFORM_PUBLIC_KEY / WECHATPAY_PLATFORM_SERIAL=%s do not verify WeChat Pay's answer: %w", p.cfg.WechatPlatformID, err)
	case refusal(status, code, wechatpay.CodeNoAuth, wechatpay.CodeParamError, wechatpay.CodeInvalidRequest):
		return connector.Misconfigured("WeChat Pay refused merchant WECHATPAY_MCH_ID=%s (HTTP %d %s): %w", p.cfg.WechatMchID, status, code, err)
	}
	return err
}

// checkProviders runs the start check of every configured provider, PAYMENT_PROVIDER first.
func (c *Connector) checkProviders(ctx context.Context) error {
	names := []string{c.cfg.Provider}
	for n := range c.providers {
		if n != c.cfg.Provider {
			names = append(names, n)
		}
	}
	for _, n := range names {
		p, ok := c.providers[n]
		if !ok {
			continue
		}
		if err := connector.CheckVendor(ctx, c.rt, n, p.check); err != nil {
			return err
		}
	}
	return nil
}
