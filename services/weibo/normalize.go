package weibo

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/wire/weibo"
)

// The data of the events, as schemas/omni.channel.message.*.json define it.
type (
	identity struct {
		Kind  string `json:"kind"`
		Value string `json:"value"`
	}
	location struct {
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
		Name      string  `json:"name,omitempty"`
	}
	eventBody struct {
		Name   string            `json:"name"`
		Detail map[string]string `json:"detail,omitempty"`
	}
	message struct {
		Type     string         `json:"type"`
		Text     string         `json:"text,omitempty"`
		MediaID  string         `json:"media_id,omitempty"`
		Location *location      `json:"location,omitempty"`
		Event    *eventBody     `json:"event,omitempty"`
		Raw      map[string]any `json:"raw,omitempty"`
	}
	received struct {
		Channel          string    `json:"channel"`
		ChannelMessageID string    `json:"channel_message_id"`
		From             identity  `json:"from"`
		Account          string    `json:"account,omitempty"`
		Message          message   `json:"message"`
		SentAt           time.Time `json:"sent_at"`
		VendorTime       string    `json:"vendor_time,omitempty"`
	}
)

// windowEffect is what a push does to the fan's reply window.
type windowEffect int

const (
	windowNone  windowEffect = iota // nothing (a mention, an unsubscribe)
	windowOpen                      // opens 48 h: a message, follow, subscribe, scan, menu
	windowClose                     // closes it: an unfollow
)

// maxText bounds a text in the event (the schema's limit).
const maxText = 10000

// normalize maps a push to the message of its event; ok is false for a type or event subtype
// this connector does not know (Weibo's documentation says to ignore them).
func normalize(p weibo.Push) (m message, effect windowEffect, ok bool) {
	text := truncate(strings.ToValidUTF8(p.Text, "\uFFFD"), maxText)
	raw := func() map[string]any {
		b, _ := json.Marshal(p)
		var v map[string]any
		_ = json.Unmarshal(b, &v)
		return v
	}
	unsupported := message{Type: "unsupported", Raw: raw()}
	switch p.Type {
	case weibo.TypeText, weibo.TypeMention:
		effect = windowOpen
		if p.Type == weibo.TypeMention {
			effect = windowNone // one reply per mention, not a window: not tracked
		}
		if strings.TrimSpace(text) == "" {
			return unsupported, effect, true
		}
		return message{Type: "text", Text: text}, effect, true
	case weibo.TypeImage, weibo.TypeVoice:
		id := p.Data.Vfid
		if id == 0 {
			id = p.Data.Tovfid
		}
		if id <= 0 {
			return unsupported, windowOpen, true
		}
		return message{Type: p.Type, MediaID: strconv.FormatInt(id, 10)}, windowOpen, true
	case weibo.TypePosition:
		lat, err1 := strconv.ParseFloat(strings.TrimSpace(p.Data.Latitude), 64)
		lon, err2 := strconv.ParseFloat(strings.TrimSpace(p.Data.Longitude), 64)
		if err1 != nil || err2 != nil || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
			return unsupported, windowOpen, true
		}
		return message{Type: "location", Location: &location{Latitude: lat, Longitude: lon, Name: truncate(text, 512)}}, windowOpen, true
	case weibo.TypeEvent:
		switch p.Data.Subtype {
		case weibo.EventFollow, weibo.EventSubscribe, weibo.EventScan, weibo.EventScanFollow, weibo.EventClick, weibo.EventView:
			effect = windowOpen
		case weibo.EventUnfollow:
			effect = windowClose
		case weibo.EventUnsubscribe:
			effect = windowNone
		default:
			return message{}, windowNone, false
		}
		detail := map[string]string{}
		for k, v := range map[string]string{"key": p.Data.Key, "ticket": p.Data.Ticket, "text": text} {
			if v != "" {
				detail[k] = truncate(strings.ToValidUTF8(v, "\uFFFD"), 1024)
			}
		}
		if len(detail) == 0 {
			detail = nil
		}
		return message{Type: "event", Event: &eventBody{Name: "weibo." + p.Data.Subtype, Detail: detail}}, effect, true
	}
	return message{}, windowNone, false
}
