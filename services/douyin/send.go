package douyin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/douyin"
)

// sender consumes omni.out.douyin.message.send and calls /im/send/msg/. What is decided becomes
// a status event; what may pass becomes an error for the bus to redeliver:
//
//   - accepted → status "sent" (vendor_message_id Douyin's msg_id), and the reply is counted;
//   - no message from the user on record, or the last one older than the window → "failed",
//     error_code outside_window, no call; the replies since it used up → "failed",
//     quota_exceeded, no call (the bucket unreadable → redelivered);
//   - a recipient that is not a douyin_openid, a message that is not text, a text over 1,000
//     characters → "failed" (invalid_recipient, unsupported_message, text_too_long), no call;
//   - Douyin's refusal (an error_code other than busy or rate limit) → "failed" with its
//     error_code (its window and quota codes as outside_window and quota_exceeded); busy, 5xx,
//     a timeout, the breaker open → redelivered with backoff; rate limited → after the wait.
//
// The reply is not idempotent (Douyin takes no reference of ours): the route retries an attempt
// only when it provably never left; a redelivery after a timeout may reply twice.
type sender struct {
	cfg     *Config
	route   *resilience.Route
	windows *windows
	rt      *connector.Runtime
	now     func() time.Time
}

// codes classifies Douyin's error codes.
var codes = resilience.Codes{
	"0":                                    resilience.ClassSuccess,
	strconv.Itoa(douyin.CodeSystem):        resilience.ClassRetryable,
	strconv.Itoa(douyin.CodeRateLimit):     resilience.ClassRateLimited,
	strconv.Itoa(douyin.CodeInvalidToken):  resilience.ClassPermanent,
	strconv.Itoa(douyin.CodeParam):         resilience.ClassPermanent,
	strconv.Itoa(douyin.CodeOutsideWindow): resilience.ClassPermanent,
	strconv.Itoa(douyin.CodeQuota):         resilience.ClassPermanent,
}

// statusCodes names Douyin's refusals that have an omnibus error_code.
var statusCodes = map[string]string{
	strconv.Itoa(douyin.CodeOutsideWindow): "outside_window",
	strconv.Itoa(douyin.CodeQuota):         "quota_exceeded",
}

func newSender(cfg *Config, reg *resilience.Registry, w *windows, rt *connector.Runtime) (*sender, error) {
	route, err := reg.Route(resilience.RouteSpec{Vendor: Channel, Op: "send",
		Settings: resilience.Settings{Timeout: 300 * time.Millisecond},
		Codes:    codes, CodeOf: func(_ int, _ http.Header, body []byte) string { return douyin.CodeOf(body) }})
	if err != nil {
		return nil, err
	}
	return &sender{cfg: cfg, route: route, windows: w, rt: rt, now: time.Now}, nil
}

func (s *sender) handle(ctx context.Context, d bus.Delivery) error {
	cmd, st, err := connector.DecodeSend(Channel, d)
	if err != nil {
		return err
	}
	fail := func(code, reason string) error {
		st.Fail(code, reason)
		return s.rt.ReportSend(ctx, SubjectStatus, d, st)
	}
	if cmd.To.Kind != IdentityKind || cmd.To.Value == "" {
		return fail("invalid_recipient", fmt.Sprintf("douyin replies to a %s, not %s %.40q", IdentityKind, cmd.To.Kind, cmd.To.Value))
	}
	var msg connector.TextMessage
	if err := json.Unmarshal(cmd.Message, &msg); err != nil || msg.Type != "text" || strings.TrimSpace(msg.Text) == "" {
		return fail("unsupported_message", fmt.Sprintf("/im/send/msg/ sends text here, not %.40q", msg.Type))
	}
	if n := utf8.RuneCountInString(msg.Text); n > douyin.MaxTextRunes {
		return fail("text_too_long", fmt.Sprintf("Douyin takes texts of at most %d characters, this one has %d", douyin.MaxTextRunes, n))
	}
	conv, err := s.windows.open(ctx, cmd.To.Value, s.now())
	switch {
	case errors.Is(err, errOutsideWindow):
		return fail("outside_window", err.Error())
	case errors.Is(err, errQuota):
		return fail("quota_exceeded", err.Error())
	case err != nil:
		return fmt.Errorf("reply window: %w", err) // the bucket: redelivered
	}
	body, _ := json.Marshal(douyin.SendRequest{MsgID: conv.MsgID, ConversationID: conv.ConversationID, ToUserID: cmd.To.Value,
		Scene: douyin.SceneReply, Content: douyin.SendContent{MsgType: douyin.MsgTypeText, Text: &douyin.TextBody{Text: msg.Text}}}) // cannot fail
	target := s.cfg.APIBase + douyin.SendPath + "?" + url.Values{"open_id": {conv.Account}}.Encode()
	var out douyin.Response
	_, err = s.route.HTTP(ctx, resilience.Call{CorrelationID: d.Event.ID(), CustomerID: cmd.To.Key()},
		func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(douyin.TokenHeader, s.cfg.AccessToken)
			return req, nil
		}, &out)
	var failed *resilience.Error
	switch {
	case err == nil:
		st.VendorMessageID = out.Data.MsgID
		if err := s.windows.replied(ctx, cmd.To.Value, conv.MsgID); err != nil {
			s.rt.Log.WarnContext(ctx, "douyin reply not counted; Douyin still enforces its quota", "command", d.Event.ID(), "err", err)
		}
	case errors.As(err, &failed) && bus.IsPermanent(err):
		s.rt.Log.InfoContext(ctx, "douyin refused the reply", "command", d.Event.ID(), "code", failed.Code())
		code := failed.Code()
		if c, ok := statusCodes[code]; ok {
			code = c
		}
		return fail(code, err.Error())
	default:
		return err // transient or rate limited: redelivered
	}
	return s.rt.ReportSend(ctx, SubjectStatus, d, st)
}
