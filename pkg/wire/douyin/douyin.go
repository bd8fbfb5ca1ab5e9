// Package douyin is the wire of Douyin open platform (抖音开放平台) webhooks and enterprise-account
// private messages, shared by the douyin connector and its sandbox simulator: the webhook
// signature (X-Douyin-Signature = lower-case hex SHA-1 of client_secret followed by the raw body),
// the unified event envelope (whose content is a JSON-encoded string for most events and an
// object for some), the URL check (verify_webhook, answered with its challenge), the
// im_receive_msg content and the reply of /im/send/msg/.
//
// Sources: developer.open-douyin.com webhooks/summarize and event-list (envelope, signature,
// verification, retries) [doc]; the im_receive_msg content fields are corroborated by several
// integrations, the content of image, video and card messages and the reply call by public SDKs
// only [unconfirmed]: they are marked so below and kept in this one file.
package douyin

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // Douyin's webhook signature is SHA-1; it is the vendor's protocol
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/wire/internal/jsonfield"
)

// Headers of a webhook request.
const (
	// SignatureHeader carries Sign(client_secret, body).
	SignatureHeader = "X-Douyin-Signature"
	// MsgIDHeader is the delivery's id, the same on every retry of one event.
	MsgIDHeader = "Msg-Id"
)

// Sign returns the webhook signature of body: lower-case hex SHA-1(clientSecret + body).
func Sign(clientSecret string, body []byte) string {
	h := sha1.New() //nolint:gosec // the vendor's algorithm
	h.Write([]byte(clientSecret))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Verify reports whether signature is Sign(clientSecret, body), in constant time and ignoring
// the signature's case.
func Verify(clientSecret string, body []byte, signature string) bool {
	want := Sign(clientSecret, body)
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(signature)), []byte(want)) == 1
}

// Event names (scope im.direct_message, plus the URL check).
const (
	EventVerifyWebhook = "verify_webhook"
	EventReceiveMsg    = "im_receive_msg"      // a user wrote to the authorised account
	EventSendMsg       = "im_send_msg"         // the account sent (echoes API sends too)
	EventEnterDirect   = "im_enter_direct_msg" // a user opened the DM page
	EventRecallMsg     = "im_recall_msg"
)

// Envelope is the unified body of every webhook event.
type Envelope struct {
	Event      string          `json:"event"`
	FromUserID string          `json:"from_user_id,omitempty"`
	ToUserID   string          `json:"to_user_id,omitempty"`
	ClientKey  string          `json:"client_key"`
	Content    json.RawMessage `json:"content"`
	LogID      string          `json:"log_id,omitempty"`
}

// ErrEvent is wrapped by ParseEnvelope and the content parsers for a body that is not an event.
var ErrEvent = errors.New("douyin: not a webhook event")

// ParseEnvelope decodes a webhook body; event is required.
func ParseEnvelope(body []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrEvent, err)
	}
	if e.Event == "" {
		return Envelope{}, fmt.Errorf("%w: no event name", ErrEvent)
	}
	return e, nil
}

// ContentJSON returns the content as JSON: the decoded string when Douyin sent it JSON-encoded
// (most events), the object itself otherwise.
func (e Envelope) ContentJSON() ([]byte, error) {
	c, err := jsonfield.Unwrap(e.Content)
	if err != nil {
		return nil, fmt.Errorf("%w: content: %w", ErrEvent, err)
	}
	return c, nil
}

// Challenge is the verify_webhook content and its answer: {"challenge":12345}.
type Challenge struct {
	Challenge json.Number `json:"challenge"`
}

// ParseChallenge reads the challenge of a verify_webhook event; it must be a number.
func ParseChallenge(e Envelope) (Challenge, error) {
	c, err := e.ContentJSON()
	if err != nil {
		return Challenge{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(c))
	dec.UseNumber()
	var ch Challenge
	if err := dec.Decode(&ch); err != nil || ch.Challenge == "" {
		return Challenge{}, fmt.Errorf("%w: verify_webhook without a numeric challenge", ErrEvent)
	}
	if _, err := strconv.ParseInt(ch.Challenge.String(), 10, 64); err != nil {
		return Challenge{}, fmt.Errorf("%w: challenge %.24q is not an integer", ErrEvent, ch.Challenge)
	}
	return ch, nil
}

// ID is an id Douyin writes as a string or as a number (server_message_id is a 19-digit
// number in some integrations): kept as the decimal text either way, never through a float.
type ID string

// UnmarshalJSON accepts a string or an integer.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if _, err := strconv.ParseUint(string(b), 10, 64); err != nil {
		return fmt.Errorf("douyin: id %.30s is neither a string nor an integer", b)
	}
	*id = ID(b)
	return nil
}

// Message types of im_receive_msg (message_type). Only text is confirmed by the documentation.
const (
	TypeText  = "text"
	TypeImage = "image"
	TypeVideo = "video"
	TypeCard  = "card"
	TypeEmoji = "emoji"
)

// Message is the content of im_receive_msg (and im_send_msg).
type Message struct {
	ConversationShortID string `json:"conversation_short_id"`
	ServerMessageID     ID     `json:"server_message_id"`
	ConversationType    int    `json:"conversation_type"` // 1 = private chat
	CreateTime          int64  `json:"create_time"`       // milliseconds
	MessageType         string `json:"message_type"`
	Text                string `json:"text,omitempty"`
	// Image, Video and Card are this package's reading of the other message types
	// [unconfirmed: public integrations only].
	Image     *Image     `json:"image,omitempty"`
	Video     *Video     `json:"video,omitempty"`
	Card      *Card      `json:"card,omitempty"`
	UserInfos []UserInfo `json:"user_infos,omitempty"`
}

