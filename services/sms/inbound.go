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
	"github.com/omnibus-dev/omnibus/pkg/connector"
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

// batch collects the events of one push. A decoder validates every item first and adds it as a
// pending item (so that one bad item refuses the push before any lookup); build then drops the
// items published by an earlier push, looks up the sends the receipts are about and builds the
// events, in the push's order — with one batched state lookup for each step, whatever the size
// of the push (a 5,000-item Aliyun push is a few round trips, not 10,000).
type batch struct {
	ctx      context.Context
	c        *conn
	received time.Time // when the push arrived: the time of an event whose vendor time is out of bounds
	ids      map[string]bool
	items    []*pending
	outs     []bus.Outgoing
	budget   time.Duration // left to wait for the state in sendsOf
}

// pending is one validated item of a push.
type pending struct {
	id string // its event id
	// A receipt names the send it is about: the provider's id of the message and, for Aliyun,
	// the echoed OutId (fallback); at is the vendor's time of the receipt (zero: none).
	provider, vendorID, fallback string
	at                           time.Time
	// build adds the item's event to the batch; sendID is the send command a receipt is about.
	build func(sendID string) error
}

// waitBudget bounds how long one push waits for the state to learn of the sends its receipts are
// about (sendsOf): the race it covers — the vendor's receipt overtaking the connector's own
// write after SendSms — is milliseconds, and with pushPublishTimeout and markTimeout it keeps the
// answer within the vendor's callback timeout (see pushMaxBody).
const waitBudget = 500 * time.Millisecond

