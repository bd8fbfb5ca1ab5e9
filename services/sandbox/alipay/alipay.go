// Package alipay simulates the Alipay open platform gateway for payment links, mounted on a
// sim.Env under /sandbox/alipay:
//
//	POST /sandbox/alipay/gateway.do   method=alipay.trade.precreate | alipay.trade.query | alipay.trade.close   op "gateway.do"
//	GET  /sandbox/alipay/gateway.do   method=alipay.trade.wap.pay (the customer's browser)                    op "wap.pay"
//
// It checks what the gateway checks — app_id (40002 isv.invalid-app-id), the RSA2 sign over the
// sorted parameters with the app's public key (40002 isv.invalid-signature), the method and
// biz_content — and answers {"<method>_response":{...},"sign":"..."} signed with the Alipay key
// over the response text. Trades are kept by out_trade_no: a precreate of a known trade with the
// same amount answers the same qr_code (idempotent), another amount ACQ.CONTEXT_INCONSISTENT, a
// paid one ACQ.TRADE_HAS_SUCCESS; query answers trade_status or ACQ.TRADE_NOT_EXIST; close
// closes an unpaid trade (ACQ.TRADE_STATUS_ERROR for a paid one).
//
// The simulated customer pays: Config.PayAfter after a trade is created (precreate, or the wap
// link opened) it turns TRADE_SUCCESS and the gateway POSTs the trade_status_sync notify, signed
// as Alipay signs it (rsaCheckV1), to the request's notify_url, retrying until the merchant
// answers "success". Pay pays a trade at once.
//
// Injected faults (sim.Fault.Code): "" answers 20000 isp.unknow-error; "http_503" a bare HTTP 503;
// any other code a 40004 Business Failed with that sub_code.
package alipay

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/alipay"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "alipay"

// Ops (fault keys "alipay gateway.do", "alipay wap.pay").
const (
	OpGateway = "gateway.do"
	OpWapPay  = "wap.pay"
)

// Config configures the simulated merchant app. Zero fields take the defaults shown.
type Config struct {
	// AppID is the merchant's app_id (the connector's ALIPAY_APP_ID). Required.
	AppID string
	// AppPublicKey is the public half of the app's key (what the merchant uploads to Alipay):
	// verifies every request. Required.
	AppPublicKey string
	// PrivateKey is Alipay's own key: signs every answer and notify. Required.
	PrivateKey string
	// PayAfter is how long after a trade is created the simulated customer pays it; < 0 never.
	// Default 3s.
	PayAfter time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Trade is a simulated trade.
type Trade struct {
	OutTradeNo string    `json:"out_trade_no"`
	TradeNo    string    `json:"trade_no"`
	Fen        int64     `json:"fen"`
	Subject    string    `json:"subject"`
	Status     string    `json:"trade_status"`
	NotifyURL  string    `json:"notify_url,omitempty"`
	PaidAt     time.Time `json:"paid_at,omitzero"`
	Notified   bool      `json:"notified"`
}

// Sim is the running simulator.
type Sim struct {
	env    *sim.Env
	cfg    Config
	appKey *rsa.PublicKey
	key    atomic.Pointer[rsa.PrivateKey] // Alipay's key (RotateKey replaces it)
	group  *sim.Group
	seq    atomic.Uint64

	mu     sync.Mutex
	trades map[string]*Trade
}

// New mounts the simulator on env. Close stops its pending payments and notifies.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.AppID == "" || cfg.AppPublicKey == "" || cfg.PrivateKey == "" {
		return nil, errors.New("alipay sandbox: AppID, AppPublicKey and PrivateKey are required")
	}
	appKey, err := wire.ParsePublicKey(cfg.AppPublicKey)
	if err != nil {
		return nil, fmt.Errorf("alipay sandbox: app public key: %w", err)
	}
	key, err := wire.ParsePrivateKey(cfg.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("alipay sandbox: private key: %w", err)
	}
	if cfg.PayAfter == 0 {
		cfg.PayAfter = 3 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sim{env: env, cfg: cfg, appKey: appKey, group: sim.NewGroup(), trades: map[string]*Trade{}}
	s.key.Store(key)
	env.Handle(sim.Route{Vendor: Vendor, Op: OpGateway, Pattern: "POST " + wire.Path, Handler: s.serve, Fail: s.fail})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpWapPay, Pattern: "GET " + wire.Path, Handler: s.serveWap, Fail: s.fail})
	return s, nil
}

