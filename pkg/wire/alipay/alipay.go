// Package alipay is the wire format of the Alipay open platform gateway (openapi.alipay.com/
// gateway.do) that the payment connector and the sandbox simulator both speak: the RSA2
// (SHA256withRSA) request signature and its verifier, the synchronous response and its signature
// over the raw response text, the asynchronous trade notify and its rsaCheckV1 verification, and
// the bodies of alipay.trade.precreate / wap.pay / query / close. It holds no secrets: callers
// pass the keys.
//
// Signing (vendors/README.md §9.2): every parameter but sign, empty values dropped, sorted by key,
// joined k=v with & over the raw values. Responses (§9.3) are verified over the exact bytes of the
// "<method>_response" member as received (escaped slashes included), never a re-serialisation.
// Notifies (§9.4, rsaCheckV1) drop sign and sign_type before the same join.
package alipay

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/wire/internal/rsasig"
)

// Gateway paths and constants.
const (
	// Path is the gateway's path below its base (https://openapi.alipay.com).
	Path        = "/gateway.do"
	ContentType = "application/x-www-form-urlencoded;charset=utf-8"
	SignType    = "RSA2"
	Version     = "1.0"
	Charset     = "utf-8"
	Format      = "JSON"
	// TimeLayout is the layout of timestamp, notify_time and gmt_* (GMT+8).
	TimeLayout = "2006-01-02 15:04:05"
)

// Methods.
const (
	MethodPrecreate = "alipay.trade.precreate"
	MethodWapPay    = "alipay.trade.wap.pay"
	MethodQuery     = "alipay.trade.query"
	MethodClose     = "alipay.trade.close"
)

// Product codes.
const (
	ProductFaceToFace = "FACE_TO_FACE_PAYMENT"
	ProductQuickWap   = "QUICK_WAP_WAY"
)

// Result codes (code) and trade statuses.
const (
	CodeSuccess       = "10000"
	CodeUnavailable   = "20000" // service temporarily unavailable
	CodeAuthMissing   = "20001"
	CodeMissingParam  = "40001"
	CodeInvalidParam  = "40002" // isv.invalid-signature, isv.invalid-app-id, ...
	CodeBusinessFail  = "40004"
	CodeNoPermission  = "40006"
	SubInvalidSign    = "isv.invalid-signature"
	SubInvalidAppID   = "isv.invalid-app-id"
	SubTradeNotExist  = "ACQ.TRADE_NOT_EXIST"
	SubTradeHasPaid   = "ACQ.TRADE_HAS_SUCCESS"
	SubTradeStatusErr = "ACQ.TRADE_STATUS_ERROR"
	SubInconsistent   = "ACQ.CONTEXT_INCONSISTENT"
	SubSystemError    = "ACQ.SYSTEM_ERROR"

	TradeWaitBuyerPay = "WAIT_BUYER_PAY"
	TradeSuccess      = "TRADE_SUCCESS"
	TradeFinished     = "TRADE_FINISHED"
	TradeClosed       = "TRADE_CLOSED"

	NotifyTypeTrade = "trade_status_sync"
	// NotifyAck is the body that acknowledges a notify; anything else is retried.
	NotifyAck = "success"
)

// Sentinels.
var (
	// ErrSignature: a signature is missing or does not verify.
	ErrSignature = rsasig.ErrSignature
	// ErrKey: a key cannot be read.
	ErrKey = rsasig.ErrKey
	// ErrMalformed: a body is not the gateway's shape.
	ErrMalformed = errors.New("alipay: malformed")
)

// China is GMT+8, the zone of every Alipay timestamp.
var China = time.FixedZone("CST", 8*3600)

// FormatTime formats t as Alipay writes timestamps.
func FormatTime(t time.Time) string { return t.In(China).Format(TimeLayout) }

// ParseTime reads an Alipay timestamp.
func ParseTime(s string) (time.Time, error) { return time.ParseInLocation(TimeLayout, s, China) }

// ParsePrivateKey reads the app private key (PEM PKCS#1/PKCS#8 or the bare base64 the Alipay
// key tool writes).
func ParsePrivateKey(s string) (*rsa.PrivateKey, error) { return rsasig.ParsePrivate(s) }

// ParsePublicKey reads the Alipay public key (PEM, bare base64 SPKI, or a certificate).
func ParsePublicKey(s string) (*rsa.PublicKey, error) { return rsasig.ParsePublic(s) }

