package aliyun

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Dysmsapi constants.
const (
	Host          = "dysmsapi.aliyuncs.com"
	Version       = "2017-05-25"
	ActionSendSms = "SendSms"
	// ActionQuerySmsSign asks for one signature's review state (SignName in the query).
	ActionQuerySmsSign = "QuerySmsSign"
	// CodeOK is SendSms's success Code (upper case; Tencent's per-number code is "Ok").
	CodeOK = "OK"
	// TimestampLayout is the ISO 8601 UTC form of V1 Timestamp and V3 x-acs-date.
	TimestampLayout = "2006-01-02T15:04:05Z"
	// PushTimeLayout is the Beijing local time of the SmsUp / SmsReport pushes.
	PushTimeLayout = "2006-01-02 15:04:05"
)

// Beijing is the fixed UTC+8 zone the pushes' times are written in (no tzdata needed).
var Beijing = time.FixedZone("CST", 8*3600)

// ErrMalformed is wrapped by the push parsers for input that is not the documented shape.
var ErrMalformed = errors.New("aliyun: malformed push")

// SendSms holds SendSms's business parameters. On the wire they are query (or form)
// parameters; TemplateParam is a JSON object of string values, as a string.
type SendSms struct {
	PhoneNumbers    string `json:"PhoneNumbers"`
	SignName        string `json:"SignName"`
	TemplateCode    string `json:"TemplateCode"`
	TemplateParam   string `json:"TemplateParam,omitempty"`
	SmsUpExtendCode string `json:"SmsUpExtendCode,omitempty"`
	OutID           string `json:"OutId,omitempty"`
}

// Query returns the parameters as query values (empty optional ones left out).
func (s SendSms) Query() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("PhoneNumbers", s.PhoneNumbers)
	set("SignName", s.SignName)
	set("TemplateCode", s.TemplateCode)
	set("TemplateParam", s.TemplateParam)
	set("SmsUpExtendCode", s.SmsUpExtendCode)
	set("OutId", s.OutID)
	return q
}

// ParseSendSms reads the business parameters from q.
func ParseSendSms(q url.Values) SendSms {
	return SendSms{PhoneNumbers: q.Get("PhoneNumbers"), SignName: q.Get("SignName"), TemplateCode: q.Get("TemplateCode"),
		TemplateParam: q.Get("TemplateParam"), SmsUpExtendCode: q.Get("SmsUpExtendCode"), OutID: q.Get("OutId")}
}

// SendSmsResponse is SendSms's answer. Code "OK" is success; any other Code (e.g.
// isv.BUSINESS_LIMIT_CONTROL) is a business error, answered with HTTP 200.
type SendSmsResponse struct {
	XMLName   struct{} `json:"-" xml:"SendSmsResponse"`
	Code      string   `json:"Code" xml:"Code"`
	Message   string   `json:"Message" xml:"Message"`
	BizID     string   `json:"BizId,omitempty" xml:"BizId,omitempty"`
	RequestID string   `json:"RequestId" xml:"RequestId"`
}

// Review states of a signature (QuerySmsSign SignStatus).
const (
	SignPending  = 0 // 审核中
	SignApproved = 1 // 审核通过
	SignRejected = 2 // 审核失败 (Reason says why)
)

// QuerySmsSignResponse is QuerySmsSign's answer: Code "OK" and the signature's review state,
// else a business Code (HTTP 200) such as isv.SMS_SIGNATURE_ILLEGAL for a signature the account
// does not have.
type QuerySmsSignResponse struct {
	XMLName    struct{} `json:"-" xml:"QuerySmsSignResponse"`
	RequestID  string   `json:"RequestId" xml:"RequestId"`
	Code       string   `json:"Code" xml:"Code"`
	Message    string   `json:"Message" xml:"Message"`
	SignName   string   `json:"SignName,omitempty" xml:"SignName,omitempty"`
	SignStatus int      `json:"SignStatus" xml:"SignStatus"`
	Reason     string   `json:"Reason,omitempty" xml:"Reason,omitempty"`
	CreateDate string   `json:"CreateDate,omitempty" xml:"CreateDate,omitempty"`
}

