package wecom

import (
	"encoding/json"
	"fmt"
	"strings"
)

// DefaultAPIBase is the WeCom API host.
const DefaultAPIBase = "https://qyapi.weixin.qq.com"

// API paths, below the API base.
const (
	PathGetToken = "/cgi-bin/gettoken"
	PathSyncMsg  = "/cgi-bin/kf/sync_msg"
	PathSendMsg  = "/cgi-bin/kf/send_msg"
)

// WeCom error codes (errcode) the kf integration meets. Sources: the WeCom global error code
// table and the 微信客服 error code table (developer.work.weixin.qq.com; kancloud mirrors).
const (
	CodeOK                    = 0
	CodeSystemBusy            = -1    // 系统繁忙: retry (at most 3 times, says WeCom)
	CodeInvalidSecret         = 40001 // 不合法的secret参数 (also "invalid credential" on an API call)
	CodeInvalidMsgType        = 40008 // 不合法的msgtype参数
	CodeInvalidCorpID         = 40013 // 不合法的corpid
	CodeInvalidAccessToken    = 40014 // 不合法的access_token
	CodeInvalidParameter      = 40058 // 不合法的参数
	CodeInvalidExternalUserID = 40096 // 不合法的外部联系人userid
	CodeMissingAccessToken    = 41001 // 缺少access_token参数
	CodeMissingCorpID         = 41002 // 缺少corpid参数
	CodeMissingSecret         = 41004 // 缺少secret参数
	CodeAccessTokenExpired    = 42001 // access_token已过期
	CodeEmptyContent          = 44004 // 文本消息content参数为空
	CodeContentTooLong        = 45002 // 消息内容大小超过限制
	CodeRateLimited           = 45009 // 接口调用超过限制
	CodeDataFormat            = 47001 // 数据格式错误
	CodeAPIForbidden          = 48002 // api禁止调用 (the app has no access to the API)
	CodeIPNotAllowed          = 60020 // 访问ip不在白名单之中 (not in the app's trusted IPs)
	CodeInvalidOpenKfID       = 95000 // 不合法的open_kfid
	CodeSendLimit             = 95001 // 发送客服消息次数限制
	CodeInvalidMsgToken       = 95007 // 不合法的msgtoken (sync_msg token)
	CodeSessionState          = 95018 // send msg session status invalid
)

// ErrorText is the errmsg WeCom sends with code (its English text where known).
func ErrorText(code int) string {
	switch code {
	case CodeOK:
		return "ok"
	case CodeSystemBusy:
		return "system busy"
	case CodeInvalidSecret:
		return "invalid credential"
	case CodeInvalidMsgType:
		return "invalid message type"
	case CodeInvalidCorpID:
		return "invalid corpid"
	case CodeInvalidAccessToken:
		return "invalid access_token"
	case CodeInvalidParameter:
		return "invalid Request Parameter"
	case CodeInvalidExternalUserID:
		return "invalid external userid"
	case CodeMissingAccessToken:
		return "access_token missing"
	case CodeMissingCorpID:
		return "corpid missing"
	case CodeMissingSecret:
		return "corpsecret missing"
	case CodeAccessTokenExpired:
		return "access_token expired"
	case CodeEmptyContent:
		return "empty content"
	case CodeContentTooLong:
		return "content size out of limit"
	case CodeRateLimited:
		return "api freq out of limit"
	case CodeDataFormat:
		return "data format error"
	case CodeAPIForbidden:
		return "api forbidden"
	case CodeIPNotAllowed:
		return "not allow to access from your ip"
	case CodeInvalidOpenKfID:
		return "invalid open_kfid"
	case CodeSendLimit:
		return "send msg count limit"
	case CodeInvalidMsgToken:
		return "invalid msg token"
	case CodeSessionState:
		return "send msg session status invalid"
	}
	return "error"
}

// Error is a WeCom API error: a non-zero errcode. errors.Is matches on the code, so
// errors.Is(err, ErrAccessTokenExpired) holds for any 42001, however it was built.
type Error struct {
	Code int    `json:"errcode"`
	Msg  string `json:"errmsg"`
}

func (e *Error) Error() string { return fmt.Sprintf("wecom errcode %d: %s", e.Code, e.Msg) }

// Is matches another *Error by code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// TokenRejected reports whether the code says the access_token must be fetched again
// (40014 invalid, 42001 expired, 40001 invalid credential).
func (e *Error) TokenRejected() bool {
	return e.Code == CodeInvalidAccessToken || e.Code == CodeAccessTokenExpired || e.Code == CodeInvalidSecret
}

