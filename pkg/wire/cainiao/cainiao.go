// Package cainiao is the Cainiao (菜鸟) "link" gateway wire format shared by the logistics
// connector and the sandbox simulator, as far as the public documentation supports it
// (vendors/README.md §8, marked partial):
//
//   - the gateway takes form posts of logistic_provider_id, msg_type, to_code (optional),
//     logistics_interface (the JSON payload) and data_digest = Base64(MD5(logistics_interface +
//     secretKey)) over the raw UTF-8 string, with no URL encoding before hashing; both values are
//     form-encoded for transmission (or "+" would turn into a space);
//   - the trace query takes {supplier_id, delivery_code, mail_no, biz_code?, type} and answers
//     {success, error_code, error_message, data:{mail_no, traces:[{trace:{detail, site, address,
//     operator}}]}}.
//
// Gaps (not in the documentation we have, so chosen here and configurable in the connector):
// the msg_type name of the trace query (MsgTypeTraceQuery), the inner fields of site, address and
// operator, the layout of operate_time (China time "YYYY-MM-DD HH:MM:SS" assumed; RFC 3339 and
// epoch milliseconds are accepted too), and the error codes (ErrorCode* below are the simulator's).
// There is no official signature vector; the digest is tested against the self-computed one.
package cainiao

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Gateway endpoints (POST, application/x-www-form-urlencoded;charset=UTF-8).
const (
	ProductionURL = "https://link.cainiao.com/gateway/link.do"
	// Path is the path of the gateway below its host.
	Path        = "/gateway/link.do"
	ContentType = "application/x-www-form-urlencoded;charset=UTF-8"
)

// MsgTypeTraceQuery is the msg_type this package uses for the trace query. The real name is not
// in the documentation we have; the connector lets CAINIAO_MSG_TYPE override it.
const MsgTypeTraceQuery = "TRACEQUERY"

// Form field names.
const (
	FieldProviderID = "logistic_provider_id"
	FieldMsgType    = "msg_type"
	FieldToCode     = "to_code"
	FieldInterface  = "logistics_interface"
	FieldDigest     = "data_digest"
)

// Error codes the simulator answers with (the real catalogue is not documented here).
const (
	ErrorCodeSign        = "S01" // data_digest does not verify
	ErrorCodeMissing     = "S02" // required parameter missing
	ErrorCodeSystem      = "S99" // system error
	ErrorCodeRateLimited = "S07" // too many calls
	ErrorCodeNotFound    = "B01" // no such waybill
)