// Content is the string to sign of params: every key but those in exclude, empty values dropped,
// sorted by key, joined k=v with &, values raw (not URL-encoded). Of several values of a key the
// first counts.
func Content(params url.Values, exclude ...string) string {
	keys := make([]string, 0, len(params))
	for k, vs := range params {
		if len(vs) == 0 || vs[0] == "" || k == "sign" {
			continue
		}
		skip := false
		for _, x := range exclude {
			skip = skip || k == x
		}
		if !skip {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params.Get(k))
	}
	return b.String()
}

// Sign returns the base64 RSA2 signature of content.
func Sign(key *rsa.PrivateKey, content string) (string, error) {
	return rsasig.Sign(key, []byte(content))
}

// Verify checks an RSA2 signature of content with the public key; the error wraps ErrSignature.
func Verify(key *rsa.PublicKey, content, sign string) error {
	return rsasig.Verify(key, []byte(content), sign)
}

// Request is one gateway call's common parameters and biz_content.
type Request struct {
	AppID      string
	Method     string
	NotifyURL  string
	ReturnURL  string
	Timestamp  time.Time
	BizContent any // marshalled to JSON
}

// Params returns the request's parameters, signed with the app private key (sign_type included
// in the signed content, as the gateway requires).
func (r Request) Params(key *rsa.PrivateKey) (url.Values, error) {
	biz, err := json.Marshal(r.BizContent)
	if err != nil {
		return nil, err
	}
	p := url.Values{}
	p.Set("app_id", r.AppID)
	p.Set("method", r.Method)
	p.Set("format", Format)
	p.Set("charset", Charset)
	p.Set("sign_type", SignType)
	p.Set("timestamp", FormatTime(r.Timestamp))
	p.Set("version", Version)
	if r.NotifyURL != "" {
		p.Set("notify_url", r.NotifyURL)
	}
	if r.ReturnURL != "" {
		p.Set("return_url", r.ReturnURL)
	}
	p.Set("biz_content", string(biz))
	sig, err := Sign(key, Content(p))
	if err != nil {
		return nil, err
	}
	p.Set("sign", sig)
	return p, nil
}

// VerifyRequest checks a request's sign (the gateway side: sign_type included).
func VerifyRequest(key *rsa.PublicKey, params url.Values) error {
	sig := params.Get("sign")
	if sig == "" {
		return fmt.Errorf("%w: no sign", ErrSignature)
	}
	if st := params.Get("sign_type"); st != SignType {
		return fmt.Errorf("%w: sign_type %q, want RSA2", ErrSignature, st)
	}
	return Verify(key, Content(params), sig)
}

// ResponseKey is the member of a response body that holds method's answer.
func ResponseKey(method string) string { return strings.ReplaceAll(method, ".", "_") + "_response" }

// SplitResponse returns the raw text of the response member of method (or of error_response,
// which the gateway answers for calls it could not route) and the sign, from a body as received.
func SplitResponse(body []byte, method string) (raw json.RawMessage, sign string, err error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	raw, ok := top[ResponseKey(method)]
	if !ok {
		if raw, ok = top["error_response"]; !ok {
			return nil, "", fmt.Errorf("%w: no %s", ErrMalformed, ResponseKey(method))
		}
	}
	if s, ok := top["sign"]; ok {
		if err := json.Unmarshal(s, &sign); err != nil {
			return nil, "", fmt.Errorf("%w: sign: %w", ErrMalformed, err)
		}
	}
	return raw, sign, nil
}

// VerifyResponse splits body and verifies its sign over the raw response text with the Alipay
// public key, then decodes the answer into out, which is zeroed first (a retry must not inherit
// the sub_code of the attempt before it). An unsigned answer is accepted only when it is a
// gateway error (a code other than 10000), which Alipay does not always sign; out then carries it.
func VerifyResponse(key *rsa.PublicKey, body []byte, method string, out Result) error {
	raw, sign, err := SplitResponse(body, method)
	if err != nil {
		return err
	}
	if v := reflect.ValueOf(out); v.Kind() == reflect.Pointer && !v.IsNil() {
		v.Elem().SetZero()
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if sign == "" {
		if out.Head().Code == CodeSuccess {
			return fmt.Errorf("%w: a successful answer without sign", ErrSignature)
		}
		return nil
	}
	return Verify(key, string(raw), sign)
}

// EncodeResponse is the gateway side: {"<method>_response":<answer>,"sign":"..."} signed with the
// Alipay private key over answer's JSON. Go's encoder escapes no slashes; the verifier takes the
// bytes as they are either way.
func EncodeResponse(key *rsa.PrivateKey, method string, answer any) ([]byte, error) {
	raw, err := json.Marshal(answer)
	if err != nil {
		return nil, err
	}
	sig, err := Sign(key, string(raw))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"`)
	b.WriteString(ResponseKey(method))
	b.WriteString(`":`)
	b.Write(raw)
	b.WriteString(`,"sign":`)
	q, _ := json.Marshal(sig)
	b.Write(q)
	b.WriteString("}")
	return b.Bytes(), nil
}

// Result is implemented by every response body.
type Result interface{ Head() *Common }

// Common are the fields of every answer.
type Common struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code,omitempty"`
	SubMsg  string `json:"sub_msg,omitempty"`
}

