package kuaishou

// The private-message mapping, the one file that needs Kuaishou's partner documentation.
//
// Kuaishou documents its webhook (kwaisign, the acknowledgement, the test and authorisation
// events) but no private-message event or send API (vendors part2 §5.2). This file is the
// connector's assumption of the message event's data, the shape the sandbox sends:
//
//	{"msg_id": "...", "from_user_id": "<user open_id>", "to_user_id": "<account open_id>",
//	 "msg_type": "text|image|video", "text": "...", "media_url": "https://...",
//	 "create_time": 1710000000000, "nick_name": "..."}
//
// under the event named by KUAISHOU_MESSAGE_EVENT. With the partner documentation, change
// incoming and parseMessage (and the simulator's Message) here; the rest of the connector —
// signature, acknowledgement, dedupe, publishing — stays.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/connector"
)

// incoming is a private message as the (assumed) event data carries it.
type incoming struct {
	MsgID      string `json:"msg_id"`
	FromUserID string `json:"from_user_id"`
	ToUserID   string `json:"to_user_id"`
	MsgType    string `json:"msg_type"`
	Text       string `json:"text,omitempty"`
	MediaURL   string `json:"media_url,omitempty"`
	CreateTime int64  `json:"create_time,omitempty"` // milliseconds
	NickName   string `json:"nick_name,omitempty"`
}

// errMessage is wrapped for data that is not a message.
var errMessage = errors.New("kuaishou: not a private message")

// parseMessage reads the data of a message event: msg_id, from_user_id and msg_type are
// required, ids at most 200 bytes.
func parseMessage(data []byte) (incoming, error) {
	var m incoming
	if err := json.Unmarshal(data, &m); err != nil {
		return incoming{}, fmt.Errorf("%w: %w", errMessage, err)
	}
	if m.MsgID == "" || m.FromUserID == "" || m.MsgType == "" {
		return incoming{}, fmt.Errorf("%w: msg_id, from_user_id and msg_type are required", errMessage)
	}
	if len(m.MsgID) > 200 || len(m.FromUserID) > 200 || len(m.ToUserID) > 200 {
		return incoming{}, fmt.Errorf("%w: ids over 200 bytes", errMessage)
	}
	return m, nil
}

// createdAt is the message's create_time; zero when absent.
func (m incoming) createdAt() time.Time {
	if m.CreateTime <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(m.CreateTime)
}

// The data of the events, as schemas/omni.channel.message.*.json define it.
type (
	message struct {
		Type     string         `json:"type"`
		Text     string         `json:"text,omitempty"`
		MediaURL string         `json:"media_url,omitempty"`
		Raw      map[string]any `json:"raw,omitempty"`
	}
	received struct {
		Channel          string             `json:"channel"`
		ChannelMessageID string             `json:"channel_message_id"`
		From             connector.Identity `json:"from"`
		DisplayName      string             `json:"display_name,omitempty"`
		Account          string             `json:"account,omitempty"`
		Message          message            `json:"message"`
		SentAt           time.Time          `json:"sent_at"`
		VendorTime       string             `json:"vendor_time,omitempty"`
	}
)

// normalize maps a message to the message of its event: text, image and video (by an http(s)
// media_url); anything else, an empty text or a media message without a usable URL becomes
// "unsupported" with the raw data.
func normalize(m incoming, data []byte) message {
	switch m.MsgType {
	case "text":
		if text := clean(m.Text, 10000); strings.TrimSpace(text) != "" {
			return message{Type: "text", Text: text}
		}
	case "image", "video":
		if u := httpURL(m.MediaURL); u != "" {
			return message{Type: m.MsgType, MediaURL: u}
		}
	}
	var raw map[string]any
	_ = json.Unmarshal(data, &raw) // data is a JSON object: parseMessage decoded it
	return message{Type: "unsupported", Raw: raw}
}

// clean makes s valid UTF-8 within n bytes.
func clean(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // do not cut a UTF-8 sequence
		n--
	}
	return s[:n]
}

// httpURL returns s when it is an absolute http(s) URL the schema takes, else "".
func httpURL(s string) string {
	if s == "" || len(s) > 2048 {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !strings.HasPrefix(s, u.Scheme+"://") {
		return ""
	}
	return s
}
