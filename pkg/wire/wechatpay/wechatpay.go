// Package wechatpay is the wire format of WeChat Pay API v3 (api.mch.weixin.qq.com) that the
// payment connector and the sandbox simulator both speak: the WECHATPAY2-SHA256-RSA2048
// Authorization of requests (merchant key) and its verifier, the Wechatpay-* signature of
// responses and notifies (platform key, selected by Wechatpay-Serial) and its verifier, the
// AEAD_AES_256_GCM resource of notifies (APIv3 key), and the bodies of Native and H5 orders,
// query and close. It holds no secrets: callers pass the keys.
//
// Messages (vendors/README.md §10.2–10.3): a request signs METHOD\nURL\ntimestamp\nnonce\nbody\n
// (URL = path and query; an empty body still ends with \n); a response or notify signs
// timestamp\nnonce\nbody\n over the exact body bytes.
package wechatpay

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/wire/internal/rsasig"
)

// Constants of API v3.
const (
	Schema          = "WECHATPAY2-SHA256-RSA2048"
	HeaderSignature = "Wechatpay-Signature"
	HeaderTimestamp = "Wechatpay-Timestamp"
	HeaderNonce     = "Wechatpay-Nonce"
	HeaderSerial    = "Wechatpay-Serial"
	HeaderRequestID = "Request-ID"
	AlgorithmAEAD   = "AEAD_AES_256_GCM"

	PathNative = "/v3/pay/transactions/native"
	PathH5     = "/v3/pay/transactions/h5"
	// PathOutTradeNo is the prefix of query (GET <prefix><no>?mchid=) and close
	// (POST <prefix><no>/close).
	PathOutTradeNo = "/v3/pay/transactions/out-trade-no/"

	EventTransactionSuccess = "TRANSACTION.SUCCESS"
	ResourceEncrypted       = "encrypt-resource"

	StateSuccess  = "SUCCESS"
	StateNotPay   = "NOTPAY"
	StateClosed   = "CLOSED"
	StateRefund   = "REFUND"
	StateUserPay  = "USERPAYING"
	StatePayError = "PAYERROR"

	// Error codes (the body's code).
	CodeParamError     = "PARAM_ERROR"
	CodeSignError      = "SIGN_ERROR"
	CodeOrderPaid      = "ORDERPAID"
	CodeOrderClosed    = "ORDER_CLOSED"
	CodeOrderNotExist  = "ORDER_NOT_EXIST"
	CodeSystemError    = "SYSTEM_ERROR"
	CodeFrequencyLimit = "FREQUENCY_LIMITED"
	CodeInvalidRequest = "INVALID_REQUEST"
	CodeNoAuth         = "NO_AUTH"
)

// Sentinels.
var (
	ErrSignature = rsasig.ErrSignature
	ErrKey       = rsasig.ErrKey
	// ErrMalformed: a header or body is not API v3's shape.
	ErrMalformed = errors.New("wechatpay: malformed")
	// ErrExpired: a signed timestamp outside the window.
	ErrExpired = errors.New("wechatpay: timestamp outside window")
	// ErrSerial: a signature names a serial whose key is not known.
	ErrSerial = errors.New("wechatpay: unknown serial")
	// ErrDecrypt: a resource that does not decrypt with the APIv3 key.
	ErrDecrypt = errors.New("wechatpay: resource does not decrypt")
)

// ParsePrivateKey reads the merchant's apiclient_key.pem (PKCS#8) or a bare base64 key.
func ParsePrivateKey(s string) (*rsa.PrivateKey, error) { return rsasig.ParsePrivate(s) }

// ParsePublicKey reads a platform certificate or WeChat Pay public key (PEM or base64).
func ParsePublicKey(s string) (*rsa.PublicKey, error) { return rsasig.ParsePublic(s) }

// Sign returns the base64 SHA256withRSA signature of message.
func Sign(key *rsa.PrivateKey, message string) (string, error) {
	return rsasig.Sign(key, []byte(message))
}

// Verify checks a SHA256withRSA signature of message; the error wraps ErrSignature.
func Verify(key *rsa.PublicKey, message, sig string) error {
	return rsasig.Verify(key, []byte(message), sig)
}

// RequestMessage is what a request's Authorization signs.
func RequestMessage(method, pathQuery, timestamp, nonce string, body []byte) string {
	return method + "\n" + pathQuery + "\n" + timestamp + "\n" + nonce + "\n" + string(body) + "\n"
}

// ResponseMessage is what Wechatpay-Signature signs on a response or notify.
func ResponseMessage(timestamp, nonce string, body []byte) string {
	return timestamp + "\n" + nonce + "\n" + string(body) + "\n"
}

// Auth is the content of a WECHATPAY2-SHA256-RSA2048 Authorization header.
type Auth struct {
	MchID, Nonce, Timestamp, Serial, Signature string
}

// String formats the header value as wechatpay-go does.
func (a Auth) String() string {
	return fmt.Sprintf(`%s mchid="%s",nonce_str="%s",timestamp="%s",serial_no="%s",signature="%s"`,
		Schema, a.MchID, a.Nonce, a.Timestamp, a.Serial, a.Signature)
}

// SignRequest returns the Authorization of a request signed with the merchant key.
func SignRequest(key *rsa.PrivateKey, mchID, serial, method, pathQuery string, body []byte, ts time.Time, nonce string) (Auth, error) {
	t := strconv.FormatInt(ts.Unix(), 10)
	sig, err := Sign(key, RequestMessage(method, pathQuery, t, nonce, body))
	if err != nil {
		return Auth{}, err
	}
	return Auth{MchID: mchID, Nonce: nonce, Timestamp: t, Serial: serial, Signature: sig}, nil
}

