package sfexpress

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// RouteQuery is the msgData of EXP_RECE_SEARCH_ROUTES.
type RouteQuery struct {
	Language       string   `json:"language"`
	TrackingType   string   `json:"trackingType"`   // "1" SF waybill number, "2" customer order number
	TrackingNumber []string `json:"trackingNumber"` // at most MaxTrackingNumbers
	MethodType     string   `json:"methodType"`     // "1" standard, "2" custom
	CheckPhoneNo   string   `json:"checkPhoneNo,omitempty"`
}

// NewRouteQuery is the standard query for SF waybill numbers. checkPhone is the last 4 digits of
// the sender's or receiver's phone ("" queries only waybills on the partner's monthly account).
func NewRouteQuery(waybills []string, checkPhone string) RouteQuery {
	return RouteQuery{Language: "zh-CN", TrackingType: "1", TrackingNumber: waybills, MethodType: "1", CheckPhoneNo: checkPhone}
}

// Validate applies SF's business checks, returning the business error SF would answer.
func (q RouteQuery) Validate() *Error {
	switch {
	case len(q.TrackingNumber) == 0:
		return &Error{Code: BizNoNumber, Msg: "运单号不能为空"}
	case len(q.TrackingNumber) > MaxTrackingNumbers:
		return &Error{Code: BizTooMany, Msg: fmt.Sprintf("查询单号超过最大数量%d", MaxTrackingNumbers)}
	case q.MethodType != "1" && q.MethodType != "2":
		return &Error{Code: BizBadMethod, Msg: "methodType不合法"}
	}
	for _, n := range q.TrackingNumber {
		if n == "" {
			return &Error{Code: BizNoNumber, Msg: "运单号不能为空"}
		}
	}
	return nil
}

// Response is the platform envelope of every service answer (HTTP 200).
type Response struct {
	APIErrorMsg   string `json:"apiErrorMsg"`
	APIResponseID string `json:"apiResponseID"`
	APIResultCode string `json:"apiResultCode"`
	// APIResultData is a JSON document encoded as a string: decode twice.
	APIResultData string `json:"apiResultData"`
}

// ResultData is the decoded apiResultData.
type ResultData struct {
	Success   bool            `json:"success"`
	ErrorCode string          `json:"errorCode"`
	ErrorMsg  *string         `json:"errorMsg"`
	MsgData   json.RawMessage `json:"msgData"`
}

// RouteResult is the msgData of a successful route query.
type RouteResult struct {
	RouteResps []RouteResp `json:"routeResps"`
}

// RouteResp is the timeline of one waybill. A waybill SF does not know (or that the partner may
// not see) comes back with no routes.
type RouteResp struct {
	MailNo string  `json:"mailNo"`
	Routes []Route `json:"routes"`
}

// Route is one scan of a waybill.
type Route struct {
	AcceptAddress       string `json:"acceptAddress"`
	AcceptTime          string `json:"acceptTime"` // "YYYY-MM-DD HH:MM:SS", China time
	Remark              string `json:"remark"`
	OpCode              string `json:"opCode"`
	FirstStatusCode     string `json:"firstStatusCode,omitempty"`
	FirstStatusName     string `json:"firstStatusName,omitempty"`
	SecondaryStatusCode string `json:"secondaryStatusCode,omitempty"`
	SecondaryStatusName string `json:"secondaryStatusName,omitempty"`
}

// Operation codes seen in SF route scans (opCode). 50 and 80 are documented in examples; the
// others are those the sandbox produces and the connector maps (see services/logistics README).
const (
	OpPickedUp       = "50" // 顺丰速运 已收取快件
	OpSorted         = "30" // 快件在【…】完成分拣，准备发往下一站
	OpArrived        = "31" // 快件到达【…】
	OpDeparted       = "36" // 快件已发车
	OpOutForDelivery = "44" // 正在派送途中
	OpDelivered      = "80" // 已签收
	OpDeliveryFailed = "70" // 派送失败 / 客户不在
)

// China is the time zone of SF's acceptTime (GMT+8, no daylight saving).
var China = time.FixedZone("CST", 8*3600)

// AcceptTimeLayout is the layout of acceptTime.
const AcceptTimeLayout = "2006-01-02 15:04:05"

// ParseAcceptTime parses acceptTime in China time.
func ParseAcceptTime(s string) (time.Time, error) {
	return time.ParseInLocation(AcceptTimeLayout, s, China)
}

// FormatAcceptTime formats t as acceptTime.
func FormatAcceptTime(t time.Time) string { return t.In(China).Format(AcceptTimeLayout) }

// Error is an SF error: a platform code (apiResultCode other than A1000, Platform true) or a
// business code (errorCode inside apiResultData). errors.Is matches by code and kind, so
// errors.Is(err, ErrRateLimited) holds for any error built from an A1005 answer.
type Error struct {
	Code     string
	Msg      string
	Platform bool
}

