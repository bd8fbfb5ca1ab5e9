// Package oms is the wire format of the order management system (OMS) that both the oms
// connector and the sandbox simulator speak. There is no public vendor behind it: it is a
// plausible REST API of a typical Chinese e-commerce OMS (聚水潭, 旺店通, 管易云 and the
// platforms' open APIs share its traits), documented here and served by sandbox/oms.
//
// # Transport
//
// HTTPS, JSON bodies in UTF-8. Every response is an envelope
//
//	{"code": 0, "msg": "success", "request_id": "…", "data": …}
//
// with code 0 on success. Errors keep the envelope, carry a non-zero code and an HTTP status that
// matches it (see the Code* constants): 400 bad parameter, 401 authentication, 404 no such order,
// 429 throttled (with Retry-After seconds), 500/503 system errors.
//
// # Signature
//
// Every request carries, in its query string: app_key, timestamp (Unix seconds), nonce (16 to 64
// characters [0-9A-Za-z]), sign_method=hmac-sha256 and sign, where
//
//	sign = upper(hex(HMAC-SHA256(app_secret, string_to_sign)))
//	string_to_sign = METHOD "\n" PATH "\n" canonical_query "\n" lower(hex(SHA256(body)))
//
// canonical_query is every query parameter except sign, sorted by name (then value), each as
// name=value percent-encoded per RFC 3986 (unreserved characters A-Z a-z 0-9 - _ . ~ kept, space
// as %20), joined with "&". PATH is the request path as sent (percent-encoded form), including
// the API base path. The body hash covers the raw bytes sent (SHA-256 of the empty string for GET).
// The server rejects a timestamp more than 300 s from its clock (40103) and a nonce it saw within
// that window (40104).
//
// # Resources
//
//	GET  {base}/v1/orders?mobile=13800138000&page=1&page_size=10   recent orders of a buyer, newest first
//	GET  {base}/v1/orders/{order_no}                               one order
//	POST {base}/v1/aftersale/service-records                       archive a customer-service record
//	POST {base}/v1/aftersale/service-records/remarks               append a remark to an archived record
//
// mobile is the buyer's mobile as the shops store it (11 national digits for Chinese numbers;
// E.164 is accepted too). Orders come with their items, amounts (yuan, two decimals, as strings),
// status and waybills. Personal data of the receiver is masked by the OMS (138****8000, 张*).
// Times are "2006-01-02 15:04:05" in China Standard Time (UTC+8), as Chinese systems write them.
//
// A service record is idempotent by external_id: posting the same external_id again returns the
// first record with duplicate true and writes nothing.
//
// A remark (追加备注: what was learnt after the record was written, e.g. the conversation's
// summary) names its record by external_id and is idempotent by remark_id within it: posting the
// same remark_id again returns the first remark with duplicate true. A remark on a record the OMS
// does not have is refused with 40402 (HTTP 404).
package oms

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Query parameter names of the signature.
const (
	ParamAppKey     = "app_key"
	ParamTimestamp  = "timestamp"
	ParamNonce      = "nonce"
	ParamSignMethod = "sign_method"
	ParamSign       = "sign"
	SignMethod      = "hmac-sha256"
)

// Paths below the API base.
const (
	PathOrders         = "/v1/orders"
	PathServiceRecords = "/v1/aftersale/service-records"
	PathRecordRemarks  = "/v1/aftersale/service-records/remarks"
)

// Window is how far a request timestamp may be from the server's clock.
const Window = 300 * time.Second

// TimeLayout is how the OMS writes times, in CST (UTC+8).
const TimeLayout = "2006-01-02 15:04:05"

// CST is China Standard Time.
var CST = time.FixedZone("CST", 8*3600)

// FormatTime writes t as the OMS does.
func FormatTime(t time.Time) string { return t.In(CST).Format(TimeLayout) }

// ParseTime reads an OMS time.
func ParseTime(s string) (time.Time, error) { return time.ParseInLocation(TimeLayout, s, CST) }

// Encode percent-encodes s per RFC 3986 (unreserved characters kept, everything else %XX).
func Encode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// CanonicalQuery returns the sorted, encoded query of the signature, without sign.
func CanonicalQuery(q url.Values) string {
	type kv struct{ k, v string }
	var pairs []kv
	for k, vs := range q {
		if k == ParamSign {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, kv{k, v})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = Encode(p.k) + "=" + Encode(p.v)
	}
	return strings.Join(parts, "&")
}