// ErrorResponse is the OpenAPI gateway's error body (signature, credential, throttling and
// parameter errors), answered with a 4xx/5xx status.
type ErrorResponse struct {
	XMLName   struct{} `json:"-" xml:"Error"`
	RequestID string   `json:"RequestId" xml:"RequestId"`
	HostID    string   `json:"HostId" xml:"HostId"`
	Code      string   `json:"Code" xml:"Code"`
	Message   string   `json:"Message" xml:"Message"`
	Recommend string   `json:"Recommend,omitempty" xml:"Recommend,omitempty"`
}

// SmsUp is one uplink (a customer's SMS to the business) of the SmsUp HTTP batch push.
type SmsUp struct {
	PhoneNumber string      `json:"phone_number"`
	SendTime    string      `json:"send_time"`
	Content     string      `json:"content"`
	SignName    string      `json:"sign_name"`
	DestCode    string      `json:"dest_code"`
	SequenceID  json.Number `json:"sequence_id"`
}

// SmsReport is one delivery receipt of the SmsReport HTTP batch push.
type SmsReport struct {
	PhoneNumber string `json:"phone_number"`
	SendTime    string `json:"send_time"`
	ReportTime  string `json:"report_time"`
	Success     bool   `json:"success"`
	ErrCode     string `json:"err_code"`
	ErrMsg      string `json:"err_msg"`
	SmsSize     string `json:"sms_size"`
	BizID       string `json:"biz_id"`
	OutID       string `json:"out_id"`
}

// PushAck is the answer Aliyun expects to a push (only the HTTP status and a numeric code are
// checked).
type PushAck struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

// PushOK is the documented success answer.
var PushOK = PushAck{Code: 0, Msg: "接收成功"}

// ParseTime reads a push time ("2017-09-01 00:00:00", Beijing time).
func ParseTime(s string) (time.Time, error) {
	return time.ParseInLocation(PushTimeLayout, s, Beijing)
}

// FormatTime writes t as a push time.
func FormatTime(t time.Time) string { return t.In(Beijing).Format(PushTimeLayout) }

// FormatTimestamp writes t as a V1 Timestamp / V3 x-acs-date.
func FormatTimestamp(t time.Time) string { return t.UTC().Format(TimestampLayout) }

// ParseTimestamp reads a V1 Timestamp / V3 x-acs-date.
func ParseTimestamp(s string) (time.Time, error) { return time.Parse(TimestampLayout, s) }

// decodeArray unmarshals a push body, which must be a JSON array, into dst.
func decodeArray(body []byte, dst any) error {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '[' {
		return fmt.Errorf("%w: want a JSON array", ErrMalformed)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// ParseSmsUp parses an SmsUp push: a JSON array of uplinks, each with phone_number, send_time
// (a valid push time) and a numeric sequence_id, the uplink's only id. Errors wrap ErrMalformed
// and name the item.
func ParseSmsUp(body []byte) ([]SmsUp, error) {
	var ups []SmsUp
	if err := decodeArray(body, &ups); err != nil {
		return nil, err
	}
	for i, u := range ups {
		switch {
		case strings.TrimSpace(u.PhoneNumber) == "":
			return nil, fmt.Errorf("%w: item %d: phone_number is missing", ErrMalformed, i)
		case !digits(u.SequenceID.String()):
			return nil, fmt.Errorf("%w: item %d: sequence_id must be a non-negative integer", ErrMalformed, i)
		}
		if _, err := ParseTime(u.SendTime); err != nil {
			return nil, fmt.Errorf("%w: item %d: send_time %q is not %q", ErrMalformed, i, u.SendTime, PushTimeLayout)
		}
	}
	return ups, nil
}

// ParseSmsReport parses an SmsReport push: a JSON array of receipts, each with phone_number,
// biz_id and a valid report_time. Errors wrap ErrMalformed and name the item.
func ParseSmsReport(body []byte) ([]SmsReport, error) {
	var reps []SmsReport
	if err := decodeArray(body, &reps); err != nil {
		return nil, err
	}
	for i, r := range reps {
		switch {
		case strings.TrimSpace(r.PhoneNumber) == "":
			return nil, fmt.Errorf("%w: item %d: phone_number is missing", ErrMalformed, i)
		case strings.TrimSpace(r.BizID) == "":
			return nil, fmt.Errorf("%w: item %d: biz_id is missing", ErrMalformed, i)
		}
		if _, err := ParseTime(r.ReportTime); err != nil {
			return nil, fmt.Errorf("%w: item %d: report_time %q is not %q", ErrMalformed, i, r.ReportTime, PushTimeLayout)
		}
	}
	return reps, nil
}

func digits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
