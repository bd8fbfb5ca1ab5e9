// Package wechatpay simulates WeChat Pay API v3 for payment links, mounted on a sim.Env under
// /sandbox/wechatpay:
//
//	POST /sandbox/wechatpay/v3/pay/transactions/native                        op "native"
//	POST /sandbox/wechatpay/v3/pay/transactions/h5                            op "h5"
//	GET  /sandbox/wechatpay/v3/pay/transactions/out-trade-no/{no}?mchid=      op "query"
//	POST /sandbox/wechatpay/v3/pay/transactions/out-trade-no/{no}/close       op "close"
//
// Every request's WECHATPAY2-SHA256-RSA2048 Authorization is verified with the merchant's public
// key (mchid, serial_no, a timestamp within 5 minutes; 401 SIGN_ERROR otherwise), and every
// answer, errors included, carries Wechatpay-Timestamp/-Nonce/-Serial/-Signature signed with the
// platform key. Orders are kept by out_trade_no: the same order again answers the same code_url
// or h5_url (idempotent), another amount or type 400 INVALID_REQUEST, a paid one 400 ORDERPAID;
// query answers the transaction (404 ORDER_NOT_EXIST), close closes an unpaid order (204).
//
// The simulated customer scans the QR: Config.PayAfter after a Native order is created it turns
// SUCCESS and the platform POSTs the TRANSACTION.SUCCESS notify — the transaction encrypted with
// AEAD_AES_256_GCM under the APIv3 key, the body signed with the platform key, fresh for each
// attempt — to the order's notify_url until it is answered 2xx. Pay pays any order at once.
//
// Injected faults (sim.Fault.Code): "" answers 500 SYSTEM_ERROR; "http_503" a bare, unsigned HTTP
// 503 (a gateway in front); FREQUENCY_LIMITED a 429; any other code a 400 with that code.
package wechatpay

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/wechatpay"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "wechatpay"

// Ops.
const (
	OpNative = "native"
	OpH5     = "h5"
	OpQuery  = "query"
	OpClose  = "close"
)

// Config configures the simulated merchant. Zero fields take the defaults shown.
type Config struct {
	// MchID is the merchant id (the connector's WECHATPAY_MCH_ID). Required.
	MchID string
	// MerchantPublicKey and MerchantSerial are the merchant API certificate's key and serial:
	// they verify every request. Required.
	MerchantPublicKey, MerchantSerial string
	// PrivateKey and Serial are the platform's key and its serial (PUB_KEY_ID_...): they sign
	// every answer and notify. Required.
	PrivateKey, Serial string
	// APIv3Key encrypts notify resources (32 bytes). Required.
	APIv3Key string
	// PayAfter is how long after a Native order is created the simulated customer pays it;
	// < 0 never. Default 3s.
	PayAfter time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Order is a simulated order.
type Order struct {
	wire.OrderRequest
	TradeType     string    `json:"trade_type"`
	TradeState    string    `json:"trade_state"`
	TransactionID string    `json:"transaction_id"`
	URL           string    `json:"url"`
	PaidAt        time.Time `json:"paid_at,omitzero"`
	Notified      bool      `json:"notified"`
}

// Sim is the running simulator.
type Sim struct {
	env    *sim.Env
	cfg    Config
	mchKey *rsa.PublicKey
	key    *rsa.PrivateKey
	group  *sim.Group
	seq    atomic.Uint64

	mu     sync.Mutex
	orders map[string]*Order
}

// New mounts the simulator on env. Close stops its pending payments and notifies.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.MchID == "" || cfg.MerchantPublicKey == "" || cfg.MerchantSerial == "" || cfg.PrivateKey == "" || cfg.Serial == "" || len(cfg.APIv3Key) != 32 {
		return nil, errors.New("wechatpay sandbox: MchID, MerchantPublicKey, MerchantSerial, PrivateKey, Serial and a 32-byte APIv3Key are required")
	}
	mchKey, err := wire.ParsePublicKey(cfg.MerchantPublicKey)
	if err != nil {
		return nil, fmt.Errorf("wechatpay sandbox: merchant public key: %w", err)
	}
	key, err := wire.ParsePrivateKey(cfg.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("wechatpay sandbox: platform private key: %w", err)
	}
	if cfg.PayAfter == 0 {
		cfg.PayAfter = 3 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sim{env: env, cfg: cfg, mchKey: mchKey, key: key, group: sim.NewGroup(), orders: map[string]*Order{}}
	env.Handle(sim.Route{Vendor: Vendor, Op: OpNative, Pattern: "POST " + wire.PathNative, Handler: s.authed(OpNative, s.create), Fail: s.fail})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpH5, Pattern: "POST " + wire.PathH5, Handler: s.authed(OpH5, s.create), Fail: s.fail})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpQuery, Pattern: "GET " + wire.PathOutTradeNo + "{no}", Handler: s.authed(OpQuery, s.query), Fail: s.fail})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpClose, Pattern: "POST " + wire.PathOutTradeNo + "{no}/close", Handler: s.authed(OpClose, s.close), Fail: s.fail})
	return s, nil
}

