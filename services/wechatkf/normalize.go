package wechatkf

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/wire/wecom"
)

// normalizer turns sync_msg items into omnibus events:
//
//   - a customer's message (origin 3) or event (origin 4, e.g. enter_session) becomes
//     omni.channel.message.received on omni.in.wechatkf.message, id wechatkf:<msgid>, from
//     {wecom_external_userid}, partitionkey wecom_external_userid:<id>; a msgtype this connector
//     does not map (business_card, channels_shop_product, merged_msg, ...) or a payload that does
//     not fit the message schema is published as type "unsupported" with the vendor item as raw;
//   - a message a servicer sent from the WeCom client (origin 5) becomes a "sent"
//     omni.channel.message.status.updated with to and message, so the conversation shows the
//     agent's reply; the echo of this connector's own sends (msgid prefix "omni") is skipped;
//   - events about no customer (servicer_status_change) are not customer traffic and are skipped;
//   - the event's time, and its sent_at or at, is the item's send_time — or, when that lies out
//     of bounds (connector.DefaultTimeWindow), the time of the pull, with send_time kept as
//     vendor_time.
type normalizer struct {
	rt       *connector.Runtime // EventTime: its warning and metric when a send_time is out of bounds
	source   string
	sceneKey []byte
	schemas  *schema.Registry
	log      *slog.Logger
	now      func() time.Time
}

// sendMsgIDPrefix marks the msgid of a message this connector sent with kf/send_msg.
const sendMsgIDPrefix = "omni"

const partitionKind = "wecom_external_userid"

// events normalises one sync_msg page of kf account kfID, in order.
func (n *normalizer) events(kfID string, items []json.RawMessage) []bus.Outgoing {
	out := make([]bus.Outgoing, 0, len(items))
	for _, raw := range items {
		if o, ok := n.item(kfID, raw); ok {
			out = append(out, o)
		}
	}
	return out
}

func (n *normalizer) item(kfID string, raw json.RawMessage) (bus.Outgoing, bool) {
	m, err := wecom.DecodeMessage(raw)
	if err != nil {
		// A field of an unexpected JSON type: read what identifies it and pass it on raw.
		m = lenient(raw)
	}
	msgID := m.MsgID
	if msgID == "" {
		sum := sha256.Sum256(raw)
		msgID = "h" + hex.EncodeToString(sum[:16])
	}
	user, account := m.Customer()
	if account == "" {
		account = kfID
	}
	if user == "" {
		n.log.Debug("sync_msg item about no customer skipped", "msgid", msgID, "msgtype", m.MsgType)
		return bus.Outgoing{}, false
	}
	sentAt, vendorTime := n.eventTime(m.SendTime, msgID)
	from := map[string]string{"kind": partitionKind, "value": user}
	key := event.WithPartitionKey(partitionKind + ":" + user)
	if m.Origin == wecom.OriginServicer {
		if strings.HasPrefix(msgID, sendMsgIDPrefix) {
			return bus.Outgoing{}, false // our own send, already reported by the send handler
		}
		status := map[string]any{"channel": Channel, "message_id": "wechatkf:" + msgID, "vendor_message_id": msgID,
			"status": "sent", "at": sentAt}
		if vendorTime != nil {
			status["vendor_time"] = *vendorTime
		}
		if msg, ok := message(m, raw); ok && outboundTypes[msg["type"].(string)] {
			status["to"], status["message"] = from, msg
			if n.schemas.Validate(TypeStatus, toJSON(status)) != nil {
				delete(status, "to")
				delete(status, "message")
			}
		}
		return n.build(TypeStatus, SubjectStatus, status, msgID, event.WithID("wechatkf:status:"+msgID), key, event.WithTime(sentAt))
	}
	msg, _ := message(m, raw)
	data := map[string]any{"channel": Channel, "channel_message_id": msgID, "from": from, "account": account,
		"message": msg, "sent_at": sentAt}
	if vendorTime != nil {
		data["vendor_time"] = *vendorTime
	}
	if m.Event != nil && m.Event.EventType == wecom.EventEnterSession && m.Event.SceneParam != "" {
		// The trust rule: only a scene_param signed with the scene key names a phone. Any other
		// stays in the event detail, as data.
		if phone, ok := wecom.VerifyScenePhone(n.sceneKey, m.Event.SceneParam); ok {
			data["identities"] = []map[string]string{{"kind": "phone", "value": phone}}
			maskScenePhone(msg, m.Event.SceneParam, phone)
		} else {
			n.log.Debug("enter_session scene_param is not signed with WECHATKF_SCENE_KEY: kept as data, not an identity", "msgid", msgID)
		}
	}
	if n.schemas.Validate(TypeReceived, toJSON(data)) != nil && msg["type"] != "unsupported" {
		data["message"] = unsupported(raw)
	}
	return n.build(TypeReceived, SubjectMessage, data, msgID, event.WithID("wechatkf:"+msgID), key, event.WithTime(sentAt))
}

// eventTime maps an item's send_time (Unix seconds, 0 when absent) to the time of its event
// and of its sent_at or at (connector.Runtime.EventTime): send_time itself, or — when it lies
// more than 5 minutes after the pull or more than 7 days before it — the time of the pull, with
// send_time returned as vendorTime for the event's vendor_time.
func (n *normalizer) eventTime(sendTime int64, msgID string) (t time.Time, vendorTime *time.Time) {
	var vendor time.Time
	if sendTime > 0 {
		vendor = time.Unix(sendTime, 0)
	}
	return n.rt.EventTime(context.Background(), vendor, n.now(), "msgid", msgID)
}