func (c *conn) newBatch(ctx context.Context) *batch {
	return &batch{ctx: ctx, c: c, received: c.now(), ids: map[string]bool{}, budget: waitBudget}
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

// repeated reports whether the push already holds an item with this event id (vendors repeat
// items within a push); the first one counts.
func (b *batch) repeated(id string) bool {
	if b.ids[id] {
		return true
	}
	b.ids[id] = true
	return false
}

// add queues a validated item.
func (b *batch) add(p *pending) { b.items = append(b.items, p) }

// build drops the items an earlier push published (the state's in.* marks), resolves the sends
// of the receipts and builds the events. An item that cannot become an event refuses the push
// (webhook.ErrMalformed).
func (b *batch) build() ([]bus.Outgoing, error) {
	items := b.items
	if b.c.st != nil && len(items) > 0 {
		ids := make([]string, len(items))
		for i, p := range items {
			ids[i] = p.id
		}
		seen := b.c.st.seenMany(b.ctx, ids)
		items = items[:0:0]
		for i, p := range b.items {
			if !seen[i] {
				items = append(items, p)
			}
		}
	}
	sends := b.c.sendsOf(b, items)
	for _, p := range items {
		if err := p.build(sends[p]); err != nil {
			return nil, malformed(err)
		}
	}
	return b.outs, nil
}

// emit adds an event to what the push publishes.
func (b *batch) emit(subject string, e event.Event) {
	b.outs = append(b.outs, bus.Outgoing{Subject: subject, Event: e})
}

// eventTime maps a vendor timestamp to the event's time (connector.Runtime.EventTime): the
// vendor's, or the push's time of receipt with the vendor's kept as vendor_time in data.
func (b *batch) eventTime(vendor time.Time, id string, data map[string]any) time.Time {
	t, original := b.c.rt.EventTime(b.ctx, vendor, b.received, "event", id)
	if original != nil {
		data["vendor_time"] = original.Format(time.RFC3339Nano)
	}
	return t
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

// received builds an inbound message event; sentAt is the vendor's time of the message.
func (c *conn) received(b *batch, id, channelMsgID, phone, account string, msg map[string]any, sentAt time.Time) error {
	data := map[string]any{
		"channel": Channel, "channel_message_id": channelMsgID, "from": map[string]string{"kind": "phone", "value": phone},
		"message": msg,
	}
	at := b.eventTime(sentAt, id, data)
	data["sent_at"] = at.Format(time.RFC3339)
	if account = strings.TrimSpace(account); account != "" {
		data["account"] = clip(account, 256)
	}
	e, err := c.rt.NewEvent(TypeReceived, data, event.WithID(id), event.WithPartitionKey("phone:"+phone), event.WithTime(at))
	if err != nil {
		return err
	}
	b.emit(SubjectIn, e)
	return nil
}

// receipt builds a delivery status event. messageID is the send command's id when known;
// reported is the vendor's time of the receipt (zero when it gave none).
func (c *conn) receipt(b *batch, id, messageID, vendorID, phone string, ok bool, code, reason string, reported time.Time) error {
	data := map[string]any{"channel": Channel, "message_id": messageID, "vendor_message_id": vendorID, "status": "delivered"}
	at := b.eventTime(reported, id, data)
	data["at"] = at.Format(time.RFC3339)
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
	b.emit(SubjectStatus, e)
	return nil
}

// sendsOf returns the id of the send command each receipt among items is about: from the state
// (vid.*), else the fallback (Aliyun's out_id), else "<provider>:<vendor id>" (a message this
// connector did not send, or sent longer than SMS_STATE_TTL ago). A fresh receipt can overtake
// the connector's own bookkeeping (the vendor answered SendSms, the receipt was pushed before the
// state was written), so the receipts of the last ten minutes that found nothing and have no
// fallback are looked up again, together, every 100 ms within the batch's wait budget. Every
// lookup is one batched read of the state, however many receipts the push holds.
func (c *conn) sendsOf(b *batch, items []*pending) map[*pending]string {
	out := map[*pending]string{}
	var todo []*pending
	for _, p := range items {
		if p.vendorID != "" {
			todo = append(todo, p)
		}
	}
	for c.st != nil && len(todo) > 0 {
		keys := make([]string, len(todo))
		for i, p := range todo {
			keys[i] = vidKey(p.provider, p.vendorID)
		}
		recs, found, err := c.st.getMany(b.ctx, keys)
		if err != nil {
			c.rt.Log.WarnContext(b.ctx, "sms state lookup failed; receipts keep the vendor id", "err", err)
		}
		var again []*pending
		for i, p := range todo {
			if found[i] && recs[i].MessageID != "" {
				out[p] = recs[i].MessageID
				continue
			}
			at, _ := connector.EventTime(p.at, b.received)
			if err == nil && p.fallback == "" && b.received.Sub(at) < 10*time.Minute {
				again = append(again, p)
			}
		}
		if len(again) == 0 || !b.wait(100*time.Millisecond) {
			break
		}
		todo = again
	}
	for _, p := range items {
		switch {
		case p.vendorID == "" || out[p] != "":
		case p.fallback != "" && len(p.fallback) <= maxID:
			out[p] = p.fallback
		default:
			out[p] = p.provider + ":" + p.vendorID
		}
	}
	return out
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
		if b.repeated(id) {
			continue
		}
		msg, err := message(u.Content, u)
		if err != nil {
			return nil, malformed(fmt.Errorf("item %d: %w", i, err))
		}
		b.add(&pending{id: id, build: func(string) error {
			return itemErr(i, c.received(b, id, "aliyun:"+seq, phone, u.SignName, msg, at))
		}})
	}
	return b.build()
}

// itemErr names the push item an error is about.
func itemErr(i int, err error) error {
	if err != nil {
		return fmt.Errorf("item %d: %w", i, err)
	}
	return nil
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
		if b.repeated(id) {
			continue
		}
		phone, _ := fromAliyun(r.PhoneNumber) // a receipt with an odd number is still a receipt
		b.add(&pending{id: id, provider: ProviderAliyun, vendorID: r.BizID, fallback: strings.TrimSpace(r.OutID), at: at,
			build: func(msgID string) error {
				return itemErr(i, c.receipt(b, id, msgID, r.BizID, phone, r.Success, r.ErrCode, r.ErrMsg, at))
			}})
	}
	return b.build()
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
	msg, err := message(r.Text, r)
	if err != nil {
		return nil, malformed(err)
	}
	b := c.newBatch(ctx)
	b.add(&pending{id: id, build: func(string) error {
		return c.received(b, id, "tencent:"+h, phone, r.Sign, msg, time.Unix(r.Time, 0))
	}})
	return b.build()
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
		if b.repeated(id) {
			continue
		}
		var at time.Time // none: the time of receipt
		if r.UserReceiveTime != "" {
			at, _ = tcwire.ParseReportTime(r.UserReceiveTime) // checked by ParseStatus
		}
		phone, _ := normalizePhone("+"+r.Nationcode+r.Mobile, c.cfg.DefaultRegion)
		reason := r.Description
		if reason == "" {
			reason = r.Errmsg
		}
		b.add(&pending{id: id, provider: ProviderTencent, vendorID: r.Sid, at: at, build: func(msgID string) error {
			return itemErr(i, c.receipt(b, id, msgID, r.Sid, phone, r.ReportStatus == tcwire.ReportSuccess, r.Errmsg, reason, at))
		}})
	}
	return b.build()
}
