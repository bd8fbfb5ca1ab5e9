package tencent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Tencent Cloud Contact Center (TCCC, 腾讯云联络中心; vendors part 2 §7): the DescribeTelCdr
// API (ccc 2020-02-10, TC3-signed with service "ccc") and the three data pushes a contact
// centre POSTs to the customer's URL (console → 功能配置 → 数据推送): the call record (CDR,
// ?action=cdr&version=1), one recording per recorded participant (?action=record&version=1)
// and a voicemail (?action=voicemail). The pushes are not signed: the console offers basic auth
// or OAuth2 client credentials (a bearer token); X-TCCC-PUSH-UUID identifies a push for
// deduplication; anything but {"ErrCode":0} is retried up to three times.
const (
	CCCHost    = "ccc.tencentcloudapi.com"
	CCCService = "ccc"
	CCCVersion = "2020-02-10"

	ActionDescribeTelCdr = "DescribeTelCdr"

	// HeaderPushUUID identifies one push; a retried push carries the same value.
	HeaderPushUUID = "X-TCCC-PUSH-UUID"

	// Push actions (the action query parameter).
	PushCDR       = "cdr"
	PushRecord    = "record"
	PushVoicemail = "voicemail"

	// MaxCdrPageSize is DescribeTelCdr's largest PageSize.
	MaxCdrPageSize = 100
)

// ErrMalformedPush is wrapped by the push parsers for a body that is not the documented shape.
var ErrMalformedPush = errors.New("tencent: malformed tccc push")

// HungUpSide values of a TelCdrInfo.
const (
	HungUpSeat   = "seat"
	HungUpUser   = "user"
	HungUpSystem = "system"
)

// Direction values of a TelCdrInfo: 0 inbound, 1 outbound.
const (
	DirectionInbound  = 0
	DirectionOutbound = 1
)

// SeatUser is the agent of a call (SeatUserInfo).
type SeatUser struct {
	Name            string `json:"Name,omitempty"`
	Mail            string `json:"Mail,omitempty"`
	StaffNumber     string `json:"StaffNumber,omitempty"`
	Phone           string `json:"Phone,omitempty"`
	Nick            string `json:"Nick,omitempty"`
	UserID          string `json:"UserId,omitempty"`
	ExtensionNumber string `json:"ExtensionNumber,omitempty"`
}

// TelCdrInfo is one call record, the element of DescribeTelCdr's TelCdrList and the body of a
// CDR push. Times are unix seconds. Only the fields omnibus reads are declared; the rest of the
// record is ignored.
type TelCdrInfo struct {
	SdkAppID        int64     `json:"SdkAppId,omitempty"`
	SessionID       string    `json:"SessionId"`
	Caller          string    `json:"Caller"`
	Callee          string    `json:"Callee"`
	ProtectedCaller string    `json:"ProtectedCaller,omitempty"`
	ProtectedCallee string    `json:"ProtectedCallee,omitempty"`
	Direction       int       `json:"Direction"`
	CallType        int       `json:"CallType,omitempty"`
	Time            int64     `json:"Time"`
	StartTimestamp  int64     `json:"StartTimestamp,omitempty"`
	RingTimestamp   int64     `json:"RingTimestamp,omitempty"`
	AcceptTimestamp int64     `json:"AcceptTimestamp,omitempty"`
	EndedTimestamp  int64     `json:"EndedTimestamp,omitempty"`
	Duration        int64     `json:"Duration"`
	IVRDuration     int64     `json:"IVRDuration,omitempty"`
	RecordURL       string    `json:"RecordURL,omitempty"`
	RecordID        string    `json:"RecordId,omitempty"`
	CustomRecordURL string    `json:"CustomRecordURL,omitempty"`
	SeatUser        *SeatUser `json:"SeatUser,omitempty"`
	SkillGroup      string    `json:"SkillGroup,omitempty"`
	HungUpSide      string    `json:"HungUpSide,omitempty"`
	EndStatus       int       `json:"EndStatus"`
	EndStatusString string    `json:"EndStatusString,omitempty"`
	CallerLocation  string    `json:"CallerLocation,omitempty"`
	// VoicemailRecordURL lists the call's voicemails (a voicemail push carries one each).
	VoicemailRecordURL []string `json:"VoicemailRecordURL,omitempty"`
}