// Retryable reports whether the same call may succeed later unchanged (system busy, rate limit).
func (e *Error) Retryable() bool { return e.Code == CodeSystemBusy || e.Code == CodeRateLimited }

// Sentinels for errors.Is.
var (
	ErrSystemBusy         = &Error{Code: CodeSystemBusy}
	ErrInvalidAccessToken = &Error{Code: CodeInvalidAccessToken}
	ErrAccessTokenExpired = &Error{Code: CodeAccessTokenExpired}
	ErrRateLimited        = &Error{Code: CodeRateLimited}
	ErrInvalidMsgToken    = &Error{Code: CodeInvalidMsgToken}
	ErrSessionState       = &Error{Code: CodeSessionState}
)

// Response is the errcode/errmsg pair every WeCom answer carries.
type Response struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// Err returns the response's *Error, or nil for errcode 0.
func (r Response) Err() error {
	if r.ErrCode == CodeOK {
		return nil
	}
	return &Error{Code: r.ErrCode, Msg: r.ErrMsg}
}

// NewResponse is the response of code with WeCom's errmsg text for it.
func NewResponse(code int) Response { return Response{ErrCode: code, ErrMsg: ErrorText(code)} }

// TokenResponse answers GET /cgi-bin/gettoken?corpid=..&corpsecret=..
type TokenResponse struct {
	Response
	AccessToken string `json:"access_token,omitempty"`
	ExpiresIn   int    `json:"expires_in,omitempty"`
}

// SyncMsgRequest is the body of POST /cgi-bin/kf/sync_msg?access_token=..
type SyncMsgRequest struct {
	// Cursor is the previous answer's next_cursor; empty on the first pull (≤ 64 bytes).
	Cursor string `json:"cursor,omitempty"`
	// Token is the callback's Token (valid 10 minutes; relaxes the rate limit; ≤ 128 bytes).
	Token string `json:"token,omitempty"`
	// Limit is at most (and by default) 1000.
	Limit int `json:"limit,omitempty"`
	// VoiceFormat: 0 AMR, 1 SILK.
	VoiceFormat int    `json:"voice_format,omitempty"`
	OpenKfID    string `json:"open_kfid,omitempty"`
}

// Sync limits.
const (
	MaxSyncLimit    = 1000
	MaxCursorLen    = 64
	MaxMsgTokenLen  = 128
	MaxSendMsgIDLen = 32
)

// SyncMsgResponse answers kf/sync_msg. MsgList keeps every item raw: DecodeMessage decodes one,
// so that an item of an unknown or malformed shape can still be passed on as it came.
type SyncMsgResponse struct {
	Response
	NextCursor string            `json:"next_cursor,omitempty"`
	HasMore    int               `json:"has_more"`
	MsgList    []json.RawMessage `json:"msg_list"`
}

// Message origins.
const (
	OriginCustomer = 3 // 微信客户发送的消息
	OriginSystem   = 4 // 系统推送的事件消息
	OriginServicer = 5 // 接待人员在企业微信客户端发送的消息
)

// Message is one item of sync_msg's msg_list. The payload field named by MsgType is set. For
// events (msgtype "event") WeCom leaves the top-level open_kfid and external_userid out; they
// are inside Event.
type Message struct {
	MsgID          string        `json:"msgid,omitempty"`
	OpenKfID       string        `json:"open_kfid,omitempty"`
	ExternalUserID string        `json:"external_userid,omitempty"`
	SendTime       int64         `json:"send_time,omitempty"`
	Origin         int           `json:"origin,omitempty"`
	ServicerUserID string        `json:"servicer_userid,omitempty"`
	MsgType        string        `json:"msgtype"`
	Text           *Text         `json:"text,omitempty"`
	Image          *Media        `json:"image,omitempty"`
	Voice          *Media        `json:"voice,omitempty"`
	Video          *Media        `json:"video,omitempty"`
	File           *Media        `json:"file,omitempty"`
	Location       *Location     `json:"location,omitempty"`
	Link           *Link         `json:"link,omitempty"`
	BusinessCard   *BusinessCard `json:"business_card,omitempty"`
	MiniProgram    *MiniProgram  `json:"miniprogram,omitempty"`
	Event          *Event        `json:"event,omitempty"`
}

// Text is a text payload; MenuID is set when the customer clicked a menu item.
type Text struct {
	Content string `json:"content"`
	MenuID  string `json:"menu_id,omitempty"`
}