// Image is an image message: a temporary URL on Douyin's CDN, or a media id. [unconfirmed]
type Image struct {
	URL     string `json:"url,omitempty"`
	MediaID string `json:"media_id,omitempty"`
	Width   int    `json:"width,omitempty"`
	Height  int    `json:"height,omitempty"`
}

// Video is a video message: a shared Douyin video (item_id) or an uploaded one (url). [unconfirmed]
type Video struct {
	ItemID   string `json:"item_id,omitempty"`
	URL      string `json:"url,omitempty"`
	CoverURL string `json:"cover_url,omitempty"`
	Title    string `json:"title,omitempty"`
}

// Card is a card message (a shared product, a lead-collection or service card). [unconfirmed]
type Card struct {
	CardID      string `json:"card_id,omitempty"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"`
	ImageURL    string `json:"image_url,omitempty"`
}

// UserInfo is a participant's public profile.
type UserInfo struct {
	OpenID   string `json:"open_id"`
	NickName string `json:"nick_name,omitempty"`
	Avatar   string `json:"avatar,omitempty"`
}

// ParseMessage reads the content of an im_receive_msg or im_send_msg event: it must carry a
// server_message_id, a conversation_short_id and a message_type; the envelope must name the
// sender and the receiving account.
func ParseMessage(e Envelope) (Message, error) {
	c, err := e.ContentJSON()
	if err != nil {
		return Message{}, err
	}
	var m Message
	if err := json.Unmarshal(c, &m); err != nil {
		return Message{}, fmt.Errorf("%w: content: %w", ErrEvent, err)
	}
	if m.ServerMessageID == "" || m.ConversationShortID == "" || m.MessageType == "" {
		return Message{}, fmt.Errorf("%w: server_message_id, conversation_short_id and message_type are required", ErrEvent)
	}
	if e.FromUserID == "" || e.ToUserID == "" {
		return Message{}, fmt.Errorf("%w: from_user_id and to_user_id are required", ErrEvent)
	}
	return m, nil
}

// CreatedAt is the message's create_time (milliseconds); zero when absent.
func (m Message) CreatedAt() time.Time {
	if m.CreateTime <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(m.CreateTime)
}

// Content builds a content string as Douyin delivers it: the JSON of v, JSON-encoded again.
func Content(v any) (json.RawMessage, error) {
	inner, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(string(inner))
}

// The reply (私信回复) [unconfirmed: corroborated by public SDKs, not read from the official page].
const (
	// SendPath is the reply API, relative to https://open.douyin.com; the query carries
	// open_id, the authorised account's open_id.
	SendPath = "/im/send/msg/"
	// TokenHeader carries the account's access_token (from /oauth/access_token/).
	TokenHeader = "access-token"
	// SceneReply is the scene of a reply to a user's message.
	SceneReply = "im_reply_msg"
	// MsgTypeText is the content's msg_type of a text.
	MsgTypeText = 1
)

// ReplyWindow and ReplyQuota are the platform's limits as the public integrations describe
// them: replies within about 24 h of the user's last message, at most about 6 before the user
// writes again. [unconfirmed]
const (
	ReplyWindow = 24 * time.Hour
	ReplyQuota  = 6
)

// SendRequest is the body of a reply.
type SendRequest struct {
	MsgID          string      `json:"msg_id"`          // the server_message_id answered
	ConversationID string      `json:"conversation_id"` // its conversation_short_id
	ToUserID       string      `json:"to_user_id"`
	Scene          string      `json:"scene"`
	Content        SendContent `json:"content"`
}

// SendContent is a reply's content; text only here.
type SendContent struct {
	MsgType int       `json:"msg_type"`
	Text    *TextBody `json:"text,omitempty"`
}

// TextBody is a text reply.
type TextBody struct {
	Text string `json:"text"`
}

// MaxTextRunes bounds a text reply. [unconfirmed: the simulator's limit]
const MaxTextRunes = 1000

// Response is the answer of Douyin's open API: data.error_code 0 on success, with the reply's
// msg_id; extra carries the log id.
type Response struct {
	Data  ResponseData `json:"data"`
	Extra Extra        `json:"extra"`
}

// ResponseData is the answer's data.
type ResponseData struct {
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	MsgID       string `json:"msg_id,omitempty"`
}

// Extra is the answer's extra.
type Extra struct {
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	LogID       string `json:"logid"`
	Now         int64  `json:"now"`
}

// CodeOf returns the error code of an answer body: data.error_code, else extra.error_code, as
// text ("0" on success); "" when the body is not such an answer.
func CodeOf(body []byte) string {
	var r struct {
		Data *struct {
			ErrorCode *int64 `json:"error_code"`
		} `json:"data"`
		Extra *struct {
			ErrorCode *int64 `json:"error_code"`
		} `json:"extra"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return ""
	}
	switch {
	case r.Data != nil && r.Data.ErrorCode != nil && *r.Data.ErrorCode != 0:
		return strconv.FormatInt(*r.Data.ErrorCode, 10)
	case r.Extra != nil && r.Extra.ErrorCode != nil && *r.Extra.ErrorCode != 0:
		return strconv.FormatInt(*r.Extra.ErrorCode, 10)
	case r.Data != nil && r.Data.ErrorCode != nil:
		return "0"
	}
	return ""
}

// Error codes. Douyin's general codes are documented; the window and quota codes are the
// simulator's own (Douyin's are not in our notes).
const (
	CodeOK            = 0
	CodeInvalidToken  = 2190008  // access_token expired or invalid
	CodeParam         = 2100005  // parameter error
	CodeRateLimit     = 2100004  // system busy / rate limited
	CodeSystem        = 2100009  // system error
	CodeOutsideWindow = 28003017 // the simulator's: reply outside the window
	CodeQuota         = 28003018 // the simulator's: reply quota used up
)
