// Package weibo is the wire of Weibo's fan service platform (粉丝服务平台) private messages, shared
// by the weibo connector and its sandbox simulator: the callback signature (lower-case hex
// SHA-1 of the sorted, concatenated app secret, timestamp and nonce; the timestamp is in
// milliseconds), the push body of every message and event type, and the active reply of
// messages/reply.json (a form whose data field is URL-encoded JSON).
//
// Sources: open.weibo.com/wiki/Messages_api_start (signature, URL verification),
// /wiki/Receive_General_Message, /wiki/Receive_Event_Push (pushes),
// /wiki/Send_Customer_Service_Message (reply). The reply's answer body and error codes are not
// documented: Error follows Weibo's general {"error","error_code","request"} shape.
package weibo

import (
	"crypto/sha1" //nolint:gosec // Weibo's callback signature is SHA-1; it is the vendor's protocol
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Paths of the platform's API, relative to its base (https://m.api.weibo.com).
const (
	// ReplyPath is the active reply (客服消息).
	ReplyPath = "/2/messages/reply.json"
)

// ReplyWindow is how long after a fan's message (or follow, subscribe, menu click, QR scan) the
// account may reply, as often as it likes.
const ReplyWindow = 48 * time.Hour

// Sign returns the callback signature: lower-case hex SHA-1 of the lexicographically sorted
// [appSecret, timestamp, nonce] joined with no separator.
func Sign(appSecret, timestamp, nonce string) string {
	parts := []string{appSecret, timestamp, nonce}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, ""))) //nolint:gosec // the vendor's algorithm
	return hex.EncodeToString(sum[:])
}

// Verify reports whether signature is Sign(appSecret, timestamp, nonce), in constant time and
// ignoring the signature's case.
func Verify(appSecret, timestamp, nonce, signature string) bool {
	want := Sign(appSecret, timestamp, nonce)
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(signature)), []byte(want)) == 1
}