// ParseAuthorization reads an Authorization header value.
func ParseAuthorization(h string) (Auth, error) {
	rest, ok := strings.CutPrefix(h, Schema+" ")
	if !ok {
		return Auth{}, fmt.Errorf("%w: Authorization is not %s", ErrMalformed, Schema)
	}
	var a Auth
	for kv := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return Auth{}, fmt.Errorf("%w: Authorization field %q", ErrMalformed, kv)
		}
		v = v[1 : len(v)-1]
		switch k {
		case "mchid":
			a.MchID = v
		case "nonce_str":
			a.Nonce = v
		case "timestamp":
			a.Timestamp = v
		case "serial_no":
			a.Serial = v
		case "signature":
			a.Signature = v
		}
	}
	if a.MchID == "" || a.Nonce == "" || a.Timestamp == "" || a.Serial == "" || a.Signature == "" {
		return Auth{}, fmt.Errorf("%w: Authorization lacks a field", ErrMalformed)
	}
	return a, nil
}

// VerifyRequest is the platform side: it checks a request's Authorization with the merchant's
// public key and the timestamp within window of now.
func VerifyRequest(key *rsa.PublicKey, a Auth, method, pathQuery string, body []byte, now time.Time, window time.Duration) error {
	if err := checkTime(a.Timestamp, now, window); err != nil {
		return err
	}
	return Verify(key, RequestMessage(method, pathQuery, a.Timestamp, a.Nonce, body), a.Signature)
}

func checkTime(ts string, now time.Time, window time.Duration) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrMalformed, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return fmt.Errorf("%w: %s from now (window %s)", ErrExpired, d.Round(time.Second), window)
	}
	return nil
}

// Signed are the Wechatpay-* headers of a response or notify.
type Signed struct {
	Timestamp, Nonce, Serial, Signature string
}

// SignedFrom reads the Wechatpay-* headers.
func SignedFrom(h http.Header) Signed {
	return Signed{Timestamp: h.Get(HeaderTimestamp), Nonce: h.Get(HeaderNonce), Serial: h.Get(HeaderSerial), Signature: h.Get(HeaderSignature)}
}

// Set writes s as headers on h.
func (s Signed) Set(h http.Header) {
	h.Set(HeaderTimestamp, s.Timestamp)
	h.Set(HeaderNonce, s.Nonce)
	h.Set(HeaderSerial, s.Serial)
	h.Set(HeaderSignature, s.Signature)
}

// SignResponse is the platform side: the headers of body signed with the platform key.
func SignResponse(key *rsa.PrivateKey, serial string, body []byte, ts time.Time, nonce string) (Signed, error) {
	t := strconv.FormatInt(ts.Unix(), 10)
	sig, err := Sign(key, ResponseMessage(t, nonce, body))
	if err != nil {
		return Signed{}, err
	}
	return Signed{Timestamp: t, Nonce: nonce, Serial: serial, Signature: sig}, nil
}

// Keys are the platform public keys by serial (certificate serial or PUB_KEY_ID_...).
type Keys map[string]*rsa.PublicKey

// VerifyResponse checks a response's or notify's Wechatpay-* headers over the exact body: the
// serial must name a known key, the timestamp be within window of now, the signature verify.
// Errors wrap ErrMalformed, ErrSerial, ErrExpired or ErrSignature. A signature-probe
// (WECHATPAY/SIGNTEST/...) fails as any wrong signature does.
func VerifyResponse(keys Keys, s Signed, body []byte, now time.Time, window time.Duration) error {
	if s.Timestamp == "" || s.Nonce == "" || s.Serial == "" || s.Signature == "" {
		return fmt.Errorf("%w: missing Wechatpay-* headers", ErrMalformed)
	}
	key, ok := keys[s.Serial]
	if !ok {
		return fmt.Errorf("%w: %s", ErrSerial, s.Serial)
	}
	if err := checkTime(s.Timestamp, now, window); err != nil {
		return err
	}
	return Verify(key, ResponseMessage(s.Timestamp, s.Nonce, body), s.Signature)
}

// Decrypt opens an AEAD_AES_256_GCM resource with the APIv3 key: nonce and associated data as
// UTF-8 bytes, ciphertext base64 with the 16-byte tag at its end.
func Decrypt(apiV3Key, nonce, associatedData, ciphertextB64 string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(ciphertextB64)
	if err != nil {
		return nil, fmt.Errorf("%w: ciphertext is not base64", ErrDecrypt)
	}
	gcm, err := newGCM(apiV3Key, nonce)
	if err != nil {
		return nil, err
	}
	pt, err := gcm.Open(nil, []byte(nonce), ct, []byte(associatedData))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecrypt, err)
	}
	return pt, nil
}

// Encrypt is the platform side of Decrypt.
func Encrypt(apiV3Key, nonce, associatedData string, plaintext []byte) (string, error) {
	gcm, err := newGCM(apiV3Key, nonce)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(gcm.Seal(nil, []byte(nonce), plaintext, []byte(associatedData))), nil
}

func newGCM(key, nonce string) (cipher.AEAD, error) {
	block, err := aes.NewCipher([]byte(key))
	if err != nil {
		return nil, fmt.Errorf("%w: APIv3 key: %w", ErrDecrypt, err)
	}
	if len(nonce) != 12 {
		return nil, fmt.Errorf("%w: nonce of %d bytes, want 12", ErrDecrypt, len(nonce))
	}
	return cipher.NewGCM(block)
}