// StringToSign returns the string the signature covers.
func StringToSign(method, path string, q url.Values, body []byte) string {
	h := sha256.Sum256(body)
	return method + "\n" + path + "\n" + CanonicalQuery(q) + "\n" + hex.EncodeToString(h[:])
}

// Sign returns upper(hex(HMAC-SHA256(secret, StringToSign(...)))).
func Sign(secret, method, path string, q url.Values, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(StringToSign(method, path, q, body)))
	return strings.ToUpper(hex.EncodeToString(m.Sum(nil)))
}

// SignRequest adds app_key, timestamp, nonce, sign_method and sign to req's query, signing body
// (the exact bytes req sends). nonce must be 16 to 64 characters [0-9A-Za-z].
func SignRequest(req *http.Request, appKey, secret string, body []byte, now time.Time, nonce string) {
	q := req.URL.Query()
	q.Set(ParamAppKey, appKey)
	q.Set(ParamTimestamp, strconv.FormatInt(now.Unix(), 10))
	q.Set(ParamNonce, nonce)
	q.Set(ParamSignMethod, SignMethod)
	q.Del(ParamSign)
	q.Set(ParamSign, Sign(secret, req.Method, req.URL.EscapedPath(), q, body))
	req.URL.RawQuery = q.Encode()
}

// Sentinels of Verify; the simulator maps them to codes 40101..40104 and 40001.
var (
	ErrMissing   = errors.New("oms: signature parameter missing or malformed")
	ErrAppKey    = errors.New("oms: unknown app_key")
	ErrSignature = errors.New("oms: signature does not match")
	ErrTimestamp = errors.New("oms: timestamp outside the allowed window")
)

var nonceRE = regexp.MustCompile(`^[0-9A-Za-z]{16,64}$`)

// Verified is what Verify established: the caller and its nonce (for the replay check, which
// needs state and belongs to the server).
type Verified struct {
	AppKey string
	Nonce  string
	At     time.Time
}

// Verify checks the signature of req, whose body the server read as body. secretOf returns the
// secret of an app_key. Errors wrap ErrMissing, ErrAppKey, ErrTimestamp or ErrSignature.
func Verify(req *http.Request, body []byte, secretOf func(appKey string) (string, bool), now time.Time) (Verified, error) {
	q, err := url.ParseQuery(req.URL.RawQuery)
	if err != nil {
		return Verified{}, fmt.Errorf("%w: query: %w", ErrMissing, err)
	}
	for _, p := range []string{ParamAppKey, ParamTimestamp, ParamNonce, ParamSignMethod, ParamSign} {
		if len(q[p]) != 1 || q.Get(p) == "" {
			return Verified{}, fmt.Errorf("%w: %s must appear once", ErrMissing, p)
		}
	}
	if q.Get(ParamSignMethod) != SignMethod {
		return Verified{}, fmt.Errorf("%w: sign_method must be %s", ErrMissing, SignMethod)
	}
	if !nonceRE.MatchString(q.Get(ParamNonce)) {
		return Verified{}, fmt.Errorf("%w: nonce must be 16 to 64 characters [0-9A-Za-z]", ErrMissing)
	}
	ts, err := strconv.ParseInt(q.Get(ParamTimestamp), 10, 64)
	if err != nil {
		return Verified{}, fmt.Errorf("%w: timestamp must be Unix seconds", ErrMissing)
	}
	at := time.Unix(ts, 0)
	if d := now.Sub(at); d > Window || d < -Window {
		return Verified{}, fmt.Errorf("%w: %s from the server clock", ErrTimestamp, d.Round(time.Second))
	}
	secret, ok := secretOf(q.Get(ParamAppKey))
	if !ok {
		return Verified{}, ErrAppKey
	}
	want := Sign(secret, req.Method, req.URL.EscapedPath(), q, body)
	if !hmac.Equal([]byte(strings.ToUpper(q.Get(ParamSign))), []byte(want)) {
		return Verified{}, ErrSignature
	}
	return Verified{AppKey: q.Get(ParamAppKey), Nonce: q.Get(ParamNonce), At: at}, nil
}