// Close stops pending payments and notifies.
func (s *Sim) Close() { s.group.Close() }

// Order returns a copy of the order of outTradeNo.
func (s *Sim) Order(outTradeNo string) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[outTradeNo]
	if !ok {
		return Order{}, false
	}
	return *o, true
}

func nonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// reply writes a signed answer.
func (s *Sim) reply(w http.ResponseWriter, status int, v any) {
	var body []byte
	if v != nil {
		body, _ = json.Marshal(v)
	}
	signed, err := wire.SignResponse(s.key, s.cfg.Serial, body, s.cfg.Now(), nonce())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	signed.Set(w.Header())
	w.Header().Set(wire.HeaderRequestID, nonce())
	if body == nil {
		w.WriteHeader(status)
		return
	}
	sim.WriteBody(w, status, "application/json", body)
}

func (s *Sim) errorReply(w http.ResponseWriter, status int, code, msg string) {
	s.reply(w, status, wire.Error{Code: code, Message: msg})
}

func (s *Sim) fail(w http.ResponseWriter, _ *http.Request, code string) {
	switch {
	case code == "":
		s.errorReply(w, http.StatusInternalServerError, wire.CodeSystemError, "系统错误")
	case strings.HasPrefix(code, "http_"):
		n, err := strconv.Atoi(strings.TrimPrefix(code, "http_"))
		if err != nil || n < 400 || n > 599 {
			n = http.StatusServiceUnavailable
		}
		http.Error(w, http.StatusText(n), n)
	case code == wire.CodeFrequencyLimit:
		s.errorReply(w, http.StatusTooManyRequests, code, "频率超限")
	default:
		s.errorReply(w, http.StatusBadRequest, code, "injected fault "+code)
	}
}

// authed verifies a request's Authorization before h.
func (s *Sim) authed(op string, h func(w http.ResponseWriter, r *http.Request, body []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			s.errorReply(w, http.StatusBadRequest, wire.CodeParamError, "请求体读取失败")
			return
		}
		pathQuery := strings.TrimPrefix(r.URL.Path, sim.Prefix+Vendor)
		if r.URL.RawQuery != "" {
			pathQuery += "?" + r.URL.RawQuery
		}
		a, err := wire.ParseAuthorization(r.Header.Get("Authorization"))
		switch {
		case err != nil:
		case a.MchID != s.cfg.MchID:
			err = fmt.Errorf("mchid %q is not the sandbox merchant", a.MchID)
		case a.Serial != s.cfg.MerchantSerial:
			err = fmt.Errorf("serial_no %q is not the merchant certificate's", a.Serial)
		default:
			err = wire.VerifyRequest(s.mchKey, a, r.Method, pathQuery, body, s.cfg.Now(), 5*time.Minute)
		}
		if err != nil {
			s.env.Record(Vendor, op, "", json.RawMessage(jsonOr(body)), err)
			s.errorReply(w, http.StatusUnauthorized, wire.CodeSignError, "签名错误: "+err.Error())
			return
		}
		h(w, r, body)
	}
}

func jsonOr(b []byte) []byte {
	if json.Valid(b) && len(b) > 0 {
		return b
	}
	q, _ := json.Marshal(string(b))
	return q
}