// StartUnix is when the call started: StartTimestamp, else Time.
func (c TelCdrInfo) StartUnix() int64 {
	if c.StartTimestamp > 0 {
		return c.StartTimestamp
	}
	return c.Time
}

// EndUnix is when the call ended: EndedTimestamp, else AcceptTimestamp + Duration, else the
// start (a call the record gives no end).
func (c TelCdrInfo) EndUnix() int64 {
	switch {
	case c.EndedTimestamp > 0:
		return c.EndedTimestamp
	case c.AcceptTimestamp > 0:
		return c.AcceptTimestamp + c.Duration
	}
	return c.StartUnix()
}

// Recording is the call's recording URL: the copy in the customer's own bucket when there is
// one, else TCCC's.
func (c TelCdrInfo) Recording() string {
	if c.CustomRecordURL != "" {
		return c.CustomRecordURL
	}
	return c.RecordURL
}

// RecordPush is the body of a recording push: one per recorded participant of a session.
// EndpointUser is the customer's phone number or the agent's mail.
type RecordPush struct {
	SdkAppID        int64  `json:"SdkAppId"`
	RecordID        string `json:"RecordId"`
	SessionID       string `json:"SessionId"`
	Timestamp       int64  `json:"Timestamp"`
	EndpointUser    string `json:"EndpointUser"`
	RecordURL       string `json:"RecordURL"`
	CustomRecordURL string `json:"CustomRecordURL,omitempty"`
}

// VoicemailPush is the body of a voicemail push.
type VoicemailPush struct {
	SdkAppID     int64  `json:"SdkAppId"`
	SessionID    string `json:"SessionId"`
	Timestamp    int64  `json:"Timestamp"`
	RecordURL    string `json:"RecordURL"`
	EndpointUser string `json:"EndpointUser"`
}

// PushAck is the answer every push expects; ErrCode 0 acknowledges it.
type PushAck struct {
	ErrCode int    `json:"ErrCode"`
	ErrMsg  string `json:"ErrMsg"`
}

// PushOK acknowledges a push.
var PushOK = PushAck{ErrCode: 0, ErrMsg: ""}

// DescribeTelCdrRequest asks for the call records of a window (unix seconds, under 90 days,
// starting at most 180 days back), a page at a time; PageNumber starts at 0.
type DescribeTelCdrRequest struct {
	SdkAppID       int64    `json:"SdkAppId"`
	StartTimeStamp int64    `json:"StartTimeStamp"`
	EndTimeStamp   int64    `json:"EndTimeStamp"`
	PageSize       int      `json:"PageSize"`
	PageNumber     int      `json:"PageNumber"`
	Phones         []string `json:"Phones,omitempty"`
	SessionIDs     []string `json:"SessionIds,omitempty"`
}

// DescribeTelCdrResponse is DescribeTelCdr's answer (inside the API 3.0 Response envelope).
type DescribeTelCdrResponse struct {
	Response struct {
		TotalCount int64        `json:"TotalCount"`
		TelCdrList []TelCdrInfo `json:"TelCdrList"`
		Error      *Error       `json:"Error,omitempty"`
		RequestID  string       `json:"RequestId"`
	} `json:"Response"`
}

// ParseCDRPush decodes a CDR push body: a TelCdrInfo that names its session, a start time and a
// direction of 0 or 1.
func ParseCDRPush(body []byte) (TelCdrInfo, error) {
	var c TelCdrInfo
	if err := decodeObject(body, &c); err != nil {
		return TelCdrInfo{}, err
	}
	return c, CheckCdr(c)
}

