package payment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/alipay"
)

// alipayCodes classify the gateway's codes (the sub_code when there is one).
var alipayCodes = resilience.Codes{
	alipay.CodeSuccess: resilience.ClassSuccess, alipay.CodeUnavailable: resilience.ClassRetryable,
	alipay.SubSystemError: resilience.ClassRetryable, "aop.ACQ.SYSTEM_ERROR": resilience.ClassRetryable,
	"isp.unknow-error": resilience.ClassRetryable, "ACQ.TRADE_HAS_CLOSE": resilience.ClassSuccess,
}

// alipayProvider calls the Alipay gateway.
type alipayProvider struct {
	cfg                         Config
	k                           keys
	http                        *http.Client
	now                         func() time.Time
	precreate, queryRt, closeRt *resilience.Route
	checkRt                     *resilience.Route // the start check's (check.go)
}

func newAlipay(cfg Config, k keys, o Options, reg *resilience.Registry) (*alipayProvider, error) {
	p := &alipayProvider{cfg: cfg, k: k, http: o.HTTP, now: o.Now}
	// A query or close of a trade Alipay does not know (a precreate trade exists only once the
	// QR is scanned) is an answer, not a failure.
	queryCodes := resilience.Codes{alipay.SubTradeNotExist: resilience.ClassSuccess}
	for _, r := range []struct {
		op    string
		route **resilience.Route
		extra resilience.Codes
	}{{"precreate", &p.precreate, nil}, {"query", &p.queryRt, queryCodes}, {"close", &p.closeRt, queryCodes}, {"check", &p.checkRt, queryCodes}} {
		codes := resilience.Codes{}
		for k, v := range alipayCodes {
			codes[k] = v
		}
		for k, v := range r.extra {
			codes[k] = v
		}
		route, err := reg.Route(resilience.RouteSpec{Vendor: "alipay", Op: r.op, Idempotent: true, Settings: settings,
			Classify: byStatusThen(codes)})
		if err != nil {
			return nil, err
		}
		*r.route = route
	}
	return p, nil
}

// timeExpire is an order's expiry as Alipay writes it.
func timeExpire(o order) string { return alipay.FormatTime(o.ExpiresAt) }

// create asks for the QR (precreate) and signs the mobile link (wap.pay, which the customer's
// browser opens: no call).
func (p *alipayProvider) create(ctx context.Context, o order) (link, error) {
	wap, err := alipay.Request{AppID: p.cfg.AlipayAppID, Method: alipay.MethodWapPay, NotifyURL: p.notifyURL(), Timestamp: p.now(),
		BizContent: alipay.WapPayBiz{OutTradeNo: o.OutTradeNo, TotalAmount: alipay.FormatYuan(o.Fen), Subject: o.Description,
			ProductCode: alipay.ProductQuickWap, TimeExpire: timeExpire(o)}}.Params(p.k.alipayApp)
	if err != nil {
		return link{}, bus.Permanent(err)
	}
	var resp alipay.PrecreateResponse
	err = p.call(ctx, p.precreate, o, alipay.MethodPrecreate, alipay.PrecreateBiz{OutTradeNo: o.OutTradeNo,
		TotalAmount: alipay.FormatYuan(o.Fen), Subject: o.Description, TimeExpire: timeExpire(o)}, &resp)
	if err != nil {
		return link{}, err
	}
	return link{URL: alipay.PageURL(p.cfg.AlipayGateway, wap), QRCode: resp.QRCode}, nil
}

func (p *alipayProvider) notifyURL() string { return p.cfg.NotifyURL + "/" + ProviderAlipay }

// query asks alipay.trade.query for the trade's status.
func (p *alipayProvider) query(ctx context.Context, o order) (outcome, error) {
	var resp alipay.QueryResponse
	if err := p.call(ctx, p.queryRt, o, alipay.MethodQuery, alipay.TradeRef{OutTradeNo: o.OutTradeNo}, &resp); err != nil {
		return outcome{}, err
	}
	out := outcome{Status: StatusPending, TransactionID: resp.TradeNo}
	switch resp.TradeStatus {
	case alipay.TradeSuccess, alipay.TradeFinished:
		out.Status = StatusPaid
		out.Fen, _ = alipay.ParseYuan(resp.TotalAmount)
		if t, err := alipay.ParseTime(resp.SendPayDate); err == nil {
			out.At = t
		}
	case alipay.TradeClosed:
		out.Status = StatusClosed
	}
	return out, nil
}

// close asks alipay.trade.close to close the trade (a trade Alipay does not know is closed).
func (p *alipayProvider) close(ctx context.Context, o order) error {
	var resp alipay.CloseResponse
	return p.call(ctx, p.closeRt, o, alipay.MethodClose, alipay.TradeRef{OutTradeNo: o.OutTradeNo}, &resp)
}

// call makes one gateway call through route: signed form, answer verified over its raw text.
// Errors: *resilience.Error (with the vendor's sub_code, or bad_signature / malformed).
func (p *alipayProvider) call(ctx context.Context, route *resilience.Route, o order, method string, biz any, out alipay.Result) error {
	call := resilience.CallFrom(ctx)
	call.Key = o.OutTradeNo
	_, err := resilience.Do(ctx, route, call, func(ctx context.Context, a *resilience.Attempt) (struct{}, error) {
		params, err := alipay.Request{AppID: p.cfg.AlipayAppID, Method: method, NotifyURL: p.notifyURL(), Timestamp: p.now(), BizContent: biz}.Params(p.k.alipayApp)
		if err != nil {
			return struct{}{}, bus.Permanent(err)
		}
		body := params.Encode()
		audited := url.Values{}
		for k, v := range params {
			audited[k] = v
		}
		audited.Set("sign", "[REDACTED]")
		req, err := newRequest(ctx, http.MethodPost, p.cfg.AlipayGateway, strings.NewReader(body))
		if err != nil {
			return struct{}{}, err
		}
		req.Header.Set("Content-Type", alipay.ContentType)
		status, _, raw, err := exchange(a, p.http, req, []byte(audited.Encode()))
		if err != nil {
			return struct{}{}, err
		}
		if status != http.StatusOK {
			a.Response(status, "", raw)
			return struct{}{}, fmt.Errorf("alipay: HTTP %d", status)
		}
		err = alipay.VerifyResponse(p.k.alipayPublic, raw, method, out)
		switch {
		case errors.Is(err, alipay.ErrSignature):
			a.Response(status, codeBadSignature, raw)
			return struct{}{}, err
		case err != nil:
			a.Response(status, codeMalformed, raw)
			return struct{}{}, err
		}
		head := out.Head()
		code := head.Code
		if head.SubCode != "" {
			code = head.SubCode
		}
		a.Response(status, code, raw)
		if e := head.Err(); e != nil && alipayCodes[code] != resilience.ClassSuccess && code != alipay.SubTradeNotExist {
			return struct{}{}, e
		}
		return struct{}{}, nil
	})
	return err
}