func (s *Sim) create(w http.ResponseWriter, r *http.Request, body []byte) {
	op, typ := OpNative, "NATIVE"
	if strings.HasSuffix(r.URL.Path, wire.PathH5) {
		op, typ = OpH5, "MWEB"
	}
	var req wire.OrderRequest
	err := json.Unmarshal(body, &req)
	switch {
	case err != nil:
	case req.MchID != s.cfg.MchID:
		err = fmt.Errorf("mchid %q", req.MchID)
	case len(req.OutTradeNo) < 6 || len(req.OutTradeNo) > 32:
		err = fmt.Errorf("out_trade_no %q: 6 to 32 characters", req.OutTradeNo)
	case req.Amount.Total <= 0 || req.Description == "" || req.NotifyURL == "":
		err = errors.New("amount.total, description and notify_url are required")
	case op == OpH5 && (req.SceneInfo == nil || req.SceneInfo.PayerClientIP == "" || req.SceneInfo.H5Info == nil):
		err = errors.New("scene_info.payer_client_ip and h5_info are required for H5")
	}
	if err != nil {
		s.env.Record(Vendor, op, req.OutTradeNo, json.RawMessage(jsonOr(body)), err)
		s.errorReply(w, http.StatusBadRequest, wire.CodeParamError, "参数错误: "+err.Error())
		return
	}
	s.mu.Lock()
	o, known := s.orders[req.OutTradeNo]
	if !known {
		o = &Order{OrderRequest: req, TradeType: typ, TradeState: wire.StateNotPay, TransactionID: s.transactionID()}
		if typ == "NATIVE" {
			o.URL = "weixin://wxpay/bizpayurl?pr=" + short(req.OutTradeNo)
		} else {
			o.URL = "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx" + short(req.OutTradeNo) + "&package=" + strconv.Itoa(int(s.seq.Load()))
		}
		s.orders[req.OutTradeNo] = o
	}
	cp := *o
	s.mu.Unlock()
	switch {
	case known && (cp.Amount.Total != req.Amount.Total || cp.TradeType != typ):
		err = errors.New("out_trade_no reused with another amount or trade type")
		s.env.Record(Vendor, op, req.OutTradeNo, req, err)
		s.errorReply(w, http.StatusBadRequest, wire.CodeInvalidRequest, "201 商户订单号重复")
		return
	case cp.TradeState == wire.StateSuccess:
		s.env.Record(Vendor, op, req.OutTradeNo, req, errors.New("order paid"))
		s.errorReply(w, http.StatusBadRequest, wire.CodeOrderPaid, "该订单已支付")
		return
	case cp.TradeState == wire.StateClosed:
		s.env.Record(Vendor, op, req.OutTradeNo, req, errors.New("order closed"))
		s.errorReply(w, http.StatusBadRequest, wire.CodeOrderClosed, "订单已关闭")
		return
	}
	s.env.Record(Vendor, op, req.OutTradeNo, req, nil)
	if !known && typ == "NATIVE" && s.cfg.PayAfter > 0 {
		no := req.OutTradeNo
		s.group.Go(func(ctx context.Context) {
			if sim.Sleep(ctx, s.cfg.PayAfter) {
				_ = s.pay(ctx, no)
			}
		})
	}
	if typ == "NATIVE" {
		s.reply(w, http.StatusOK, wire.NativeResponse{CodeURL: cp.URL})
	} else {
		s.reply(w, http.StatusOK, wire.H5Response{H5URL: cp.URL})
	}
}

func short(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}

func (s *Sim) transactionID() string {
	return "4200" + s.cfg.Now().Format("20060102") + fmt.Sprintf("%014d", s.seq.Add(1))
}