func (e *Error) Error() string {
	kind := "business"
	if e.Platform {
		kind = "platform"
	}
	if e.Msg == "" {
		return fmt.Sprintf("sfexpress %s error %s", kind, e.Code)
	}
	return fmt.Sprintf("sfexpress %s error %s: %s", kind, e.Code, e.Msg)
}

// Is reports whether target is an *Error of the same code and kind.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code && t.Platform == e.Platform
}

// Temporary reports whether a retry later may succeed (rate limit, system error).
func (e *Error) Temporary() bool {
	return e.Platform && (e.Code == CodeRateLimited || e.Code == CodeSystem)
}

// Sentinels for errors.Is.
var (
	ErrMissing      = &Error{Code: CodeMissingParam, Platform: true}
	ErrNoPermission = &Error{Code: CodeNoPermission, Platform: true}
	ErrRateLimited  = &Error{Code: CodeRateLimited, Platform: true}
	ErrBadDigest    = &Error{Code: CodeBadDigest, Platform: true}
	ErrSystem       = &Error{Code: CodeSystem, Platform: true}
	ErrTooMany      = &Error{Code: BizTooMany}
	ErrNoNumber     = &Error{Code: BizNoNumber}
)

// ErrMalformed is wrapped by the parsers for a body that is not SF's shape.
var ErrMalformed = errors.New("sfexpress: malformed response")

// DecodeResponse decodes the envelope and, for A1000, the apiResultData inside it. It returns
// an *Error for a platform code other than A1000 or a business result that is not a success,
// and an error wrapping ErrMalformed for anything that is not SF's shape.
func DecodeResponse(body []byte) (Response, ResultData, error) {
	var resp Response
	var data ResultData
	if err := json.Unmarshal(body, &resp); err != nil {
		return resp, data, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if resp.APIResultCode == "" {
		return resp, data, fmt.Errorf("%w: no apiResultCode", ErrMalformed)
	}
	if resp.APIResultCode != CodeOK {
		return resp, data, &Error{Code: resp.APIResultCode, Msg: resp.APIErrorMsg, Platform: true}
	}
	if err := json.Unmarshal([]byte(resp.APIResultData), &data); err != nil {
		return resp, data, fmt.Errorf("%w: apiResultData: %w", ErrMalformed, err)
	}
	if !data.Success || data.ErrorCode != BizOK {
		code := data.ErrorCode
		if code == "" {
			code = "unknown"
		}
		msg := ""
		if data.ErrorMsg != nil {
			msg = *data.ErrorMsg
		}
		return resp, data, &Error{Code: code, Msg: msg}
	}
	return resp, data, nil
}

// ParseRouteResponse decodes a route query answer into the waybills' timelines.
func ParseRouteResponse(body []byte) (Response, []RouteResp, error) {
	resp, data, err := DecodeResponse(body)
	if err != nil {
		return resp, nil, err
	}
	if len(data.MsgData) == 0 || bytes.Equal(data.MsgData, []byte("null")) {
		return resp, nil, fmt.Errorf("%w: success without msgData", ErrMalformed)
	}
	var res RouteResult
	if err := json.Unmarshal(data.MsgData, &res); err != nil {
		return resp, nil, fmt.Errorf("%w: msgData: %w", ErrMalformed, err)
	}
	for i, r := range res.RouteResps {
		if r.MailNo == "" {
			return resp, nil, fmt.Errorf("%w: routeResps[%d] without mailNo", ErrMalformed, i)
		}
	}
	return resp, res.RouteResps, nil
}

// EncodeRouteResponse renders a successful route query answer (for the simulator).
func EncodeRouteResponse(responseID string, resps []RouteResp) ([]byte, error) {
	if resps == nil {
		resps = []RouteResp{}
	}
	for i := range resps {
		if resps[i].Routes == nil {
			resps[i].Routes = []Route{}
		}
	}
	msg, err := json.Marshal(RouteResult{RouteResps: resps})
	if err != nil {
		return nil, err
	}
	return encodeResult(responseID, ResultData{Success: true, ErrorCode: BizOK, MsgData: msg})
}

// EncodeBusinessError renders an A1000 answer whose business result is the error code.
func EncodeBusinessError(responseID, code, msg string) ([]byte, error) {
	return encodeResult(responseID, ResultData{Success: false, ErrorCode: code, ErrorMsg: &msg, MsgData: json.RawMessage("null")})
}

func encodeResult(responseID string, data ResultData) ([]byte, error) {
	inner, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Response{APIResponseID: responseID, APIResultCode: CodeOK, APIResultData: string(inner)})
}

// platformError is the envelope of a platform failure: apiResultData is null.
type platformError struct {
	APIErrorMsg   string  `json:"apiErrorMsg"`
	APIResponseID string  `json:"apiResponseID"`
	APIResultCode string  `json:"apiResultCode"`
	APIResultData *string `json:"apiResultData"`
}

// EncodePlatformError renders a platform failure (A1001 … A1099).
func EncodePlatformError(responseID, code, msg string) []byte {
	b, _ := json.Marshal(platformError{APIErrorMsg: msg, APIResponseID: responseID, APIResultCode: code})
	return b
}
