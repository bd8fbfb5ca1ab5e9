package sms

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	aliwire "github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
	tcwire "github.com/omnibus-dev/omnibus/pkg/wire/tencent"
)

// maxID bounds every vendor id that goes into an event (the schemas allow 256 characters).
const maxID = 200

// verify protects the unsigned vendor pushes: the TCP peer must be in SMS_WEBHOOK_ALLOW_IPS
// (when set) and the URL must carry ?token=SMS_WEBHOOK_TOKEN (when set). Both failures are
// webhook.ErrSignature (401) with a reason that does not echo the token.
func (c *conn) verify(r *http.Request, _ []byte) error {
	if len(c.allow) > 0 {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		ip, err := netip.ParseAddr(host)
		allowed := false
		for _, p := range c.allow {
			allowed = allowed || (err == nil && p.Contains(ip.Unmap()))
		}
		if !allowed {
			return fmt.Errorf("%w: source address %s is not in SMS_WEBHOOK_ALLOW_IPS", webhook.ErrSignature, host)
		}
	}
	if c.cfg.WebhookToken != "" {
		got := r.URL.Query().Get("token")
		if subtle.ConstantTimeCompare([]byte(got), []byte(c.cfg.WebhookToken)) != 1 {
			if got == "" {
				return fmt.Errorf("%w: the push URL has no token (append ?token=<SMS_WEBHOOK_TOKEN> in the vendor console)", webhook.ErrSignature)
			}
			return fmt.Errorf("%w: wrong token", webhook.ErrSignature)
		}
	}
	return nil
}

func malformed(err error) error { return fmt.Errorf("%w: %w", webhook.ErrMalformed, err) }

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// batch collects the events of one push, dropping repeated items (same event id) and, with
// state, items published by an earlier push.
type batch struct {
	ctx    context.Context
	st     *state
	ids    map[string]bool
	outs   []bus.Outgoing
	budget time.Duration // left to wait for the state in sendOf
}

func (c *conn) newBatch(ctx context.Context) *batch {
	return &batch{ctx: ctx, st: c.st, ids: map[string]bool{}, budget: 2 * time.Second}
}

// wait sleeps d out of the batch's budget; false when the budget or the request is spent.
func (b *batch) wait(d time.Duration) bool {
	if b.budget < d {
		return false
	}
	b.budget -= d
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.ctx.Done():
		return false
	}
}

// fresh reports whether id is new to this push and to the connector.
func (b *batch) fresh(id string) bool {
	if b.ids[id] {
		return false
	}
	b.ids[id] = true
	return b.st == nil || !b.st.seen(b.ctx, id)
}

func (b *batch) add(subject string, e event.Event) {
	b.outs = append(b.outs, bus.Outgoing{Subject: subject, Event: e})
}

// message renders an SMS text; an empty SMS is "unsupported" with the vendor item as raw.
func message(text string, raw any) (map[string]any, error) {
	if text == "" {
		r, err := json.Marshal(raw)
		if err != nil {
			return nil, err
		}
		var obj map[string]any
		if err := json.Unmarshal(r, &obj); err != nil {
			return nil, err
		}
		return map[string]any{"type": "unsupported", "raw": obj}, nil
	}
	if utf8.RuneCountInString(text) > 10000 {
		return nil, fmt.Errorf("content longer than 10000 characters")
	}
	return map[string]any{"type": "text", "text": text}, nil
}

func (c *conn) received(b *batch, id, channelMsgID, phone, account string, msg map[string]any, at time.Time) error {
	data := map[string]any{
		"channel": Channel, "channel_message_id": channelMsgID, "from": map[string]string{"kind": "phone", "value": phone},
		"message": msg, "sent_at": at.UTC().Format(time.RFC3339),
	}
	if account = strings.TrimSpace(account); account != "" {
		data["account"] = clip(account, 256)
	}
	e, err := c.rt.NewEvent(TypeReceived, data, event.WithID(id), event.WithPartitionKey("phone:"+phone), event.WithTime(at))
	if err != nil {
		return err
	}
	b.add(SubjectIn, e)
	return nil
}

