package tencent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SMS API constants.
const (
	Host          = "sms.tencentcloudapi.com"
	Service       = "sms"
	Version       = "2021-01-11"
	ActionSendSms = "SendSms"
	// ActionSmsPackagesStatistics lists an SMS application's packages (a read: the connector's
	// start check, which proves the key pair, the region and SmsSdkAppId).
	ActionSmsPackagesStatistics = "SmsPackagesStatistics"
	DefaultRegion               = "ap-guangzhou"
	// ContentType is what the connector sends and signs, byte for byte.
	ContentType = "application/json; charset=utf-8"
	// CodeOk is the per-number success code: "Ok", not "OK".
	CodeOk = "Ok"
	// ReportTimeLayout is the Beijing local time of status callbacks.
	ReportTimeLayout = "2006-01-02 15:04:05"
)

// Beijing is the fixed UTC+8 zone the callbacks' times are written in.
var Beijing = time.FixedZone("CST", 8*3600)

// ErrMalformedCallback is wrapped by the callback parsers for input that is not the documented
// shape.
var ErrMalformedCallback = errors.New("tencent: malformed callback")

// SendSmsRequest is SendSms's JSON body. The field order is the order of the official demo's
// payload, so that json.Marshal of the demo request reproduces its bytes.
type SendSmsRequest struct {
	PhoneNumberSet   []string `json:"PhoneNumberSet"`
	SmsSdkAppID      string   `json:"SmsSdkAppId"`
	TemplateID       string   `json:"TemplateId"`
	SignName         string   `json:"SignName,omitempty"`
	TemplateParamSet []string `json:"TemplateParamSet,omitempty"`
	SessionContext   string   `json:"SessionContext,omitempty"`
	ExtendCode       string   `json:"ExtendCode,omitempty"`
	SenderID         string   `json:"SenderId,omitempty"`
}

// SendStatus is the outcome for one number; Code "Ok" is success, anything else (e.g.
// LimitExceeded.PhoneNumberDailyLimit, InvalidParameterValue.IncorrectPhoneNumber) a failure
// for that number only.
type SendStatus struct {
	SerialNo       string `json:"SerialNo"`
	PhoneNumber    string `json:"PhoneNumber"`
	Fee            int    `json:"Fee"`
	SessionContext string `json:"SessionContext"`
	Code           string `json:"Code"`
	Message        string `json:"Message"`
	IsoCode        string `json:"IsoCode"`
}