// Close stops pending payments and notifies.
func (s *Sim) Close() { s.group.Close() }

// RotateKey makes Alipay sign its answers and notifies with k from now on, as when the app's
// Alipay public key is changed in the console and the connector still trusts the old one.
func (s *Sim) RotateKey(k *rsa.PrivateKey) { s.key.Store(k) }

// Trade returns a copy of the trade of outTradeNo.
func (s *Sim) Trade(outTradeNo string) (Trade, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.trades[outTradeNo]
	if !ok {
		return Trade{}, false
	}
	return *t, true
}

// answer writes a signed response of method.
func (s *Sim) answer(w http.ResponseWriter, method string, v any) {
	body, err := wire.EncodeResponse(s.key.Load(), method, v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sim.WriteBody(w, http.StatusOK, "text/html;charset=utf-8", body) // the gateway's own Content-Type
}

func (s *Sim) refuse(w http.ResponseWriter, method, code, msg, sub, subMsg string) {
	s.answer(w, method, wire.Common{Code: code, Msg: msg, SubCode: sub, SubMsg: subMsg})
}

func (s *Sim) fail(w http.ResponseWriter, r *http.Request, code string) {
	_ = r.ParseForm()
	method := r.Form.Get("method")
	if method == "" {
		method = wire.MethodPrecreate
	}
	switch {
	case code == "":
		s.refuse(w, method, wire.CodeUnavailable, "Service Currently Unavailable", "isp.unknow-error", "系统繁忙")
	case strings.HasPrefix(code, "http_"):
		n, err := strconv.Atoi(strings.TrimPrefix(code, "http_"))
		if err != nil || n < 400 || n > 599 {
			n = http.StatusServiceUnavailable
		}
		http.Error(w, http.StatusText(n), n)
	default:
		s.refuse(w, method, wire.CodeBusinessFail, "Business Failed", code, "injected fault "+code)
	}
}

// check verifies a call's app and signature; it answers the refusal itself and returns false.
func (s *Sim) check(w http.ResponseWriter, op string, p url.Values) bool {
	method := p.Get("method")
	var err error
	switch {
	case p.Get("app_id") != s.cfg.AppID:
		err = fmt.Errorf("unknown app_id %q", p.Get("app_id"))
		s.refuse(w, method, wire.CodeInvalidParam, "Invalid Arguments", wire.SubInvalidAppID, "无效的AppID参数")
	case wire.VerifyRequest(s.appKey, p) != nil:
		err = fmt.Errorf("sign does not verify with the app's public key")
		s.refuse(w, method, wire.CodeInvalidParam, "Invalid Arguments", wire.SubInvalidSign, "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配")
	case p.Get("charset") != "" && !strings.EqualFold(p.Get("charset"), wire.Charset):
		err = fmt.Errorf("charset %q", p.Get("charset"))
		s.refuse(w, method, wire.CodeInvalidParam, "Invalid Arguments", "isv.invalid-charset", "字符集错误")
	}
	if err != nil {
		audited := url.Values{}
		for k, v := range p {
			audited[k] = v
		}
		audited.Del("sign")
		s.env.Record(Vendor, op, "", audited, err)
		return false
	}
	return true
}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p, err := url.ParseQuery(string(body))
	if err != nil || p.Get("method") == "" {
		s.refuse(w, "error", wire.CodeMissingParam, "Missing Required Arguments", "isv.missing-method", "缺少方法名参数")
		return
	}
	if !s.check(w, OpGateway, p) {
		return
	}
	method := p.Get("method")
	switch method {
	case wire.MethodPrecreate:
		s.precreate(w, p)
	case wire.MethodQuery:
		s.query(w, p)
	case wire.MethodClose:
		s.close(w, p)
	default:
		s.refuse(w, method, wire.CodeInvalidParam, "Invalid Arguments", "isv.invalid-method", "不存在的方法名")
	}
}