// SignQuery returns the query Weibo appends to a push or verification: signature, timestamp
// (milliseconds), nonce, and echostr when not empty.
func SignQuery(appSecret string, at time.Time, nonce, echostr string) url.Values {
	ts := strconv.FormatInt(at.UnixMilli(), 10)
	q := url.Values{"signature": {Sign(appSecret, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}}
	if echostr != "" {
		q.Set("echostr", echostr)
	}
	return q
}

// ErrTimestamp is wrapped by ParseTimestamp for a timestamp that is not Unix milliseconds.
var ErrTimestamp = errors.New("weibo: timestamp is not Unix milliseconds")

// ParseTimestamp reads the callback timestamp, Unix milliseconds.
func ParseTimestamp(ts string) (time.Time, error) {
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || ms <= 0 || len(ts) > 16 {
		return time.Time{}, fmt.Errorf("%w: %.20q", ErrTimestamp, ts)
	}
	return time.UnixMilli(ms), nil
}

// Message types of a push, and the subtypes of an event push.
const (
	TypeText     = "text"
	TypePosition = "position"
	TypeVoice    = "voice"
	TypeImage    = "image"
	TypeEvent    = "event"
	TypeMention  = "mention"

	EventFollow      = "follow"
	EventUnfollow    = "unfollow"
	EventSubscribe   = "subscribe"
	EventUnsubscribe = "unsubscribe"
	EventScan        = "scan"
	EventScanFollow  = "scan_follow"
	EventClick       = "click"
	EventView        = "view"
)

// CreatedAtLayout is the layout of a push's created_at: "Mon Jul 16 18:09:20 +0800 2012".
const CreatedAtLayout = time.RubyDate

// Push is the JSON body of every push. The uids are int64 numbers on the wire.
type Push struct {
	Type       string `json:"type"`
	ReceiverID int64  `json:"receiver_id"` // the account's uid
	SenderID   int64  `json:"sender_id"`   // the fan's uid
	CreatedAt  string `json:"created_at"`
	Text       string `json:"text"`
	Data       Data   `json:"data"`
}

// Data is the type-dependent part of a push. Position's coordinates are strings; voice and image
// carry media file ids; events carry a subtype and, for scans and clicks, a key and ticket.
type Data struct {
	Longitude string `json:"longitude,omitempty"`
	Latitude  string `json:"latitude,omitempty"`
	Vfid      int64  `json:"vfid,omitempty"`
	Tovfid    int64  `json:"tovfid,omitempty"`
	Subtype   string `json:"subtype,omitempty"`
	Key       string `json:"key,omitempty"`
	Ticket    string `json:"ticket,omitempty"`
}

// ErrPush is wrapped by ParsePush for a body that is not a push.
var ErrPush = errors.New("weibo: not a push")

// ParsePush decodes and checks a push body: JSON, a type, positive sender and receiver uids and a
// created_at in CreatedAtLayout. Unknown types parse (the doc says to ignore them).
func ParsePush(body []byte) (Push, time.Time, error) {
	var p Push
	if err := json.Unmarshal(body, &p); err != nil {
		return Push{}, time.Time{}, fmt.Errorf("%w: %w", ErrPush, err)
	}
	if p.Type == "" || p.SenderID <= 0 || p.ReceiverID <= 0 {
		return Push{}, time.Time{}, fmt.Errorf("%w: type, sender_id and receiver_id are required", ErrPush)
	}
	at, err := time.Parse(CreatedAtLayout, p.CreatedAt)
	if err != nil {
		return Push{}, time.Time{}, fmt.Errorf("%w: created_at %.40q is not %q", ErrPush, p.CreatedAt, CreatedAtLayout)
	}
	return p, at, nil
}

// Reply is an active reply to messages/reply.json. Data is the JSON of the type's payload
// ({"text":"..."} for text).
type Reply struct {
	AccessToken string
	ReceiverID  int64
	Type        string
	Data        json.RawMessage
}

// MaxTextRunes bounds a text reply ("fewer than 300 Chinese characters").
const MaxTextRunes = 300

// TextData is the data of a text reply.
type TextData struct {
	Text string `json:"text"`
}

// Form encodes r as the request's form (data URL-encoded by the form encoding).
func (r Reply) Form() url.Values {
	return url.Values{
		"access_token": {r.AccessToken},
		"receiver_id":  {strconv.FormatInt(r.ReceiverID, 10)},
		"type":         {r.Type},
		"data":         {string(r.Data)},
	}
}

// ParseReply reads a reply form (the simulator's side).
func ParseReply(form url.Values) (Reply, error) {
	id, err := strconv.ParseInt(form.Get("receiver_id"), 10, 64)
	if err != nil || id <= 0 {
		return Reply{}, errors.New("weibo: receiver_id is not a uid")
	}
	data := form.Get("data")
	if !json.Valid([]byte(data)) {
		return Reply{}, errors.New("weibo: data is not JSON")
	}
	return Reply{AccessToken: form.Get("access_token"), ReceiverID: id, Type: form.Get("type"), Data: json.RawMessage(data)}, nil
}

// Sent is the answer of a reply. Weibo does not document it; the simulator answers the fields
// of a direct message (id, created_at, recipient_id).
type Sent struct {
	ID          int64  `json:"id"`
	IDStr       string `json:"idstr,omitempty"`
	CreatedAt   string `json:"created_at,omitempty"`
	RecipientID int64  `json:"recipient_id,omitempty"`
}

// Error is Weibo's API error body.
type Error struct {
	Error     string `json:"error"`
	ErrorCode int    `json:"error_code"`
	Request   string `json:"request"`
}

// Error codes the simulator answers, from Weibo's general error table.
const (
	CodeInvalidToken  = 21332 // invalid access_token
	CodeExpiredToken  = 21327 // expired_token
	CodeOutsideWindow = 20118 // the simulator's code for a reply outside the 48 h window [unconfirmed]
	CodeParam         = 10008 // param error
	CodeRateLimit     = 10023 // user requests out of rate limit
)
