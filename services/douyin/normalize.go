package douyin

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/wire/douyin"
)

// The data of the events, as schemas/omni.channel.message.*.json define it.
type (
	link struct {
		Title       string `json:"title,omitempty"`
		Description string `json:"description,omitempty"`
		URL         string `json:"url"`
	}
	eventBody struct {
		Name   string            `json:"name"`
		Detail map[string]string `json:"detail,omitempty"`
	}
	message struct {
		Type     string         `json:"type"`
		Text     string         `json:"text,omitempty"`
		MediaID  string         `json:"media_id,omitempty"`
		MediaURL string         `json:"media_url,omitempty"`
		Link     *link          `json:"link,omitempty"`
		Event    *eventBody     `json:"event,omitempty"`
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

// Bounds of the schema's fields.
const (
	maxText   = 10000
	maxMedia  = 1024
	maxURL    = 2048
	maxTitle  = 512
	maxDetail = 1024
)

// normalize maps an im_receive_msg content to the message of its event. Text, image, video and
// card are mapped; an image or video without a usable URL or id, an empty text, a card with
// neither a link nor an id, and every other type become "unsupported" with the raw content.
//
// Only text is documented by Douyin; the shapes of image ({url, media_id}), video ({item_id,
// url}) and card ({card_id, title, description, url}) are pkg/wire/douyin's reading of public
// integrations: this function is the one place that maps them.
func normalize(m douyin.Message, content []byte) message {
	unsupported := func() message {
		var raw map[string]any
		_ = json.Unmarshal(content, &raw) // content is a JSON object: ParseMessage decoded it
		return message{Type: "unsupported", Raw: raw}
	}
	switch m.MessageType {
	case douyin.TypeText:
		if text := clean(m.Text, maxText); strings.TrimSpace(text) != "" {
			return message{Type: "text", Text: text}
		}
	case douyin.TypeImage:
		if m.Image != nil {
			if u := httpURL(m.Image.URL); u != "" {
				return message{Type: "image", MediaURL: u}
			}
			if id := mediaID(m.Image.MediaID); id != "" {
				return message{Type: "image", MediaID: id}
			}
		}
	case douyin.TypeVideo:
		if m.Video != nil {
			if u := httpURL(m.Video.URL); u != "" {
				return message{Type: "video", MediaURL: u}
			}
			if id := mediaID(m.Video.ItemID); id != "" {
				return message{Type: "video", MediaID: id} // a shared Douyin video: its item_id
			}
		}
	case douyin.TypeCard:
		if c := m.Card; c != nil {
			if u := httpURL(c.URL); u != "" {
				return message{Type: "link", Link: &link{Title: clean(c.Title, maxTitle), Description: clean(c.Description, maxTitle), URL: u}}
			}
			detail := map[string]string{}
			for k, v := range map[string]string{"card_id": c.CardID, "title": c.Title, "description": c.Description} {
				if v = clean(v, maxDetail); v != "" {
					detail[k] = v
				}
			}
			if len(detail) > 0 {
				return message{Type: "event", Event: &eventBody{Name: "douyin.card", Detail: detail}}
			}
		}
	}
	return unsupported()
}

// clean makes s valid UTF-8 within n bytes.
func clean(s string, n int) string { return truncate(strings.ToValidUTF8(s, "\uFFFD"), n) }

// httpURL returns s when it is an absolute http(s) URL the schema takes, else "".
func httpURL(s string) string {
	if s == "" || len(s) > maxURL {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !strings.HasPrefix(s, u.Scheme+"://") {
		return ""
	}
	return s
}

// mediaID returns id when the schema takes it as a media id, else "".
func mediaID(id string) string {
	if id == "" || len(id) > maxMedia || strings.TrimSpace(id) == "" {
		return ""
	}
	return strings.ToValidUTF8(id, "")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // do not cut a UTF-8 sequence
		n--
	}
	return s[:n]
}
