// Package sfexpress is the SF Express (顺丰, open platform "丰桥") wire format shared by the logistics
// connector and the sandbox simulator: the form-encoded service call (partnerID, requestID,
// serviceCode, timestamp, msgData, msgDigest), the "标准MD5" msgDigest with Java URLEncoder
// semantics, the route query (EXP_RECE_SEARCH_ROUTES) payload, and the doubly encoded response
// (apiResultCode A1000, then apiResultData — a JSON string — with success/errorCode S0000).
//
// Every signature is computed over the exact strings sent: msgData is signed as the bytes that
// go into the form, never a re-marshalled struct.
package sfexpress

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Endpoints of the SF open platform (POST, application/x-www-form-urlencoded;charset=UTF-8).
const (
	ProductionURL = "https://bspgw.sf-express.com/std/service"
	SandboxURL    = "https://sfapi-sbox.sf-express.com/std/service"
	HongKongURL   = "https://sfapi-hk.sf-express.com/std/service"
	// Path is the path of the service endpoint below its host.
	Path = "/std/service"
	// ContentType is what SF expects on the service call.
	ContentType = "application/x-www-form-urlencoded;charset=UTF-8"
)

// ServiceRouteQuery is the serviceCode of the route query.
const ServiceRouteQuery = "EXP_RECE_SEARCH_ROUTES"

// Form field names of a service call.
const (
	FieldPartnerID   = "partnerID"
	FieldRequestID   = "requestID"
	FieldServiceCode = "serviceCode"
	FieldTimestamp   = "timestamp"
	FieldMsgData     = "msgData"
	FieldMsgDigest   = "msgDigest"
	FieldAccessToken = "accessToken"
)

// Platform result codes (apiResultCode).
const (
	CodeOK           = "A1000" // platform OK; the business result is inside apiResultData
	CodeMissingParam = "A1001" // a required parameter is missing
	CodeTokenExpired = "A1002" // accessToken expired (A1011 is seen too)
	CodeIPDenied     = "A1003" // caller IP not allowed
	CodeNoPermission = "A1004" // no permission for the service
	CodeRateLimited  = "A1005" // rate limit (30/s, 3000/day in the sandbox)
	CodeBadDigest    = "A1006" // msgDigest does not verify
	CodeSystem       = "A1099" // system error
)

// Business result codes (apiResultData errorCode) of the route query.
const (
	BizOK        = "S0000"
	BizTooMany   = "8003" // more than MaxTrackingNumbers numbers
	BizNoNumber  = "8013" // no tracking number
	BizBadMethod = "6133" // bad methodType
)

// MaxTrackingNumbers is the most waybills one route query may carry.
const MaxTrackingNumbers = 10

// JavaURLEncode encodes s as java.net.URLEncoder.encode(s, "UTF-8") does: A-Z a-z 0-9 and
// ". - * _" stay, space becomes "+", every other byte of the UTF-8 encoding becomes %XX in
// upper-case hex. (Go's url.QueryEscape differs on "*" and "~".) Invalid UTF-8 is encoded byte
// by byte (Java would first have replaced it with "?"; SF never sees such input from us).
func JavaURLEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '-', c == '*', c == '_':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0x0f])
		}
	}
	return b.String()
}

// Digest is the "标准MD5" msgDigest: Base64(MD5(JavaURLEncode(msgData + timestamp + checkword))).
func Digest(msgData, timestamp, checkword string) string {
	sum := md5.Sum([]byte(JavaURLEncode(msgData + timestamp + checkword)))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// SimpleDigest is the "简易MD5" variant without URL encoding: Base64(MD5(msgData+timestamp+checkword)).
func SimpleDigest(msgData, timestamp, checkword string) string {
	sum := md5.Sum([]byte(msgData + timestamp + checkword))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// VerifyDigest reports, in constant time, whether digest is the 标准MD5 msgDigest of the inputs.
func VerifyDigest(msgData, timestamp, checkword, digest string) bool {
	return subtle.ConstantTimeCompare([]byte(digest), []byte(Digest(msgData, timestamp, checkword))) == 1
}

// Request is one service call, as its form fields.
type Request struct {
	PartnerID   string
	RequestID   string
	ServiceCode string
	Timestamp   string // epoch milliseconds
	MsgData     string // the business JSON, exactly as sent
	MsgDigest   string
	AccessToken string // alternative to MsgDigest (OAuth2); unused by omnibus
}

// NewRequest builds a signed service call for msgData at time ts.
func NewRequest(partnerID, checkword, requestID, serviceCode string, msgData []byte, ts time.Time) Request {
	stamp := strconv.FormatInt(ts.UnixMilli(), 10)
	return Request{PartnerID: partnerID, RequestID: requestID, ServiceCode: serviceCode, Timestamp: stamp,
		MsgData: string(msgData), MsgDigest: Digest(string(msgData), stamp, checkword)}
}

// Form returns the request's form fields.
func (r Request) Form() url.Values {
	v := url.Values{}
	v.Set(FieldPartnerID, r.PartnerID)
	v.Set(FieldRequestID, r.RequestID)
	v.Set(FieldServiceCode, r.ServiceCode)
	v.Set(FieldTimestamp, r.Timestamp)
	v.Set(FieldMsgData, r.MsgData)
	if r.MsgDigest != "" {
		v.Set(FieldMsgDigest, r.MsgDigest)
	}
	if r.AccessToken != "" {
		v.Set(FieldAccessToken, r.AccessToken)
	}
	return v
}

// Encode returns the form body to POST.
func (r Request) Encode() string { return r.Form().Encode() }

// ErrMissingParam is wrapped by ParseRequest for a call without a required field (SF's A1001).
var ErrMissingParam = errors.New("sfexpress: missing parameter")

// ParseRequest reads a service call from its form fields. It returns an error wrapping
// ErrMissingParam naming the first missing field; msgDigest or accessToken must be present.
func ParseRequest(form url.Values) (Request, error) {
	r := Request{PartnerID: form.Get(FieldPartnerID), RequestID: form.Get(FieldRequestID),
		ServiceCode: form.Get(FieldServiceCode), Timestamp: form.Get(FieldTimestamp),
		MsgData: form.Get(FieldMsgData), MsgDigest: form.Get(FieldMsgDigest), AccessToken: form.Get(FieldAccessToken)}
	for _, f := range []struct{ name, v string }{
		{FieldPartnerID, r.PartnerID}, {FieldRequestID, r.RequestID}, {FieldServiceCode, r.ServiceCode},
		{FieldTimestamp, r.Timestamp}, {FieldMsgData, r.MsgData},
	} {
		if f.v == "" {
			return r, fmt.Errorf("%w: %s", ErrMissingParam, f.name)
		}
	}
	if r.MsgDigest == "" && r.AccessToken == "" {
		return r, fmt.Errorf("%w: msgDigest or accessToken", ErrMissingParam)
	}
	return r, nil
}