// Media is an image, voice, video or file payload.
type Media struct {
	MediaID string `json:"media_id"`
}

// Location is a location payload.
type Location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
}

// Link is a link payload: received links carry PicURL, sent ones ThumbMediaID.
type Link struct {
	Title        string `json:"title,omitempty"`
	Desc         string `json:"desc,omitempty"`
	URL          string `json:"url"`
	PicURL       string `json:"pic_url,omitempty"`
	ThumbMediaID string `json:"thumb_media_id,omitempty"`
}

// BusinessCard is a contact card payload.
type BusinessCard struct {
	UserID string `json:"userid"`
}

// MiniProgram is a mini program card payload.
type MiniProgram struct {
	AppID        string `json:"appid"`
	Title        string `json:"title,omitempty"`
	ThumbMediaID string `json:"thumb_media_id,omitempty"`
	PagePath     string `json:"pagepath"`
}

// Event types.
const (
	EventEnterSession         = "enter_session"
	EventMsgSendFail          = "msg_send_fail"
	EventServicerStatusChange = "servicer_status_change"
	EventSessionStatusChange  = "session_status_change"
	EventUserRecallMsg        = "user_recall_msg"
	EventServicerRecallMsg    = "servicer_recall_msg"
)

// Event is an event payload; which fields are set depends on EventType.
type Event struct {
	EventType         string `json:"event_type"`
	OpenKfID          string `json:"open_kfid,omitempty"`
	ExternalUserID    string `json:"external_userid,omitempty"`
	Scene             string `json:"scene,omitempty"`
	SceneParam        string `json:"scene_param,omitempty"`
	WelcomeCode       string `json:"welcome_code,omitempty"`
	FailMsgID         string `json:"fail_msgid,omitempty"`
	FailType          int    `json:"fail_type,omitempty"`
	ServicerUserID    string `json:"servicer_userid,omitempty"`
	Status            int    `json:"status,omitempty"`
	ChangeType        int    `json:"change_type,omitempty"`
	OldServicerUserID string `json:"old_servicer_userid,omitempty"`
	NewServicerUserID string `json:"new_servicer_userid,omitempty"`
	MsgCode           string `json:"msg_code,omitempty"`
	RecallMsgID       string `json:"recall_msgid,omitempty"`
}

// DecodeMessage decodes one msg_list item. It fails only when the item is not a JSON object or a
// known field has the wrong JSON type; unknown msgtypes decode with no payload set.
func DecodeMessage(raw json.RawMessage) (Message, error) {
	var m Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return Message{}, fmt.Errorf("wecom: msg_list item: %w", err)
	}
	return m, nil
}

// Customer returns the external_userid and open_kfid the item is about: the top-level fields,
// or for events those inside the event.
func (m Message) Customer() (externalUserID, openKfID string) {
	externalUserID, openKfID = m.ExternalUserID, m.OpenKfID
	if m.Event != nil {
		if externalUserID == "" {
			externalUserID = m.Event.ExternalUserID
		}
		if openKfID == "" {
			openKfID = m.Event.OpenKfID
		}
	}
	return externalUserID, openKfID
}

// SendMsgRequest is the body of POST /cgi-bin/kf/send_msg?access_token=..
type SendMsgRequest struct {
	ToUser   string `json:"touser"`
	OpenKfID string `json:"open_kfid"`
	// MsgID is optional: ≤ 32 bytes of [0-9a-zA-Z_-], echoed back; generated when empty.
	MsgID       string       `json:"msgid,omitempty"`
	MsgType     string       `json:"msgtype"`
	Text        *Text        `json:"text,omitempty"`
	Image       *Media       `json:"image,omitempty"`
	Voice       *Media       `json:"voice,omitempty"`
	Video       *Media       `json:"video,omitempty"`
	File        *Media       `json:"file,omitempty"`
	Link        *Link        `json:"link,omitempty"`
	MiniProgram *MiniProgram `json:"miniprogram,omitempty"`
	Location    *Location    `json:"location,omitempty"`
}

// SendMsgResponse answers kf/send_msg.
type SendMsgResponse struct {
	Response
	MsgID string `json:"msgid,omitempty"`
}

// ValidSendMsgID reports whether id may be passed as send_msg's msgid.
func ValidSendMsgID(id string) bool {
	if len(id) > MaxSendMsgIDLen {
		return false
	}
	return strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-") == ""
}
