package wechatkf

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/wecom"
)

// sender consumes omni.out.wechatkf.message.send and calls kf/send_msg. What the vendor decides
// becomes a status event; what may pass becomes an error for the bus to redeliver:
//
//   - accepted → status "sent" with vendor_message_id;
//   - -1 system busy, HTTP 5xx, a network failure, a timeout, the route's breaker open, a failing
//     gettoken → error (redelivered with backoff; kf/send_msg itself is never retried by the
//     pipeline once it may have reached WeCom); 45009 rate limit → retry after 30s; an
//     access_token rejected again right after a fresh one was fetched → error;
//   - any other errcode (95018 session state, 95001 over 5 messages, 40096 unknown customer,
//     95000 open_kfid, 40008/44004/45002 content ...) → status "failed" with error_code = the
//     errcode and error = errmsg;
//   - a command this channel cannot send (recipient not a wecom_external_userid, no kf account,
//     a message type or payload kf/send_msg cannot carry) → status "failed", no vendor call.
//
// The status id is wechatkf:status:<command id>, so a redelivered command republishes the same
// status, stored once.
type sender struct {
	api      *client
	openKfID string
	source   string
	publish  func(ctx context.Context, batch ...bus.Outgoing) error
	log      *slog.Logger
}

type sendCommand struct {
	To             map[string]string `json:"to"`
	Message        json.RawMessage   `json:"message"`
	ConversationID string            `json:"conversation_id,omitempty"`
	Account        string            `json:"account,omitempty"`
}

type outMessage struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	MediaID  string `json:"media_id"`
	MediaURL string `json:"media_url"`
	Link     *struct {
		Title        string `json:"title"`
		Description  string `json:"description"`
		URL          string `json:"url"`
		ThumbMediaID string `json:"thumb_media_id"`
	} `json:"link"`
	MiniProgram *wecom.MiniProgram `json:"miniprogram"`
}

// rateLimitWait is how long a command waits after WeCom's 45009 (frequency limit).
const rateLimitWait = 30 * time.Second

func (s *sender) handle(ctx context.Context, d bus.Delivery) error {
	var cmd sendCommand
	if err := event.DecodeData(d.Event, &cmd); err != nil {
		return bus.Permanent(fmt.Errorf("undecodable send command: %w", err))
	}
	var msg outMessage
	if err := json.Unmarshal(cmd.Message, &msg); err != nil {
		return bus.Permanent(fmt.Errorf("send command %s: message: %w", d.Event.ID(), err))
	}
	status := map[string]any{"channel": Channel, "message_id": d.Event.ID(), "status": "sent", "to": cmd.To, "message": cmd.Message}
	if _, err := uuid.Parse(cmd.ConversationID); err == nil {
		status["conversation_id"] = cmd.ConversationID
	}
	fail := func(code, reason string) error {
		status["status"], status["error_code"], status["error"] = "failed", code, truncate(reason, 2048)
		return s.report(ctx, d, cmd, status)
	}
	if cmd.To["kind"] != partitionKind || cmd.To["value"] == "" {
		return fail("invalid_recipient", fmt.Sprintf("wechatkf sends to a %s identity, not %q", partitionKind, cmd.To["kind"]))
	}
	kf := cmd.Account
	if kf == "" {
		kf = s.openKfID
	}
	if !kfIDPattern.MatchString(kf) {
		return fail("no_open_kfid", "the command names no kf account (account) and WECHATKF_OPEN_KFID is not set")
	}
	req, err := sendRequest(cmd.To["value"], kf, msg)
	if err != nil {
		return fail("unsupported_message", err.Error())
	}
	req.MsgID = sendMsgID(d.Event.ID())
	resp, err := s.api.sendMsg(ctx, resilience.Call{CorrelationID: d.Event.ID()}, req)
	var we *wecom.Error
	switch {
	case err == nil:
		if resp.MsgID != "" {
			status["vendor_message_id"] = resp.MsgID
		}
	case errors.Is(err, errAccessToken):
		return err // gettoken failed: says nothing about this message; redelivered
	case errors.As(err, &we) && we.Code == wecom.CodeRateLimited:
		return bus.RetryAfter(err, rateLimitWait)
	case errors.As(err, &we) && !we.Retryable() && !we.TokenRejected():
		s.log.InfoContext(ctx, "wecom refused the send", "command", d.Event.ID(), "errcode", we.Code, "errmsg", we.Msg)
		return fail(strconv.Itoa(we.Code), we.Msg)
	default:
		return err // transient: redelivered with backoff
	}
	return s.report(ctx, d, cmd, status)
}

func (s *sender) report(ctx context.Context, d bus.Delivery, cmd sendCommand, status map[string]any) error {
	status["at"] = time.Now().UTC()
	key := cmd.To["kind"] + ":" + cmd.To["value"]
	if cmd.To["kind"] == "" || cmd.To["value"] == "" {
		key = event.PartitionKey(d.Event)
	}
	e, err := event.New(TypeStatus, s.source, status, event.WithID("wechatkf:status:"+d.Event.ID()),
		event.WithCorrelationID(d.Event.ID()), event.WithPartitionKey(key))
	if err != nil {
		return bus.Permanent(err)
	}
	return s.publish(ctx, bus.Outgoing{Subject: SubjectStatus, Event: e})
}

// sendRequest maps an outbound message to a kf/send_msg body.
func sendRequest(touser, kf string, m outMessage) (wecom.SendMsgRequest, error) {
	req := wecom.SendMsgRequest{ToUser: touser, OpenKfID: kf, MsgType: m.Type}
	media := func() (*wecom.Media, error) {
		if m.MediaID == "" {
			return nil, fmt.Errorf("kf/send_msg sends %s by media_id (upload media_url first)", m.Type)
		}
		return &wecom.Media{MediaID: m.MediaID}, nil
	}
	var err error
	switch m.Type {
	case "text":
		if m.Text == "" {
			return req, errors.New("empty text")
		}
		req.Text = &wecom.Text{Content: m.Text}
	case "image":
		req.Image, err = media()
	case "file":
		req.File, err = media()
	case "link":
		if m.Link == nil || m.Link.URL == "" || m.Link.Title == "" || m.Link.ThumbMediaID == "" {
			return req, errors.New("kf/send_msg links need title, url and thumb_media_id")
		}
		req.Link = &wecom.Link{Title: m.Link.Title, Desc: m.Link.Description, URL: m.Link.URL, ThumbMediaID: m.Link.ThumbMediaID}
	case "miniprogram":
		if p := m.MiniProgram; p == nil || p.AppID == "" || p.PagePath == "" || p.ThumbMediaID == "" {
			return req, errors.New("kf/send_msg mini programs need appid, pagepath and thumb_media_id")
		}
		req.MiniProgram = m.MiniProgram
	default:
		return req, fmt.Errorf("message type %q cannot be sent on wechatkf", m.Type)
	}
	return req, err
}

// sendMsgID is the msgid given to kf/send_msg for a command: "omni" and 28 hex characters of
// the command id's SHA-256 (32 bytes, WeCom's limit), so the vendor's record of the message
// points back at the command, and an echo of it in sync_msg is recognised.
func sendMsgID(commandID string) string {
	sum := sha256.Sum256([]byte(commandID))
	return sendMsgIDPrefix + hex.EncodeToString(sum[:])[:wecom.MaxSendMsgIDLen-len(sendMsgIDPrefix)]
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