// Head returns c.
func (c *Common) Head() *Common { return c }

// Err is nil for code 10000, else an *Error.
func (c *Common) Err() error {
	if c.Code == CodeSuccess {
		return nil
	}
	return &Error{Code: c.Code, Msg: c.Msg, SubCode: c.SubCode, SubMsg: c.SubMsg}
}

// Error is a gateway or business failure.
type Error struct{ Code, Msg, SubCode, SubMsg string }

func (e *Error) Error() string {
	return fmt.Sprintf("alipay: %s %s: %s %s", e.Code, e.Msg, e.SubCode, e.SubMsg)
}

// VendorCode is the code a caller classifies by: the sub_code when there is one.
func (e *Error) VendorCode() string {
	if e.SubCode != "" {
		return e.SubCode
	}
	return e.Code
}

// PrecreateBiz is the biz_content of alipay.trade.precreate.
type PrecreateBiz struct {
	OutTradeNo  string `json:"out_trade_no"`
	TotalAmount string `json:"total_amount"`
	Subject     string `json:"subject"`
	ProductCode string `json:"product_code,omitempty"`
	TimeExpire  string `json:"time_expire,omitempty"` // yyyy-MM-dd HH:mm:ss, GMT+8
}

// PrecreateResponse is the answer of alipay.trade.precreate.
type PrecreateResponse struct {
	Common
	OutTradeNo string `json:"out_trade_no,omitempty"`
	QRCode     string `json:"qr_code,omitempty"`
}

// WapPayBiz is the biz_content of alipay.trade.wap.pay.
type WapPayBiz struct {
	OutTradeNo  string `json:"out_trade_no"`
	TotalAmount string `json:"total_amount"`
	Subject     string `json:"subject"`
	ProductCode string `json:"product_code"`
	TimeExpire  string `json:"time_expire,omitempty"`
	QuitURL     string `json:"quit_url,omitempty"`
}

// TradeRef is the biz_content of alipay.trade.query and alipay.trade.close.
type TradeRef struct {
	OutTradeNo string `json:"out_trade_no,omitempty"`
	TradeNo    string `json:"trade_no,omitempty"`
}

// QueryResponse is the answer of alipay.trade.query.
type QueryResponse struct {
	Common
	TradeNo      string `json:"trade_no,omitempty"`
	OutTradeNo   string `json:"out_trade_no,omitempty"`
	TradeStatus  string `json:"trade_status,omitempty"`
	TotalAmount  string `json:"total_amount,omitempty"`
	BuyerLogonID string `json:"buyer_logon_id,omitempty"`
	SendPayDate  string `json:"send_pay_date,omitempty"`
}

// CloseResponse is the answer of alipay.trade.close.
type CloseResponse struct {
	Common
	TradeNo    string `json:"trade_no,omitempty"`
	OutTradeNo string `json:"out_trade_no,omitempty"`
}

// PageURL is the link of a page-redirect method (alipay.trade.wap.pay): the gateway URL with the
// signed parameters as its query. No call is made; the customer's browser opens it.
func PageURL(gateway string, params url.Values) string { return gateway + "?" + params.Encode() }

// FormatYuan writes an amount in fen as Alipay's total_amount (yuan, two decimals).
func FormatYuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

// ParseYuan reads a decimal yuan amount ("88.88", "0.1", "5") into fen, exactly.
func ParseYuan(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(whole) > 12 || len(frac) > 2 || strings.HasPrefix(whole, "-") || strings.HasPrefix(whole, "+") {
		return 0, fmt.Errorf("%w: amount %q", ErrMalformed, s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: amount %q", ErrMalformed, s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil || strings.HasPrefix(frac, "-") || strings.HasPrefix(frac, "+") {
		return 0, fmt.Errorf("%w: amount %q", ErrMalformed, s)
	}
	return w*100 + f, nil
}