func (n *normalizer) build(typ, subject string, data map[string]any, msgID string, opts ...event.Option) (bus.Outgoing, bool) {
	body := toJSON(data)
	if err := n.schemas.Validate(typ, body); err != nil {
		// Not even representable as "unsupported" (e.g. an external_userid over 256 bytes): it
		// cannot be published; say so loudly rather than block the kf account's queue.
		n.log.Error("sync_msg item cannot be represented as an omnibus event; skipped", "msgid", msgID, "type", typ, "err", err)
		return bus.Outgoing{}, false
	}
	e, err := event.New(typ, n.source, json.RawMessage(body), opts...)
	if err != nil {
		n.log.Error("sync_msg item cannot be represented as an omnibus event; skipped", "msgid", msgID, "type", typ, "err", err)
		return bus.Outgoing{}, false
	}
	return bus.Outgoing{Subject: subject, Event: e}, true
}

var outboundTypes = map[string]bool{"text": true, "image": true, "file": true, "link": true, "miniprogram": true}

// message maps a kf message to the common message $def; ok is false when it is "unsupported".
func message(m wecom.Message, raw json.RawMessage) (map[string]any, bool) {
	media := func(typ string, p *wecom.Media) (map[string]any, bool) {
		if p == nil || p.MediaID == "" {
			return unsupported(raw), false
		}
		return map[string]any{"type": typ, "media_id": p.MediaID}, true
	}
	switch m.MsgType {
	case "text":
		if m.Text != nil && m.Text.Content != "" {
			return map[string]any{"type": "text", "text": m.Text.Content}, true
		}
	case "image":
		return media("image", m.Image)
	case "voice":
		return media("voice", m.Voice)
	case "video":
		return media("video", m.Video)
	case "file":
		return media("file", m.File)
	case "location":
		if l := m.Location; l != nil {
			loc := map[string]any{"latitude": l.Latitude, "longitude": l.Longitude}
			setNonEmpty(loc, "name", l.Name)
			setNonEmpty(loc, "address", l.Address)
			return map[string]any{"type": "location", "location": loc}, true
		}
	case "link":
		if l := m.Link; l != nil && l.URL != "" {
			link := map[string]any{"url": l.URL}
			setNonEmpty(link, "title", l.Title)
			setNonEmpty(link, "description", l.Desc)
			setNonEmpty(link, "thumb_media_id", l.ThumbMediaID)
			return map[string]any{"type": "link", "link": link}, true
		}
	case "miniprogram":
		if p := m.MiniProgram; p != nil && p.AppID != "" && p.PagePath != "" {
			mp := map[string]any{"appid": p.AppID, "pagepath": p.PagePath}
			setNonEmpty(mp, "title", p.Title)
			setNonEmpty(mp, "thumb_media_id", p.ThumbMediaID)
			return map[string]any{"type": "miniprogram", "miniprogram": mp}, true
		}
	case "event":
		if m.Event != nil && m.Event.EventType != "" {
			var item struct {
				Event json.RawMessage `json:"event"`
			}
			ev := map[string]any{"name": m.Event.EventType}
			if json.Unmarshal(raw, &item) == nil && len(item.Event) > 0 && item.Event[0] == '{' {
				ev["detail"] = item.Event // the vendor's event object, verbatim
			}
			return map[string]any{"type": "event", "event": ev}, true
		}
	}
	return unsupported(raw), false
}

func setNonEmpty(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// unsupported carries the vendor item as raw (the schema wants an object there).
func unsupported(raw json.RawMessage) map[string]any {
	out := map[string]any{"type": "unsupported"}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil && obj != nil {
		out["raw"] = json.RawMessage(raw)
	}
	return out
}

// lenient reads the identifying fields of an item whose payload did not decode.
func lenient(raw json.RawMessage) wecom.Message {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return wecom.Message{}
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(obj[k], &s)
		return s
	}
	var m wecom.Message
	m.MsgID, m.OpenKfID, m.ExternalUserID, m.MsgType = str("msgid"), str("open_kfid"), str("external_userid"), str("msgtype")
	_ = json.Unmarshal(obj["send_time"], &m.SendTime)
	_ = json.Unmarshal(obj["origin"], &m.Origin)
	if m.ExternalUserID == "" {
		var ev struct {
			OpenKfID       string `json:"open_kfid"`
			ExternalUserID string `json:"external_userid"`
		}
		if json.Unmarshal(obj["event"], &ev) == nil {
			m.ExternalUserID = ev.ExternalUserID
			if m.OpenKfID == "" {
				m.OpenKfID = ev.OpenKfID
			}
		}
	}
	m.MsgType = "" // whatever it claims, its payload did not decode: unsupported
	return m
}

// toJSON marshals event data built from decoded vendor JSON; it cannot fail in practice, and
// a nil result fails schema validation, which skips the item with an error log.
func toJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// maskScenePhone masks the phone of a verified scene_param in the event detail msg carries: the
// phone travels as an identity, which the bus seals (pkg/pii); the detail would show it in clear
// to every reader of the log.
func maskScenePhone(msg map[string]any, sceneParam, phone string) {
	ev, _ := msg["event"].(map[string]any)
	raw, ok := ev["detail"].(json.RawMessage)
	if !ok {
		return
	}
	var detail map[string]any
	if json.Unmarshal(raw, &detail) != nil {
		return
	}
	detail["scene_param"] = strings.Replace(sceneParam, phone, pii.MaskPhone(phone), 1)
	if b, err := json.Marshal(detail); err == nil {
		ev["detail"] = json.RawMessage(b)
	}
}