// Response codes. The HTTP status of each is given by Status.
const (
	CodeOK              = 0
	CodeMissingParam    = 40001
	CodeInvalidParam    = 40002
	CodeInvalidAppKey   = 40101
	CodeSignature       = 40102
	CodeTimestamp       = 40103
	CodeNonceReplayed   = 40104
	CodeOrderNotFound   = 40401
	CodeRecordNotFound  = 40402
	CodeRateLimited     = 42901
	CodeSystemError     = 50001
	CodeServiceUnavail  = 50301
	CodeGatewayTimeout  = 50401
	CodeUnknownResponse = -1 // not an OMS code: the body was not an envelope
)

// Status returns the HTTP status the OMS answers code with.
func Status(code int) int {
	switch {
	case code == CodeOK:
		return http.StatusOK
	case code >= 40000 && code < 60000:
		return code / 100
	}
	return http.StatusInternalServerError
}

// Error is a response with a non-zero code.
type Error struct {
	HTTPStatus int
	Code       int
	Msg        string
	RequestID  string
	RetryAfter time.Duration // from Retry-After, for 42901
}

func (e *Error) Error() string {
	return fmt.Sprintf("oms: code %d: %s (HTTP %d, request %s)", e.Code, e.Msg, e.HTTPStatus, e.RequestID)
}

// Is matches another *Error by code, so errors.Is(err, ErrOrderNotFound) works on decoded errors.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Temporary reports whether the call may succeed if repeated (throttling and system errors).
func (e *Error) Temporary() bool { return e.Code == CodeRateLimited || e.Code >= 50000 || e.Code < 0 }

// Sentinels matched by code.
var (
	ErrOrderNotFound  = &Error{Code: CodeOrderNotFound}
	ErrRecordNotFound = &Error{Code: CodeRecordNotFound}
	ErrRateLimited    = &Error{Code: CodeRateLimited}
	ErrNonceReplayed  = &Error{Code: CodeNonceReplayed}
)

// Envelope is the shape of every response.
type Envelope struct {
	Code      int             `json:"code"`
	Msg       string          `json:"msg"`
	RequestID string          `json:"request_id"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// ErrMalformedBody is wrapped when a response is not what this API documents.
var ErrMalformedBody = errors.New("oms: malformed response body")

const maxBody = 8 << 20

// ParseResponse decodes a response: on code 0 it decodes data into v (which may be nil) and
// checks it if v has a Check() error method; otherwise it returns an *Error. A body that is not an
// envelope yields an *Error with code CodeUnknownResponse and the HTTP status (a proxy's error
// page), or, for a 2xx, an error wrapping ErrMalformedBody.
func ParseResponse(status int, header http.Header, body []byte, v any) error {
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if len(body) > maxBody || dec.Decode(&env) != nil || (env.Code == 0 && env.Msg == "" && env.RequestID == "") {
		if status >= 200 && status < 300 {
			return fmt.Errorf("%w: not an envelope", ErrMalformedBody)
		}
		return &Error{HTTPStatus: status, Code: CodeUnknownResponse, Msg: http.StatusText(status)}
	}
	if env.Code != CodeOK {
		e := &Error{HTTPStatus: status, Code: env.Code, Msg: env.Msg, RequestID: env.RequestID}
		if s, err := strconv.Atoi(header.Get("Retry-After")); err == nil && s >= 0 && s < 3600 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	if status < 200 || status >= 300 {
		return fmt.Errorf("%w: code 0 with HTTP %d", ErrMalformedBody, status)
	}
	if v == nil {
		return nil
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return fmt.Errorf("%w: no data", ErrMalformedBody)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		return fmt.Errorf("%w: data: %w", ErrMalformedBody, err)
	}
	if c, ok := v.(interface{ Check() error }); ok {
		if err := c.Check(); err != nil {
			return fmt.Errorf("%w: %w", ErrMalformedBody, err)
		}
	}
	return nil
}

// NewEnvelope renders a response body.
func NewEnvelope(code int, msg, requestID string, data any) []byte {
	env := map[string]any{"code": code, "msg": msg, "request_id": requestID}
	if data != nil {
		env["data"] = data
	}
	b, _ := json.Marshal(env)
	return b
}
