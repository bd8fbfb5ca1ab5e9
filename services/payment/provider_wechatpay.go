package payment

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/wechatpay"
)

// wechatCodes classify API v3's error codes (4xx/5xx bodies).
var wechatCodes = resilience.Codes{
	wechatpay.CodeSystemError: resilience.ClassRetryable, wechatpay.CodeFrequencyLimit: resilience.ClassRateLimited,
	"BANK_ERROR": resilience.ClassRetryable, "": resilience.ClassSuccess,
}

// wechatProvider calls WeChat Pay API v3.
type wechatProvider struct {
	cfg                          Config
	k                            keys
	http                         *http.Client
	now                          func() time.Time
	native, h5, queryRt, closeRt *resilience.Route
	checkRt                      *resilience.Route // the start check's (check.go)
}

func newWechat(cfg Config, k keys, o Options, reg *resilience.Registry) (*wechatProvider, error) {
	p := &wechatProvider{cfg: cfg, k: k, http: o.HTTP, now: o.Now}
	closeCodes := resilience.Codes{wechatpay.CodeOrderClosed: resilience.ClassSuccess, wechatpay.CodeOrderNotExist: resilience.ClassSuccess}
	for _, r := range []struct {
		op    string
		route **resilience.Route
		extra resilience.Codes
	}{{"native", &p.native, nil}, {"h5", &p.h5, nil}, {"query", &p.queryRt, closeCodes}, {"close", &p.closeRt, closeCodes}, {"check", &p.checkRt, closeCodes}} {
		codes := resilience.Codes{}
		for k, v := range wechatCodes {
			codes[k] = v
		}
		for k, v := range r.extra {
			codes[k] = v
		}
		route, err := reg.Route(resilience.RouteSpec{Vendor: "wechatpay", Op: r.op, Idempotent: true, Settings: settings,
			Classify: byStatusThen(codes)})
		if err != nil {
			return nil, err
		}
		*r.route = route
	}
	return p, nil
}

func (p *wechatProvider) notifyURL() string { return p.cfg.NotifyURL + "/" + ProviderWechatPay }

// create places the Native order (the QR's code_url) and the H5 order (the mobile link) at once.
// WeChat keys an order by out_trade_no alone and refuses one number for two trade types, so the
// H5 order is the link's out_trade_no + "H"; a notify or query of either settles the link.
func (p *wechatProvider) create(ctx context.Context, o order) (link, error) {
	body := wechatpay.OrderRequest{AppID: p.cfg.WechatAppID, MchID: p.cfg.WechatMchID, Description: o.Description,
		OutTradeNo: o.OutTradeNo, TimeExpire: o.ExpiresAt.In(chinaZone).Format(time.RFC3339), NotifyURL: p.notifyURL(),
		Amount: wechatpay.Amount{Total: o.Fen, Currency: "CNY"}}
	var native wechatpay.NativeResponse
	var h5 wechatpay.H5Response
	h5Body := body
	h5Body.OutTradeNo = h5TradeNo(o.OutTradeNo)
	h5Body.SceneInfo = &wechatpay.SceneInfo{PayerClientIP: p.cfg.WechatPayerIP, H5Info: &wechatpay.H5Info{Type: "Wap"}}
	err := concurrently(
		func() error {
			return p.call(ctx, p.native, o.OutTradeNo, http.MethodPost, wechatpay.PathNative, body, &native)
		},
		func() error { return p.call(ctx, p.h5, o.OutTradeNo, http.MethodPost, wechatpay.PathH5, h5Body, &h5) },
	)
	if err != nil {
		return link{}, err
	}
	if native.CodeURL == "" || h5.H5URL == "" {
		return link{}, bus.Permanent(errors.New("wechatpay: answer without code_url or h5_url"))
	}
	return link{URL: h5.H5URL, QRCode: native.CodeURL}, nil
}

// h5TradeNo is the out_trade_no of a link's H5 order (its Native order has the link's own).
func h5TradeNo(outTradeNo string) string { return outTradeNo + "H" }

// baseTradeNo is the link's out_trade_no of either of its orders.
func baseTradeNo(outTradeNo string) string {
	if len(outTradeNo) == 32 && outTradeNo[31] == 'H' {
		return outTradeNo[:31]
	}
	return outTradeNo
}

var chinaZone = time.FixedZone("CST", 8*3600)

