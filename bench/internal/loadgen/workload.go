package loadgen

import (
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Event types the load generator publishes and observes (the unifier's engine constants are
// internal to its module).
const (
	typeReceived   = schemas.TypeChannelMessageReceived
	typeStatus     = schemas.TypeChannelMessageStatusUpdated
	typeDeskAdded  = schemas.TypeDeskMessageAdded
	subjectDeskAdd = "omni.desk.message.added"
)

// channels the workload writes on, with the identity kind a customer has there.
var channels = [...]struct{ name, kind, account string }{
	{"wechatkf", "wechat_openid", "wkLoadgenKF0001"},
	{"sms", "phone", "Omnibus"},
	{"webchat", "web_visitor", "site_loadgen"},
}

// texts are what customers write: Chinese and English, short and long, as on a real desk.
var texts = []string{
	"你好，我的快递到哪了？",
	"订单号 SF1234567890，三天了还没到",
	"我想改一下收货地址",
	"退款什么时候到账？",
	"这个商品有没有大一号的？",
	"客服在吗？急！",
	"发票可以开公司抬头吗？税号是 91310000MA1FL0000X",
	"谢谢，已经收到了 👍",
	"Hi, where is my order?",
	"I was charged twice for the same order, please help.",
	"Can I change the delivery time to tomorrow afternoon?",
	"Do you ship to Hong Kong?",
	"The app keeps logging me out when I try to pay.",
	"Thanks, that solved it!",
	"收到货发现包装破损，里面的杯子碎了一个，怎么处理？我拍了照片可以发给你们。",
	"Hello — I'd like to return the headphones I bought last week; the left earbud has no sound.",
}

// workload generates the events of a run deterministically from a seed: event i always goes to
// the same customer on the same channel with the same text, whichever goroutine builds it.
type workload struct {
	seed      uint64
	nonce     string // distinguishes the ids of this run from any earlier run on the same store
	customers int
	crossN    int     // customers 0..crossN-1 write on every channel, sharing one phone
	dupShare  float64 // share of events re-published with a fresh Nats-Msg-Id
	// statusShare is the share of inbound messages followed by a delivery status of an agent's
	// reply to that customer (the connector's status webhook): the first status of a reply
	// records it on the conversation, later ones update it.
	statusShare float64
	// statusUpdates: see Config.StatusUpdates.
	statusUpdates int
	phoneBase     int
}

func newWorkload(seed uint64, nonce string, customers int, cross, dup float64) *workload {
	return &workload{
		seed: seed, nonce: nonce, customers: customers, dupShare: dup,
		crossN:    int(cross*float64(customers) + 0.5),
		phoneBase: int(seed % 90_000_000),
	}
}

// ident is one customer identity.
type ident struct{ kind, value string }

func (w *workload) phone(c int) string              { return fmt.Sprintf("+86139%08d", (w.phoneBase+c)%100_000_000) }
func (w *workload) openid(c int) string             { return "oLG" + w.nonce + "_" + strconv.Itoa(c) }
func (w *workload) visitor(c int) string            { return "v_" + w.nonce + "_" + strconv.Itoa(c) }
func (w *workload) eventID(ch string, i int) string { return ch + ":" + w.msgID(i) }
func (w *workload) msgID(i int) string              { return "lg" + w.nonce + "-" + strconv.Itoa(i) }

// eventIndex returns i for an event id of this run, or -1.
func (w *workload) eventIndex(id string) int {
	colon := strings.IndexByte(id, ':')
	if colon < 0 || !strings.HasPrefix(id[colon+1:], "lg"+w.nonce+"-") {
		return -1
	}
	n, err := strconv.Atoi(id[colon+1+len("lg"+w.nonce+"-"):])
	if err != nil {
		return -1
	}
	return n
}

// spec is what event i is, before it is built.
type spec struct {
	i        int
	customer int
	channel  int
	from     ident
	extra    []ident
	text     string
	dup      bool
	status   bool // followed by a status of an agent's reply
	reply    int  // which of the customer's replies (0-2) the status is about
}

func (w *workload) spec(i int) spec {
	r := rand.New(rand.NewPCG(w.seed, uint64(i)))
	s := spec{i: i, dup: r.Float64() < w.dupShare, customer: r.IntN(w.customers), text: texts[r.IntN(len(texts))]}
	c := s.customer
	cross := c < w.crossN
	if cross {
		s.channel = r.IntN(len(channels))
	} else {
		s.channel = c % len(channels)
	}
	switch s.channel {
	case 0: // WeChat KF: the openid; the phone once the customer authorised it
		s.from = ident{"wechat_openid", w.openid(c)}
		if cross && r.IntN(2) == 0 {
			s.extra = []ident{{"phone", w.phone(c)}}
		}
	case 1: // SMS: the phone
		s.from = ident{"phone", w.phone(c)}
	default: // web chat: the visitor id; the phone when the visitor is logged in
		s.from = ident{"web_visitor", w.visitor(c)}
		if cross && r.IntN(2) == 0 {
			s.extra = []ident{{"phone", w.phone(c)}}
		}
	}
	// Drawn last, so that a seed gives the same messages with and without statuses.
	s.status = r.Float64() < w.statusShare
	s.reply = r.IntN(3)
	return s
}

// replyStatuses are the delivery statuses a reply goes through.
var replyStatuses = [...]string{"sent", "delivered", "read"}

// statusEvents builds the statuses that follow event i: one status of one of the customer's
// replies (statusEvent), or with statusUpdates, a new reply's first status and its updates.
func (w *workload) statusEvents(s spec, now time.Time) ([]bus.Outgoing, error) {
	if w.statusUpdates == 0 {
		o, err := w.statusEvent(s, now)
		return []bus.Outgoing{o}, err
	}
	ch := channels[s.channel]
	msgID := "reply" + w.nonce + "-" + strconv.Itoa(s.i)
	out := make([]bus.Outgoing, 0, 1+w.statusUpdates)
	for k := 0; k <= w.statusUpdates; k++ {
		at := now.Add(time.Duration(k) * time.Millisecond)
		data := map[string]any{"channel": ch.name, "message_id": msgID, "status": replyStatuses[k], "at": at.UTC()}
		if k == 0 { // the first status carries the reply (the schema asks the body with the recipient)
			data["to"] = map[string]string{"kind": s.from.kind, "value": s.from.value}
			data["message"] = map[string]any{"type": "text", "text": "您好，已为您查询，包裹预计明天送达。"}
		}
		e, err := event.New(typeStatus, "/connectors/"+ch.name, data, event.WithID("status:"+w.msgID(s.i)+":"+strconv.Itoa(k)),
			event.WithTime(at), event.WithPartitionKey(s.from.kind+":"+s.from.value))
		if err != nil {
			return nil, err
		}
		out = append(out, bus.Outgoing{Subject: "omni.in." + ch.name + ".status", Event: e})
	}
	return out, nil
}

// statusEvent builds the status that follows event i: omni.channel.message.status.updated on
// omni.in.<channel>.status for one of the agents' replies to the customer (ids outside the
// inbound events' pattern, so the checks on inbound messages do not count them), carrying the
// recipient and body as a connector reports an outbound message it sent.
func (w *workload) statusEvent(s spec, now time.Time) (bus.Outgoing, error) {
	ch := channels[s.channel]
	msgID := "reply" + w.nonce + "-" + strconv.Itoa(s.customer) + "-" + ch.name + "-" + strconv.Itoa(s.reply)
	data := map[string]any{
		"channel": ch.name, "message_id": msgID, "status": replyStatuses[s.i%len(replyStatuses)], "at": now.UTC(),
		"to":      map[string]string{"kind": s.from.kind, "value": s.from.value},
		"message": map[string]any{"type": "text", "text": "您好，已为您查询，包裹预计明天送达。"},
	}
	e, err := event.New(typeStatus, "/connectors/"+ch.name, data,
		event.WithID("status:"+w.msgID(s.i)), event.WithTime(now), event.WithPartitionKey(s.from.kind+":"+s.from.value))
	if err != nil {
		return bus.Outgoing{}, err
	}
	return bus.Outgoing{Subject: "omni.in." + ch.name + ".status", Event: e}, nil
}

// event builds event i as a channel connector would: omni.channel.message.received on
// omni.in.<channel>.message, partitioned by the sender identity, event time now.
func (w *workload) event(s spec, now time.Time) (bus.Outgoing, error) {
	ch := channels[s.channel]
	data := map[string]any{
		"channel": ch.name, "channel_message_id": w.msgID(s.i), "account": ch.account,
		"from":    map[string]string{"kind": s.from.kind, "value": s.from.value},
		"message": map[string]any{"type": "text", "text": s.text}, "sent_at": now.UTC(),
	}
	if len(s.extra) > 0 {
		ids := make([]map[string]string, len(s.extra))
		for k, x := range s.extra {
			ids[k] = map[string]string{"kind": x.kind, "value": x.value}
		}
		data["identities"] = ids
	}
	e, err := event.New(typeReceived, "/connectors/"+ch.name, data,
		event.WithID(w.eventID(ch.name, s.i)), event.WithTime(now), event.WithPartitionKey(s.from.kind+":"+s.from.value))
	if err != nil {
		return bus.Outgoing{}, err
	}
	return bus.Outgoing{Subject: "omni.in." + ch.name + ".message", Event: e}, nil
}

// row is event i as a row shaped like the unifier's messages table, for the Postgres ceiling.
func (w *workload) row(s spec, now time.Time) []any {
	ch := channels[s.channel]
	body, _ := json.Marshal(map[string]any{"type": "text", "text": s.text})
	return []any{
		w.eventID(ch.name, s.i),
		uuidOf("conversation", w.nonce, strconv.Itoa(s.customer)),
		uuidOf("customer", w.nonce, strconv.Itoa(s.customer)),
		ch.name, "inbound", s.from.kind, s.from.value, string(body), now.UTC(),
	}
}

// uuidOf is a name-based (v5-style) UUID.
func uuidOf(parts ...string) pgtype.UUID {
	h := sha1.Sum([]byte(strings.Join(parts, "\x00")))
	var u pgtype.UUID
	copy(u.Bytes[:], h[:16])
	u.Bytes[6] = (u.Bytes[6] & 0x0f) | 0x50
	u.Bytes[8] = (u.Bytes[8] & 0x3f) | 0x80
	u.Valid = true
	return u
}