// transaction is the API view of o. The caller holds s.mu.
func (o *Order) transaction() wire.Transaction {
	tx := wire.Transaction{MchID: o.MchID, AppID: o.AppID, OutTradeNo: o.OutTradeNo, TradeType: o.TradeType, TradeState: o.TradeState,
		Amount: &wire.TxAmount{Total: o.Amount.Total, Currency: "CNY"}}
	if o.TradeState == wire.StateSuccess {
		tx.TransactionID, tx.TradeStateDesc, tx.BankType = o.TransactionID, "支付成功", "OTHERS"
		tx.SuccessTime = o.PaidAt.In(time.FixedZone("CST", 8*3600)).Format(time.RFC3339)
		tx.Payer = &wire.Payer{OpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
		tx.Amount.PayerTotal, tx.Amount.PayerCurrency = o.Amount.Total, "CNY"
	} else {
		tx.TradeStateDesc = "订单未支付"
	}
	return tx
}

func (s *Sim) query(w http.ResponseWriter, r *http.Request, _ []byte) {
	no := r.PathValue("no")
	s.mu.Lock()
	o, ok := s.orders[no]
	var tx wire.Transaction
	if ok {
		tx = o.transaction()
	}
	s.mu.Unlock()
	if !ok || r.URL.Query().Get("mchid") != s.cfg.MchID {
		s.env.Record(Vendor, OpQuery, no, nil, nil)
		s.errorReply(w, http.StatusNotFound, wire.CodeOrderNotExist, "订单不存在")
		return
	}
	s.env.Record(Vendor, OpQuery, no, tx, nil)
	s.reply(w, http.StatusOK, tx)
}

func (s *Sim) close(w http.ResponseWriter, r *http.Request, _ []byte) {
	no := r.PathValue("no")
	s.mu.Lock()
	o, ok := s.orders[no]
	state := ""
	if ok {
		state = o.TradeState
		if state == wire.StateNotPay {
			o.TradeState = wire.StateClosed
		}
	}
	s.mu.Unlock()
	switch {
	case !ok:
		s.env.Record(Vendor, OpClose, no, nil, nil)
		s.errorReply(w, http.StatusNotFound, wire.CodeOrderNotExist, "订单不存在")
	case state == wire.StateSuccess:
		s.env.Record(Vendor, OpClose, no, nil, errors.New("order paid"))
		s.errorReply(w, http.StatusBadRequest, wire.CodeOrderPaid, "该订单已支付")
	default:
		s.env.Record(Vendor, OpClose, no, nil, nil)
		s.reply(w, http.StatusNoContent, nil)
	}
}

// Pay has the simulated customer pay outTradeNo now and the platform notify the merchant; it
// returns once the merchant answered 2xx (or the retries gave up).
func (s *Sim) Pay(ctx context.Context, outTradeNo string) error { return s.pay(ctx, outTradeNo) }

func (s *Sim) pay(ctx context.Context, outTradeNo string) error {
	s.mu.Lock()
	o, ok := s.orders[outTradeNo]
	if !ok || o.TradeState != wire.StateNotPay {
		s.mu.Unlock()
		return fmt.Errorf("wechatpay sandbox: order %s is not waiting for payment", outTradeNo)
	}
	o.TradeState, o.PaidAt = wire.StateSuccess, s.cfg.Now()
	tx, notifyURL := o.transaction(), o.NotifyURL
	s.mu.Unlock()
	s.env.Record(Vendor, "pay", outTradeNo, tx, nil)
	body, err := NotifyBody(s.cfg.APIv3Key, tx, nonce()[:12], s.cfg.Now())
	if err != nil {
		return err
	}
	err = sim.Deliver(ctx, s.env.Client, notifyURL, body, func(h http.Header) {
		if signed, err := wire.SignResponse(s.key, s.cfg.Serial, body, s.cfg.Now(), nonce()); err == nil {
			signed.Set(h)
		}
	})
	s.mu.Lock()
	o.Notified = err == nil
	s.mu.Unlock()
	if err != nil {
		s.env.VendorLog(Vendor).Warn("notify not acknowledged", "out_trade_no", outTradeNo, "err", err)
	}
	return err
}

// NotifyBody is the TRANSACTION.SUCCESS notify of tx, its resource encrypted with apiV3Key
// under resourceNonce (12 bytes).
func NotifyBody(apiV3Key string, tx wire.Transaction, resourceNonce string, now time.Time) ([]byte, error) {
	pt, err := json.Marshal(tx)
	if err != nil {
		return nil, err
	}
	ct, err := wire.Encrypt(apiV3Key, resourceNonce, "transaction", pt)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte(tx.OutTradeNo + tx.TradeState))
	return json.Marshal(wire.Notify{ID: hex.EncodeToString(h[:16]), CreateTime: now.Format(time.RFC3339), ResourceType: wire.ResourceEncrypted,
		EventType: wire.EventTransactionSuccess, Summary: "支付成功", Resource: wire.Resource{OriginalType: "transaction",
			Algorithm: wire.AlgorithmAEAD, Ciphertext: ct, AssociatedData: "transaction", Nonce: resourceNonce}})
}