// DataDigest is Base64(MD5(logisticsInterface + secretKey)) over the raw UTF-8 bytes.
func DataDigest(logisticsInterface, secretKey string) string {
	sum := md5.Sum([]byte(logisticsInterface + secretKey))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// VerifyDigest reports in constant time whether digest signs logisticsInterface.
func VerifyDigest(logisticsInterface, secretKey, digest string) bool {
	return subtle.ConstantTimeCompare([]byte(digest), []byte(DataDigest(logisticsInterface, secretKey))) == 1
}

// Request is one gateway call.
type Request struct {
	ProviderID         string
	MsgType            string
	ToCode             string
	LogisticsInterface string // the JSON payload, exactly as sent and signed
	DataDigest         string
}

// NewRequest signs payload for the gateway.
func NewRequest(providerID, secretKey, msgType, toCode string, payload []byte) Request {
	return Request{ProviderID: providerID, MsgType: msgType, ToCode: toCode,
		LogisticsInterface: string(payload), DataDigest: DataDigest(string(payload), secretKey)}
}

// Form returns the form fields.
func (r Request) Form() url.Values {
	v := url.Values{}
	v.Set(FieldProviderID, r.ProviderID)
	v.Set(FieldMsgType, r.MsgType)
	if r.ToCode != "" {
		v.Set(FieldToCode, r.ToCode)
	}
	v.Set(FieldInterface, r.LogisticsInterface)
	v.Set(FieldDigest, r.DataDigest)
	return v
}

// Encode returns the form body (values are form-encoded, so "+" in the digest survives).
func (r Request) Encode() string { return r.Form().Encode() }

// ErrMissingParam is wrapped by ParseRequest for a call lacking a required field.
var ErrMissingParam = errors.New("cainiao: missing parameter")

// ParseRequest reads a gateway call from its form fields.
func ParseRequest(form url.Values) (Request, error) {
	r := Request{ProviderID: form.Get(FieldProviderID), MsgType: form.Get(FieldMsgType), ToCode: form.Get(FieldToCode),
		LogisticsInterface: form.Get(FieldInterface), DataDigest: form.Get(FieldDigest)}
	for _, f := range []struct{ name, v string }{
		{FieldProviderID, r.ProviderID}, {FieldMsgType, r.MsgType}, {FieldInterface, r.LogisticsInterface}, {FieldDigest, r.DataDigest},
	} {
		if f.v == "" {
			return r, fmt.Errorf("%w: %s", ErrMissingParam, f.name)
		}
	}
	return r, nil
}

// TraceQuery is the logistics_interface of a trace query.
type TraceQuery struct {
	SupplierID   string `json:"supplier_id"`
	DeliveryCode string `json:"delivery_code"` // the carrier's code (e.g. YTO, ZTO, STO)
	MailNo       string `json:"mail_no"`
	BizCode      string `json:"biz_code,omitempty"`
	Type         string `json:"type"` // ORIGIN (the carrier's own trace) or SELLER
}

// Trace types.
const (
	TypeOrigin = "ORIGIN"
	TypeSeller = "SELLER"
)

// TraceResponse is the gateway's answer.
type TraceResponse struct {
	Success      bool       `json:"success"`
	ErrorCode    string     `json:"error_code,omitempty"`
	ErrorMessage string     `json:"error_message,omitempty"`
	Data         *TraceData `json:"data,omitempty"`
}

// TraceData is the trace of one waybill.
type TraceData struct {
	MailNo string       `json:"mail_no"`
	Traces []TraceEntry `json:"traces"`
}

// TraceEntry wraps one trace node.
type TraceEntry struct {
	Trace Trace `json:"trace"`
}

// Trace is one node of a waybill's trace. Site, Address and Operator fields are not documented
// in detail; these are the fields this package reads and the simulator writes.
type Trace struct {
	Detail   Detail    `json:"detail"`
	Site     *Site     `json:"site,omitempty"`
	Address  *Address  `json:"address,omitempty"`
	Operator *Operator `json:"operator,omitempty"`
}

// Detail is what happened.
type Detail struct {
	OperateTime   OperateTime `json:"operate_time"`
	OperateAction string      `json:"operate_action"` // e.g. ACCEPT, TRANSPORT, DELIVERING, SIGN, FAILED
	OperateDesc   string      `json:"operate_desc"`
	DisplayAction string      `json:"display_action,omitempty"` // e.g. 已揽件, 运输中, 派送中, 已签收
}

// Site is the station that scanned the parcel.
type Site struct {
	Name string `json:"site_name,omitempty"`
	Code string `json:"site_code,omitempty"`
}

// Address is where the scan happened.
type Address struct {
	Province string `json:"province,omitempty"`
	City     string `json:"city,omitempty"`
	Area     string `json:"area,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Operator is the courier or clerk. Contact is a phone number: callers must mask it.
type Operator struct {
	Name    string `json:"name,omitempty"`
	Contact string `json:"contact,omitempty"`
}

// Actions (operate_action) the connector maps to a status.
const (
	ActionAccept     = "ACCEPT"
	ActionTransport  = "TRANSPORT"
	ActionArrive     = "ARRIVE"
	ActionDelivering = "DELIVERING"
	ActionSign       = "SIGN"
	ActionFailed     = "FAILED"
	ActionReturn     = "RETURN"
)

// China is the time zone assumed for operate_time without a zone.
var China = time.FixedZone("CST", 8*3600)

// OperateTimeLayout is the assumed layout of operate_time.
const OperateTimeLayout = "2006-01-02 15:04:05"

// OperateTime accepts "YYYY-MM-DD HH:MM:SS" (China time), RFC 3339, or epoch milliseconds as a
// JSON number or string, and writes the first.
type OperateTime struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (t *OperateTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var ms int64
		if err := json.Unmarshal(b, &ms); err != nil {
			return fmt.Errorf("operate_time %s: want a time string or epoch milliseconds", b)
		}
		t.Time = time.UnixMilli(ms).In(China)
		return nil
	}
	s = strings.TrimSpace(s)
	if v, err := time.ParseInLocation(OperateTimeLayout, s, China); err == nil {
		t.Time = v
		return nil
	}
	if v, err := time.Parse(time.RFC3339, s); err == nil {
		t.Time = v
		return nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		t.Time = time.UnixMilli(ms).In(China)
		return nil
	}
	return fmt.Errorf("operate_time %q: want %q, RFC 3339 or epoch milliseconds", s, OperateTimeLayout)
}

// MarshalJSON implements json.Marshaler.
func (t OperateTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.In(China).Format(OperateTimeLayout))
}

// Error is a gateway answer with success false. errors.Is matches by code.
type Error struct {
	Code, Message string
}

func (e *Error) Error() string { return "cainiao error " + e.Code + ": " + e.Message }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Temporary reports whether retrying later may succeed.
func (e *Error) Temporary() bool {
	return e.Code == ErrorCodeSystem || e.Code == ErrorCodeRateLimited
}

// Sentinels for errors.Is.
var (
	ErrSign        = &Error{Code: ErrorCodeSign}
	ErrSystem      = &Error{Code: ErrorCodeSystem}
	ErrRateLimited = &Error{Code: ErrorCodeRateLimited}
	ErrNotFound    = &Error{Code: ErrorCodeNotFound}
)

// ErrMalformed is wrapped for a body that is not the gateway's shape.
var ErrMalformed = errors.New("cainiao: malformed response")

// ParseTraceResponse decodes a trace query answer. It returns an *Error for success false and an
// error wrapping ErrMalformed for anything else that is not the documented shape.
func ParseTraceResponse(body []byte) (TraceData, error) {
	var r TraceResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return TraceData{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !r.Success {
		if r.ErrorCode == "" {
			return TraceData{}, fmt.Errorf("%w: success false without error_code", ErrMalformed)
		}
		return TraceData{}, &Error{Code: r.ErrorCode, Message: r.ErrorMessage}
	}
	if r.Data == nil || r.Data.MailNo == "" {
		return TraceData{}, fmt.Errorf("%w: success without data.mail_no", ErrMalformed)
	}
	for i, tr := range r.Data.Traces {
		if tr.Trace.Detail.OperateTime.IsZero() {
			return TraceData{}, fmt.Errorf("%w: traces[%d] without operate_time", ErrMalformed, i)
		}
	}
	return *r.Data, nil
}

// EncodeTraceResponse renders a successful answer (for the simulator).
func EncodeTraceResponse(d TraceData) ([]byte, error) {
	if d.Traces == nil {
		d.Traces = []TraceEntry{}
	}
	return json.Marshal(TraceResponse{Success: true, Data: &d})
}

// EncodeError renders a failed answer (for the simulator).
func EncodeError(code, message string) []byte {
	b, _ := json.Marshal(TraceResponse{Success: false, ErrorCode: code, ErrorMessage: message})
	return b
}