// receipt builds a delivery status event. messageID is the send command's id when known.
func (c *conn) receipt(b *batch, id, messageID, vendorID, phone string, ok bool, code, reason string, at time.Time) error {
	data := map[string]any{"channel": Channel, "message_id": messageID, "vendor_message_id": vendorID, "status": "delivered",
		"at": at.UTC().Format(time.RFC3339)}
	if !ok {
		data["status"] = "failed"
		if code = strings.TrimSpace(code); code == "" {
			code = "undelivered"
		}
		data["error_code"] = clip(code, 128)
		if reason = strings.TrimSpace(reason); reason != "" {
			data["error"] = clip(reason, 2048)
		}
	}
	key := "sms:" + vendorID
	if phone != "" {
		key = "phone:" + phone
	}
	e, err := c.rt.NewEvent(TypeStatus, data, event.WithID(id), event.WithPartitionKey(key), event.WithTime(at),
		event.WithCorrelationID(messageID))
	if err != nil {
		return err
	}
	b.add(SubjectStatus, e)
	return nil
}

// sendOf returns the id of the send command a receipt is about: from the state (vid.*), else
// fallback (Aliyun's out_id), else "<provider>:<vendor id>" (a message this connector did not
// send, or sent longer than SMS_STATE_TTL ago). A fresh receipt can overtake the connector's
// own bookkeeping (the vendor answered SendSms, the receipt was pushed before the state was
// written), so for receipts of the last ten minutes the lookup is retried within the batch's
// wait budget.
func (c *conn) sendOf(b *batch, provider, vendorID, fallback string, at time.Time) string {
	if c.st != nil {
		fresh := c.now().Sub(at) < 10*time.Minute
		for {
			rec, found, err := c.st.get(b.ctx, vidKey(provider, vendorID))
			if err != nil {
				c.rt.Log.WarnContext(b.ctx, "sms state lookup failed; receipt keeps the vendor id", "err", err)
			}
			if found && rec.MessageID != "" {
				return rec.MessageID
			}
			if err != nil || !fresh || fallback != "" || !b.wait(100*time.Millisecond) {
				break
			}
		}
	}
	if fallback != "" && len(fallback) <= maxID {
		return fallback
	}
	return provider + ":" + vendorID
}

// checkID bounds a vendor id that becomes part of an event id (and of the Nats-Msg-Id header).
func checkID(name, v string) error {
	if len(v) > maxID {
		return fmt.Errorf("%s longer than %d bytes", name, maxID)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s contains control characters", name)
		}
	}
	return nil
}

// decodeAliyunUp turns an SmsUp push into omni.channel.message.received events, one per
// uplink, id sms:aliyun:up:<sequence_id>.
func (c *conn) decodeAliyunUp(ctx context.Context, body []byte) ([]bus.Outgoing, error) {
	ups, err := aliwire.ParseSmsUp(body)
	if err != nil {
		return nil, malformed(err)
	}
	b := c.newBatch(ctx)
	for i, u := range ups {
		phone, err := fromAliyun(u.PhoneNumber)
		if err != nil {
			return nil, malformed(fmt.Errorf("item %d: phone_number: %w", i, err))
		}
		at, _ := aliwire.ParseTime(u.SendTime) // checked by ParseSmsUp
		seq := u.SequenceID.String()
		id := "sms:aliyun:up:" + seq
		if !b.fresh(id) {
			continue
		}
		msg, err := message(u.Content, u)
		if err != nil {
			return nil, malformed(fmt.Errorf("item %d: %w", i, err))
		}
		if err := c.received(b, id, "aliyun:"+seq, phone, u.SignName, msg, at); err != nil {
			return nil, malformed(fmt.Errorf("item %d: %w", i, err))
		}
	}
	return b.outs, nil
}