// CheckCdr is what omnibus requires of a call record, pushed or listed: a session id, a start
// time, a direction of 0 or 1, non-negative durations and an end not before the start.
func CheckCdr(c TelCdrInfo) error {
	switch {
	case c.SessionID == "" || len(c.SessionID) > 128:
		return fmt.Errorf("%w: SessionId missing or longer than 128 bytes", ErrMalformedPush)
	case c.StartUnix() <= 0:
		return fmt.Errorf("%w: no Time or StartTimestamp", ErrMalformedPush)
	case c.Direction != DirectionInbound && c.Direction != DirectionOutbound:
		return fmt.Errorf("%w: Direction %d is neither 0 (inbound) nor 1 (outbound)", ErrMalformedPush, c.Direction)
	case c.Duration < 0 || c.IVRDuration < 0:
		return fmt.Errorf("%w: negative Duration", ErrMalformedPush)
	case c.EndUnix() < c.StartUnix():
		return fmt.Errorf("%w: the call ends before it starts", ErrMalformedPush)
	case c.AcceptTimestamp != 0 && (c.AcceptTimestamp < c.StartUnix() || c.AcceptTimestamp > c.EndUnix()):
		return fmt.Errorf("%w: AcceptTimestamp outside the call", ErrMalformedPush)
	}
	return nil
}

// ParseRecordPush decodes a recording push: a session, a recording URL and the participant.
func ParseRecordPush(body []byte) (RecordPush, error) {
	var w struct {
		RecordPush
		EndpointUser json.RawMessage `json:"EndpointUser"`
		RecordID     json.RawMessage `json:"RecordId"`
	}
	if err := decodeObject(body, &w); err != nil {
		return RecordPush{}, err
	}
	p := w.RecordPush
	var err error
	if p.EndpointUser, err = stringOrNumber(w.EndpointUser, "EndpointUser"); err != nil {
		return RecordPush{}, err
	}
	if p.RecordID, err = stringOrNumber(w.RecordID, "RecordId"); err != nil {
		return RecordPush{}, err
	}
	if err := checkRecording(p.SessionID, p.RecordURL, p.Timestamp); err != nil {
		return RecordPush{}, err
	}
	return p, nil
}

// ParseVoicemailPush decodes a voicemail push. EndpointUser may be a JSON number (the doc's
// sample) or a string.
func ParseVoicemailPush(body []byte) (VoicemailPush, error) {
	var w struct {
		VoicemailPush
		EndpointUser json.RawMessage `json:"EndpointUser"`
	}
	if err := decodeObject(body, &w); err != nil {
		return VoicemailPush{}, err
	}
	p := w.VoicemailPush
	var err error
	if p.EndpointUser, err = stringOrNumber(w.EndpointUser, "EndpointUser"); err != nil {
		return VoicemailPush{}, err
	}
	if err := checkRecording(p.SessionID, p.RecordURL, p.Timestamp); err != nil {
		return VoicemailPush{}, err
	}
	return p, nil
}

func checkRecording(session, url string, ts int64) error {
	switch {
	case session == "" || len(session) > 128:
		return fmt.Errorf("%w: SessionId missing or longer than 128 bytes", ErrMalformedPush)
	case !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") || len(url) > 2048:
		return fmt.Errorf("%w: RecordURL is not an http(s) URL", ErrMalformedPush)
	case ts < 0:
		return fmt.Errorf("%w: negative Timestamp", ErrMalformedPush)
	}
	return nil
}

// decodeObject decodes one JSON object into dst, with nothing after it.
func decodeObject(body []byte, dst any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return fmt.Errorf("%w: body is not a JSON object", ErrMalformedPush)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformedPush, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: data after the JSON object", ErrMalformedPush)
	}
	return nil
}

// stringOrNumber reads a field TCCC sends as a string or as a bare number.
func stringOrNumber(raw json.RawMessage, name string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		if _, err := strconv.ParseFloat(n.String(), 64); err == nil {
			return n.String(), nil
		}
	}
	return "", fmt.Errorf("%w: %s is neither a string nor a number", ErrMalformedPush, name)
}