// query asks for both orders of the link: paid when either was paid.
func (p *wechatProvider) query(ctx context.Context, o order) (outcome, error) {
	best := outcome{Status: StatusPending}
	for _, no := range []string{o.OutTradeNo, h5TradeNo(o.OutTradeNo)} {
		var tx wechatpay.Transaction
		path := wechatpay.PathOutTradeNo + no + "?mchid=" + url.QueryEscape(p.cfg.WechatMchID)
		if err := p.call(ctx, p.queryRt, o.OutTradeNo, http.MethodGet, path, nil, &tx, wechatpay.CodeOrderNotExist); err != nil {
			return outcome{}, err
		}
		out := txOutcome(tx)
		if out.Status == StatusPaid || out.Status == StatusRefunded {
			return out, nil
		}
		if out.Status == StatusClosed {
			best = out
		}
	}
	return best, nil
}

// txOutcome reads a transaction's state.
func txOutcome(tx wechatpay.Transaction) outcome {
	out := outcome{Status: StatusPending, TransactionID: tx.TransactionID}
	switch tx.TradeState {
	case wechatpay.StateSuccess:
		out.Status = StatusPaid
	case wechatpay.StateClosed, "REVOKED":
		out.Status = StatusClosed
	case wechatpay.StateRefund:
		out.Status = StatusRefunded
	}
	if tx.Amount != nil {
		out.Fen = tx.Amount.Total
	}
	if t, err := time.Parse(time.RFC3339, tx.SuccessTime); err == nil {
		out.At = t
	}
	return out
}

// close closes both orders of the link.
func (p *wechatProvider) close(ctx context.Context, o order) error {
	return concurrently(
		func() error {
			return p.call(ctx, p.closeRt, o.OutTradeNo, http.MethodPost, wechatpay.PathOutTradeNo+o.OutTradeNo+"/close", wechatpay.CloseRequest{MchID: p.cfg.WechatMchID}, nil, wechatpay.CodeOrderClosed, wechatpay.CodeOrderNotExist)
		},
		func() error {
			return p.call(ctx, p.closeRt, o.OutTradeNo, http.MethodPost, wechatpay.PathOutTradeNo+h5TradeNo(o.OutTradeNo)+"/close", wechatpay.CloseRequest{MchID: p.cfg.WechatMchID}, nil, wechatpay.CodeOrderClosed, wechatpay.CodeOrderNotExist)
		},
	)
}

// nonce returns 32 random alphanumerics.
func nonce() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// call makes one API v3 call through route: the body signed into the Authorization, the answer's
// Wechatpay-* signature verified before it is read. out may be nil (204 answers). An error answer
// whose code is in ok is an answer (the order does not exist, is closed already), not a failure;
// the route's codes class them success too.
func (p *wechatProvider) call(ctx context.Context, route *resilience.Route, key, method, pathQuery string, in, out any, ok ...string) error {
	call := resilience.CallFrom(ctx)
	call.Key = key
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return bus.Permanent(err)
		}
	}
	_, err := resilience.Do(ctx, route, call, func(ctx context.Context, a *resilience.Attempt) (struct{}, error) {
		auth, err := wechatpay.SignRequest(p.k.wechatMerchant, p.cfg.WechatMchID, p.cfg.WechatSerial, method, pathQuery, body, p.now(), nonce())
		if err != nil {
			return struct{}{}, bus.Permanent(err)
		}
		req, err := newRequest(ctx, method, p.cfg.WechatAPIBase+pathQuery, bytes.NewReader(body))
		if err != nil {
			return struct{}{}, err
		}
		req.Header.Set("Authorization", auth.String())
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		status, header, raw, err := exchange(a, p.http, req, body)
		if err != nil {
			return struct{}{}, err
		}
		// Every answer WeChat signs, errors included; a gateway's bare 5xx is not WeChat's.
		if verr := wechatpay.VerifyResponse(wechatpay.Keys{p.cfg.WechatPlatformID: p.k.wechatPlatform}, wechatpay.SignedFrom(header), raw,
			p.now(), p.cfg.WechatNotifyWindow); verr != nil {
			if status/100 == 5 && header.Get(wechatpay.HeaderSignature) == "" {
				a.Response(status, "", raw)
				return struct{}{}, fmt.Errorf("wechatpay: HTTP %d (unsigned)", status)
			}
			a.Response(status, codeBadSignature, raw)
			return struct{}{}, verr
		}
		if status/100 != 2 {
			e := &wechatpay.Error{Status: status}
			_ = json.Unmarshal(raw, e)
			a.Response(status, e.Code, raw)
			if slices.Contains(ok, e.Code) {
				return struct{}{}, nil
			}
			return struct{}{}, e
		}
		if out != nil && status != http.StatusNoContent {
			if err := json.Unmarshal(raw, out); err != nil {
				a.Response(status, codeMalformed, raw)
				return struct{}{}, err
			}
		}
		a.Response(status, "", raw)
		return struct{}{}, nil
	})
	return err
}