// decodeAliyunReport turns an SmsReport push into omni.channel.message.status.updated events,
// id sms:aliyun:report:<biz_id>:<phone_number>:<success>.
func (c *conn) decodeAliyunReport(ctx context.Context, body []byte) ([]bus.Outgoing, error) {
	reps, err := aliwire.ParseSmsReport(body)
	if err != nil {
		return nil, malformed(err)
	}
	b := c.newBatch(ctx)
	for i, r := range reps {
		if err := checkID("biz_id", r.BizID); err != nil {
			return nil, malformed(fmt.Errorf("item %d: %w", i, err))
		}
		if err := checkID("phone_number", r.PhoneNumber); err != nil {
			return nil, malformed(fmt.Errorf("item %d: %w", i, err))
		}
		at, _ := aliwire.ParseTime(r.ReportTime) // checked by ParseSmsReport
		id := fmt.Sprintf("sms:aliyun:report:%s:%s:%t", r.BizID, strings.TrimSpace(r.PhoneNumber), r.Success)
		if !b.fresh(id) {
			continue
		}
		phone, _ := fromAliyun(r.PhoneNumber) // a receipt with an odd number is still a receipt
		msgID := c.sendOf(b, ProviderAliyun, r.BizID, strings.TrimSpace(r.OutID), at)
		if err := c.receipt(b, id, msgID, r.BizID, phone, r.Success, r.ErrCode, r.ErrMsg, at); err != nil {
			return nil, malformed(fmt.Errorf("item %d: %w", i, err))
		}
	}
	return b.outs, nil
}

// replyID is the id of a Tencent reply, which carries none: a hash of everything in it. Two
// identical texts from one number in the same second are one message.
func replyID(r tcwire.Reply) string {
	h := sha256.New()
	for _, f := range []string{r.Nationcode, r.Mobile, strconv.FormatInt(r.Time, 10), r.Extend, r.Sign, r.Text} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// decodeTencentReply turns a reply callback into one omni.channel.message.received event, id
// sms:tencent:reply:<hash of the callback>.
func (c *conn) decodeTencentReply(ctx context.Context, body []byte) ([]bus.Outgoing, error) {
	r, err := tcwire.ParseReply(body)
	if err != nil {
		return nil, malformed(err)
	}
	phone, err := normalizePhone("+"+r.Nationcode+r.Mobile, c.cfg.DefaultRegion)
	if err != nil {
		return nil, malformed(fmt.Errorf("nationcode/mobile: %w", err))
	}
	h := replyID(r)
	id := "sms:tencent:reply:" + h
	b := c.newBatch(ctx)
	if !b.fresh(id) {
		return nil, nil
	}
	msg, err := message(r.Text, r)
	if err != nil {
		return nil, malformed(err)
	}
	if err := c.received(b, id, "tencent:"+h, phone, r.Sign, msg, time.Unix(r.Time, 0)); err != nil {
		return nil, malformed(err)
	}
	return b.outs, nil
}

// decodeTencentStatus turns a status callback into omni.channel.message.status.updated events,
// id sms:tencent:status:<sid>:<report_status>.
func (c *conn) decodeTencentStatus(ctx context.Context, body []byte) ([]bus.Outgoing, error) {
	reps, err := tcwire.ParseStatus(body)
	if err != nil {
		return nil, malformed(err)
	}
	b := c.newBatch(ctx)
	for i, r := range reps {
		if err := checkID("sid", r.Sid); err != nil {
			return nil, malformed(fmt.Errorf("item %d: %w", i, err))
		}
		id := "sms:tencent:status:" + r.Sid + ":" + r.ReportStatus
		if !b.fresh(id) {
			continue
		}
		at := c.now()
		if r.UserReceiveTime != "" {
			at, _ = tcwire.ParseReportTime(r.UserReceiveTime) // checked by ParseStatus
		}
		phone, _ := normalizePhone("+"+r.Nationcode+r.Mobile, c.cfg.DefaultRegion)
		msgID := c.sendOf(b, ProviderTencent, r.Sid, "", at)
		reason := r.Description
		if reason == "" {
			reason = r.Errmsg
		}
		if err := c.receipt(b, id, msgID, r.Sid, phone, r.ReportStatus == tcwire.ReportSuccess, r.Errmsg, reason, at); err != nil {
			return nil, malformed(fmt.Errorf("item %d: %w", i, err))
		}
	}
	return b.outs, nil
}
