package weibo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/weibo"
)

// sender consumes omni.out.weibo.message.send and calls messages/reply.json. What is decided
// becomes a status event; what may pass becomes an error for the bus to redeliver:
//
//   - accepted → status "sent" (vendor_message_id when Weibo answers an id);
//   - the fan's last message older than 48 h, or an unfollow since → "failed", error_code
//     outside_window, no call (the bucket unreadable → redelivered; a fan it has no record of
//     is left to Weibo, whose refusal is a "failed" status too);
//   - a recipient that is not a weibo_uid, a message that is not text, a text of 300 characters
//     or more → "failed" (invalid_recipient, unsupported_message, text_too_long), no call;
//   - Weibo's refusal (4xx, an error_code other than busy or rate limit) → "failed" with its
//     error_code; busy, 5xx, a timeout, the breaker open → redelivered with backoff; rate
//     limited → redelivered after the wait.
//
// The reply is not idempotent (Weibo takes no reference): the route retries an attempt only
// when it provably never left; a redelivery after a timeout may reply twice.
type sender struct {
	cfg     *Config
	route   *resilience.Route
	windows *windows
	rt      *connector.Runtime
	now     func() time.Time
}

// codes classifies Weibo's error_code values (its general error table).
var codes = resilience.Codes{
	"10001": resilience.ClassRetryable,   // system error
	"10009": resilience.ClassRetryable,   // too many pending tasks, system is busy
	"10022": resilience.ClassRateLimited, // IP requests out of rate limit
	"10023": resilience.ClassRateLimited, // user requests out of rate limit
	"10024": resilience.ClassRateLimited, // user requests for an interface out of rate limit
}

func newSender(cfg *Config, reg *resilience.Registry, w *windows, rt *connector.Runtime) (*sender, error) {
	route, err := reg.Route(resilience.RouteSpec{Vendor: Channel, Op: "reply",
		Settings: resilience.Settings{Timeout: 300 * time.Millisecond},
		Codes:    codes, CodeOf: resilience.JSONCode("error_code")})
	if err != nil {
		return nil, err
	}
	return &sender{cfg: cfg, route: route, windows: w, rt: rt, now: time.Now}, nil
}

type sendCommand struct {
	To             identity        `json:"to"`
	Message        json.RawMessage `json:"message"`
	ConversationID string          `json:"conversation_id,omitempty"`
}

type status struct {
	Channel         string          `json:"channel"`
	MessageID       string          `json:"message_id"`
	VendorMessageID string          `json:"vendor_message_id,omitempty"`
	Status          string          `json:"status"`
	ErrorCode       string          `json:"error_code,omitempty"`
	Error           string          `json:"error,omitempty"`
	At              time.Time       `json:"at"`
	To              identity        `json:"to"`
	Message         json.RawMessage `json:"message"`
	ConversationID  string          `json:"conversation_id,omitempty"`
}

func (s *sender) handle(ctx context.Context, d bus.Delivery) error {
	var cmd sendCommand
	if err := event.DecodeData(d.Event, &cmd); err != nil {
		return bus.Permanent(fmt.Errorf("undecodable send command: %w", err))
	}
	st := status{Channel: Channel, MessageID: d.Event.ID(), Status: "sent", To: cmd.To, Message: cmd.Message}
	if _, err := uuid.Parse(cmd.ConversationID); err == nil {
		st.ConversationID = cmd.ConversationID
	}
	fail := func(code, reason string) error {
		st.Status, st.ErrorCode, st.Error = "failed", code, truncate(reason, 2048)
		return s.report(ctx, d, st)
	}
	uid, err := strconv.ParseInt(cmd.To.Value, 10, 64)
	if cmd.To.Kind != IdentityKind || err != nil || uid <= 0 {
		return fail("invalid_recipient", fmt.Sprintf("weibo replies to a %s (a decimal uid), not %s %.40q", IdentityKind, cmd.To.Kind, cmd.To.Value))
	}
	var msg struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(cmd.Message, &msg); err != nil || msg.Type != "text" || strings.TrimSpace(msg.Text) == "" {
		return fail("unsupported_message", fmt.Sprintf("messages/reply.json sends text here, not %.40q", msg.Type))
	}
	if n := utf8.RuneCountInString(msg.Text); n >= weibo.MaxTextRunes {
		return fail("text_too_long", fmt.Sprintf("Weibo takes texts of fewer than %d characters, this one has %d", weibo.MaxTextRunes, n))
	}
	if err := s.windows.open(ctx, cmd.To.Value, s.now()); errors.Is(err, errOutsideWindow) {
		return fail("outside_window", err.Error())
	} else if err != nil {
		return fmt.Errorf("reply window of %s: %w", cmd.To.Value, err) // the bucket: redelivered
	}
	data, _ := json.Marshal(weibo.TextData{Text: msg.Text}) // cannot fail
	form := weibo.Reply{AccessToken: s.cfg.AccessToken, ReceiverID: uid, Type: weibo.TypeText, Data: data}.Form().Encode()
	var out weibo.Sent
	_, err = s.route.HTTP(ctx, resilience.Call{CorrelationID: d.Event.ID(), CustomerID: IdentityKind + ":" + cmd.To.Value},
		func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.APIBase+weibo.ReplyPath, strings.NewReader(form))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req, nil
		}, &out)
	var failed *resilience.Error
	switch {
	case err == nil:
		st.VendorMessageID = out.IDStr
		if st.VendorMessageID == "" && out.ID != 0 {
			st.VendorMessageID = strconv.FormatInt(out.ID, 10)
		}
	case errors.As(err, &failed) && bus.IsPermanent(err):
		s.rt.Log.InfoContext(ctx, "weibo refused the reply", "command", d.Event.ID(), "code", failed.Code())
		return fail(failed.Code(), err.Error())
	default:
		return err // transient or rate limited: redelivered
	}
	return s.report(ctx, d, st)
}

// report publishes the status, id weibo:status:<command id>: a redelivered command republishes
// the same status, stored once.
func (s *sender) report(ctx context.Context, d bus.Delivery, st status) error {
	st.At = s.now().UTC()
	key := st.To.Kind + ":" + st.To.Value
	if st.To.Kind == "" || st.To.Value == "" {
		key = event.PartitionKey(d.Event)
	}
	e, err := s.rt.NewEvent(TypeStatus, st, event.WithID(Channel+":status:"+d.Event.ID()),
		event.WithCorrelationID(d.Event.ID()), event.WithPartitionKey(key))
	if err != nil {
		return bus.Permanent(err)
	}
	return s.rt.Publish(ctx, bus.Outgoing{Subject: SubjectStatus, Event: e})
}