// Error is an API-level error (AuthFailure.*, RequestLimitExceeded, InternalError, ...), which
// Tencent answers with HTTP 200 and no SendStatusSet.
type Error struct {
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

// Result is the content of the "Response" envelope.
type Result struct {
	SendStatusSet []SendStatus `json:"SendStatusSet,omitempty"`
	Error         *Error       `json:"Error,omitempty"`
	RequestID     string       `json:"RequestId"`
}

// PackagesStatisticsRequest is SmsPackagesStatistics's body (BeginTime and EndTime are
// yyyymmddhh, Beijing time; Limit is at most 500).
type PackagesStatisticsRequest struct {
	SmsSdkAppID string `json:"SmsSdkAppId"`
	Limit       uint64 `json:"Limit"`
	Offset      uint64 `json:"Offset"`
	BeginTime   string `json:"BeginTime,omitempty"`
	EndTime     string `json:"EndTime,omitempty"`
}

// PackageStatistics is one package of the application (the fields the sandbox writes).
type PackageStatistics struct {
	PackageCreateTime  string `json:"PackageCreateTime"`
	PackageID          uint64 `json:"PackageId"`
	TypeOfPackage      uint64 `json:"TypeOfPackage"`
	AmountOfPackage    uint64 `json:"AmountOfPackage"`
	CurrentUsage       uint64 `json:"CurrentUsage"`
	PackageExpiredTime string `json:"PackageExpiredTime"`
}

// PackagesStatisticsResponse is {"Response":{"SmsPackagesStatisticsSet":[...],...}} or an Error.
type PackagesStatisticsResponse struct {
	Response struct {
		SmsPackagesStatisticsSet []PackageStatistics `json:"SmsPackagesStatisticsSet,omitempty"`
		Error                    *Error              `json:"Error,omitempty"`
		RequestID                string              `json:"RequestId"`
	} `json:"Response"`
}

// SendSmsResponse is {"Response":{...}}.
type SendSmsResponse struct {
	Response Result `json:"Response"`
}

// Reply is the reply (上行) callback: one customer SMS per POST.
type Reply struct {
	Extend     string `json:"extend"`
	Mobile     string `json:"mobile"`
	Nationcode string `json:"nationcode"`
	Sign       string `json:"sign"`
	Text       string `json:"text"`
	Time       int64  `json:"time"`
}

// StatusReport is one delivery receipt of the status callback (a JSON array per POST).
type StatusReport struct {
	UserReceiveTime string `json:"user_receive_time"`
	Nationcode      string `json:"nationcode"`
	Mobile          string `json:"mobile"`
	ReportStatus    string `json:"report_status"` // SUCCESS or FAIL
	Errmsg          string `json:"errmsg"`
	Description     string `json:"description"`
	Sid             string `json:"sid"` // the SerialNo of SendSms
}

// Report statuses.
const (
	ReportSuccess = "SUCCESS"
	ReportFail    = "FAIL"
)

// CallbackAck is the answer Tencent expects to either callback.
type CallbackAck struct {
	Result int    `json:"result"`
	Errmsg string `json:"errmsg"`
}

// CallbackOK is the documented success answer.
var CallbackOK = CallbackAck{Result: 0, Errmsg: "OK"}

// ParseReportTime reads a status callback time (Beijing time).
func ParseReportTime(s string) (time.Time, error) {
	return time.ParseInLocation(ReportTimeLayout, s, Beijing)
}

// FormatReportTime writes t as a status callback time.
func FormatReportTime(t time.Time) string { return t.In(Beijing).Format(ReportTimeLayout) }

// ParseReply parses a reply callback: a JSON object with a numeric nationcode, a numeric mobile
// and a positive Unix time. Errors wrap ErrMalformedCallback.
func ParseReply(body []byte) (Reply, error) {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Reply{}, fmt.Errorf("%w: want a JSON object", ErrMalformedCallback)
	}
	var r Reply
	if err := json.Unmarshal(body, &r); err != nil {
		return Reply{}, fmt.Errorf("%w: %w", ErrMalformedCallback, err)
	}
	if err := checkNumber(r.Nationcode, r.Mobile); err != nil {
		return Reply{}, err
	}
	if r.Time <= 0 {
		return Reply{}, fmt.Errorf("%w: time must be Unix seconds", ErrMalformedCallback)
	}
	return r, nil
}

// ParseStatus parses a status callback: a JSON array of receipts, each with a numeric
// nationcode and mobile, a sid, report_status SUCCESS or FAIL and, when present, a valid
// user_receive_time. Errors wrap ErrMalformedCallback and name the item.
func ParseStatus(body []byte) ([]StatusReport, error) {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '[' {
		return nil, fmt.Errorf("%w: want a JSON array", ErrMalformedCallback)
	}
	var reps []StatusReport
	if err := json.Unmarshal(body, &reps); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedCallback, err)
	}
	for i, r := range reps {
		if err := checkNumber(r.Nationcode, r.Mobile); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		switch {
		case strings.TrimSpace(r.Sid) == "":
			return nil, fmt.Errorf("%w: item %d: sid is missing", ErrMalformedCallback, i)
		case r.ReportStatus != ReportSuccess && r.ReportStatus != ReportFail:
			return nil, fmt.Errorf("%w: item %d: report_status %q is neither SUCCESS nor FAIL", ErrMalformedCallback, i, r.ReportStatus)
		}
		if r.UserReceiveTime != "" {
			if _, err := ParseReportTime(r.UserReceiveTime); err != nil {
				return nil, fmt.Errorf("%w: item %d: user_receive_time %q is not %q", ErrMalformedCallback, i, r.UserReceiveTime, ReportTimeLayout)
			}
		}
	}
	return reps, nil
}

func checkNumber(nationcode, mobile string) error {
	if !digits(nationcode, 1, 4) {
		return fmt.Errorf("%w: nationcode must be 1-4 digits", ErrMalformedCallback)
	}
	if !digits(mobile, 4, 15) {
		return fmt.Errorf("%w: mobile must be 4-15 digits", ErrMalformedCallback)
	}
	return nil
}

func digits(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