// create records a new trade or returns the existing one; ok is false (and the refusal sent)
// when the existing trade cannot be created again.
func (s *Sim) create(w http.ResponseWriter, method string, p url.Values, biz wire.PrecreateBiz) (*Trade, bool) {
	fen, err := wire.ParseYuan(biz.TotalAmount)
	if biz.OutTradeNo == "" || biz.Subject == "" || err != nil || fen <= 0 {
		s.env.Record(Vendor, method, biz.OutTradeNo, biz, errors.New("missing or invalid out_trade_no, subject or total_amount"))
		s.refuse(w, method, wire.CodeBusinessFail, "Business Failed", "ACQ.INVALID_PARAMETER", "参数无效")
		return nil, false
	}
	s.mu.Lock()
	t, known := s.trades[biz.OutTradeNo]
	if !known {
		t = &Trade{OutTradeNo: biz.OutTradeNo, TradeNo: s.tradeNo(), Fen: fen, Subject: biz.Subject, Status: wire.TradeWaitBuyerPay,
			NotifyURL: p.Get("notify_url")}
		s.trades[biz.OutTradeNo] = t
	}
	cp := *t
	s.mu.Unlock()
	switch {
	case known && cp.Fen != fen:
		s.env.Record(Vendor, method, biz.OutTradeNo, biz, errors.New("same out_trade_no, another amount"))
		s.refuse(w, method, wire.CodeBusinessFail, "Business Failed", wire.SubInconsistent, "交易信息被篡改")
		return nil, false
	case cp.Status == wire.TradeSuccess || cp.Status == wire.TradeFinished:
		s.env.Record(Vendor, method, biz.OutTradeNo, biz, errors.New("trade paid already"))
		s.refuse(w, method, wire.CodeBusinessFail, "Business Failed", wire.SubTradeHasPaid, "交易已被支付")
		return nil, false
	case cp.Status == wire.TradeClosed:
		s.env.Record(Vendor, method, biz.OutTradeNo, biz, errors.New("trade closed"))
		s.refuse(w, method, wire.CodeBusinessFail, "Business Failed", "ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
		return nil, false
	}
	s.env.Record(Vendor, method, biz.OutTradeNo, biz, nil)
	if !known && s.cfg.PayAfter > 0 {
		no := biz.OutTradeNo
		s.group.Go(func(ctx context.Context) {
			if sim.Sleep(ctx, s.cfg.PayAfter) {
				if err := s.pay(ctx, no); err != nil {
					s.env.Log.Warn("simulated payment failed", "vendor", Vendor, "out_trade_no", no, "err", err)
				}
			}
		})
	}
	return t, true
}

func (s *Sim) tradeNo() string {
	return s.cfg.Now().In(wire.China).Format("20060102") + "22001" + fmt.Sprintf("%015d", s.seq.Add(1))
}

// QRCode is the qr_code of a trade, as Alipay's look.
func QRCode(outTradeNo string) string {
	h := sha256.Sum256([]byte(outTradeNo))
	return "https://qr.alipay.com/bax0" + hex.EncodeToString(h[:10])
}

func (s *Sim) precreate(w http.ResponseWriter, p url.Values) {
	var biz wire.PrecreateBiz
	if err := json.Unmarshal([]byte(p.Get("biz_content")), &biz); err != nil {
		s.env.Record(Vendor, wire.MethodPrecreate, "", p.Get("biz_content"), err)
		s.refuse(w, wire.MethodPrecreate, wire.CodeMissingParam, "Missing Required Arguments", "isv.missing-biz-content", "biz_content 不是 JSON")
		return
	}
	if _, ok := s.create(w, wire.MethodPrecreate, p, biz); !ok {
		return
	}
	s.answer(w, wire.MethodPrecreate, wire.PrecreateResponse{Common: wire.Common{Code: wire.CodeSuccess, Msg: "Success"},
		OutTradeNo: biz.OutTradeNo, QRCode: QRCode(biz.OutTradeNo)})
}

// serveWap is the cashier page a wap.pay link opens.
func (s *Sim) serveWap(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Query()
	if p.Get("method") != wire.MethodWapPay {
		http.Error(w, "method must be alipay.trade.wap.pay", http.StatusBadRequest)
		return
	}
	if !s.check(w, OpWapPay, p) {
		return
	}
	var biz wire.WapPayBiz
	if err := json.Unmarshal([]byte(p.Get("biz_content")), &biz); err != nil {
		http.Error(w, "biz_content is not JSON", http.StatusBadRequest)
		return
	}
	t, ok := s.create(w, wire.MethodWapPay, p, wire.PrecreateBiz{OutTradeNo: biz.OutTradeNo, TotalAmount: biz.TotalAmount, Subject: biz.Subject})
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><title>支付宝 (sandbox)</title><h1>%s</h1><p>¥ %s</p><p>订单 %s — 模拟顾客将在 %s 后付款</p>`,
		html.EscapeString(biz.Subject), wire.FormatYuan(t.Fen), html.EscapeString(biz.OutTradeNo), s.cfg.PayAfter)
}

func (s *Sim) ref(w http.ResponseWriter, method string, p url.Values) (*Trade, bool) {
	var ref wire.TradeRef
	_ = json.Unmarshal([]byte(p.Get("biz_content")), &ref)
	s.mu.Lock()
	t, ok := s.trades[ref.OutTradeNo]
	s.mu.Unlock()
	if !ok {
		s.env.Record(Vendor, method, ref.OutTradeNo, ref, nil)
		s.refuse(w, method, wire.CodeBusinessFail, "Business Failed", wire.SubTradeNotExist, "交易不存在")
	}
	return t, ok
}

func (s *Sim) query(w http.ResponseWriter, p url.Values) {
	t, ok := s.ref(w, wire.MethodQuery, p)
	if !ok {
		return
	}
	s.mu.Lock()
	resp := wire.QueryResponse{Common: wire.Common{Code: wire.CodeSuccess, Msg: "Success"}, TradeNo: t.TradeNo, OutTradeNo: t.OutTradeNo,
		TradeStatus: t.Status, TotalAmount: wire.FormatYuan(t.Fen)}
	if !t.PaidAt.IsZero() {
		resp.SendPayDate = wire.FormatTime(t.PaidAt)
		resp.BuyerLogonID = "cus***@example.com"
	}
	s.mu.Unlock()
	s.env.Record(Vendor, wire.MethodQuery, t.OutTradeNo, resp, nil)
	s.answer(w, wire.MethodQuery, resp)
}

func (s *Sim) close(w http.ResponseWriter, p url.Values) {
	t, ok := s.ref(w, wire.MethodClose, p)
	if !ok {
		return
	}
	s.mu.Lock()
	status := t.Status
	if status == wire.TradeWaitBuyerPay {
		t.Status = wire.TradeClosed
	}
	s.mu.Unlock()
	if status == wire.TradeSuccess || status == wire.TradeFinished {
		s.env.Record(Vendor, wire.MethodClose, t.OutTradeNo, nil, errors.New("trade paid"))
		s.refuse(w, wire.MethodClose, wire.CodeBusinessFail, "Business Failed", wire.SubTradeStatusErr, "交易状态不合法")
		return
	}
	s.env.Record(Vendor, wire.MethodClose, t.OutTradeNo, nil, nil)
	s.answer(w, wire.MethodClose, wire.CloseResponse{Common: wire.Common{Code: wire.CodeSuccess, Msg: "Success"}, TradeNo: t.TradeNo, OutTradeNo: t.OutTradeNo})
}

// Pay has the simulated customer pay outTradeNo now and the gateway notify the merchant; it
// returns once the merchant answered success (or gave up after the retries).
func (s *Sim) Pay(ctx context.Context, outTradeNo string) error { return s.pay(ctx, outTradeNo) }

func (s *Sim) pay(ctx context.Context, outTradeNo string) error {
	now := s.cfg.Now()
	s.mu.Lock()
	t, ok := s.trades[outTradeNo]
	if !ok || t.Status != wire.TradeWaitBuyerPay {
		s.mu.Unlock()
		return fmt.Errorf("alipay sandbox: trade %s is not waiting for payment", outTradeNo)
	}
	t.Status, t.PaidAt = wire.TradeSuccess, now
	cp := *t
	s.mu.Unlock()
	s.env.Record(Vendor, "pay", outTradeNo, cp, nil)
	if cp.NotifyURL == "" {
		return nil
	}
	form := NotifyForm(s.cfg.AppID, cp, now)
	if err := wire.SignNotify(s.key.Load(), form); err != nil {
		return err
	}
	err := Deliver(ctx, s.env.Client, cp.NotifyURL, form)
	s.mu.Lock()
	t.Notified = err == nil
	s.mu.Unlock()
	if err != nil {
		s.env.VendorLog(Vendor).Warn("notify not acknowledged", "out_trade_no", outTradeNo, "err", err)
	}
	return err
}

// NotifyForm is the (unsigned) trade_status_sync notify of a paid trade.
func NotifyForm(appID string, t Trade, now time.Time) url.Values {
	amt := wire.FormatYuan(t.Fen)
	return url.Values{
		"notify_time": {wire.FormatTime(now)}, "notify_type": {wire.NotifyTypeTrade},
		"notify_id": {fmt.Sprintf("%x", sha256.Sum256([]byte(t.TradeNo+t.Status)))[:34]},
		"app_id":    {appID}, "auth_app_id": {appID}, "charset": {wire.Charset}, "version": {wire.Version},
		"trade_no": {t.TradeNo}, "out_trade_no": {t.OutTradeNo}, "trade_status": {t.Status},
		"total_amount": {amt}, "receipt_amount": {amt}, "invoice_amount": {amt}, "buyer_pay_amount": {amt}, "point_amount": {"0.00"},
		"buyer_id": {"2088102534368455"}, "buyer_logon_id": {"cus***@example.com"}, "seller_id": {"2088531891668739"},
		"subject": {t.Subject}, "gmt_create": {wire.FormatTime(now.Add(-time.Second))}, "gmt_payment": {wire.FormatTime(t.PaidAt)},
		"fund_bill_list": {`[{"amount":"` + amt + `","fundChannel":"ALIPAYACCOUNT"}]`},
	}
}

// Deliver POSTs a notify form to url until the merchant answers "success" (sim.WebhookAttempts
// times, as Alipay retries).
func Deliver(ctx context.Context, client *http.Client, url string, form url.Values) error {
	var last error
	for attempt := range sim.WebhookAttempts {
		if attempt > 0 && !sim.Sleep(ctx, time.Duration(attempt)*200*time.Millisecond) {
			return errors.Join(last, ctx.Err())
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(form.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		resp, err := client.Do(req)
		if err != nil {
			last = err
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == wire.NotifyAck {
			return nil
		}
		last = fmt.Errorf("notify answered %d: %.200s", resp.StatusCode, b)
	}
	return last
}
