package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/event"
)

// Headers stamped on a dead letter, next to the original message's own headers.
const (
	HeaderDLQReason     = "Omnibus-Dlq-Reason"
	HeaderDLQSubject    = "Omnibus-Dlq-Subject"
	HeaderDLQStream     = "Omnibus-Dlq-Stream"
	HeaderDLQSequence   = "Omnibus-Dlq-Sequence"
	HeaderDLQConsumer   = "Omnibus-Dlq-Consumer"
	HeaderDLQDeliveries = "Omnibus-Dlq-Deliveries"
	HeaderDLQTime       = "Omnibus-Dlq-Time"
)

const maxReasonLen = 2048

func (c *Client) deadLetter(ctx context.Context, cfg ConsumerConfig, msg jetstream.Msg, meta *jetstream.MsgMetadata, reason string) error {
	h := make(nats.Header, len(msg.Headers())+8)
	for k, v := range msg.Headers() {
		h[k] = v
	}
	stampDLQ(h, reason, msg.Subject(), cfg.Durable, meta.NumDelivered)
	h.Set(HeaderDLQStream, meta.Stream)
	h.Set(HeaderDLQSequence, strconv.FormatUint(meta.Sequence.Stream, 10))
	// Deterministic id: a dead-letter publish repeated after a crash is stored once.
	h.Set(jetstream.MsgIDHeader, fmt.Sprintf("dlq:%s:%s:%d", cfg.Durable, meta.Stream, meta.Sequence.Stream))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.timeout)
	defer cancel()
	_, err := c.js.PublishMsg(ctx, &nats.Msg{Subject: SubjectDLQ(cfg.Service), Header: h, Data: msg.Data()})
	return err
}

// stampDLQ sets the dead-letter headers every dead letter carries.
func stampDLQ(h nats.Header, reason, subject, consumer string, deliveries uint64) {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen] + "…"
	}
	h.Set(HeaderDLQReason, strings.ToValidUTF8(strings.ReplaceAll(reason, "\n", " | "), "?"))
	h.Set(HeaderDLQSubject, subject)
	h.Set(HeaderDLQConsumer, consumer)
	h.Set(HeaderDLQDeliveries, strconv.FormatUint(deliveries, 10))
	h.Set(HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
}

// DeadLetter is one message in OMNI_DLQ.
type DeadLetter struct {
	Seq             uint64    // sequence in OMNI_DLQ (what redrive and delete name)
	Subject         string    // omni.dlq.<service>
	Time            time.Time // when it was dead-lettered
	Reason          string
	OriginalSubject string
	OriginalStream  string
	OriginalSeq     uint64
	Consumer        string
	Deliveries      uint64
	EventID         string // ce-id, if the message was a decodable CloudEvent
	EventType       string
	Header          nats.Header
	Data            []byte
}

// DeadLetterFilter selects dead letters; empty fields match everything.
type DeadLetterFilter struct {
	Service        string   // only omni.dlq.<Service>
	Seqs           []uint64 // only these OMNI_DLQ sequences
	Subject        string   // original subject, NATS wildcards allowed ("omni.in.sms.>")
	ReasonContains string   // case-insensitive substring of the reason
	Limit          int      // at most this many (0: no limit)
}

func (f DeadLetterFilter) match(d DeadLetter) bool {
	if len(f.Seqs) > 0 {
		found := false
		for _, s := range f.Seqs {
			found = found || s == d.Seq
		}
		if !found {
			return false
		}
	}
	if f.Subject != "" && !subjectMatchesAny(ExpandInbound([]string{f.Subject}), d.OriginalSubject) {
		return false
	}
	if f.ReasonContains != "" && !strings.Contains(strings.ToLower(d.Reason), strings.ToLower(f.ReasonContains)) {
		return false
	}
	return true
}

// SubjectMatches reports whether subject matches the NATS pattern (with * and >).
func SubjectMatches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}

// DeadLetters lists and redrives messages in OMNI_DLQ.
type DeadLetters interface {
	// ListDeadLetters returns the dead letters matching f, oldest first.
	ListDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error)
	// Redrive republishes the dead letters matching f to their original subjects (without the
	// dead-letter headers) and deletes each from OMNI_DLQ once JetStream acked the republish.
	// It returns how many were redriven.
	Redrive(ctx context.Context, f DeadLetterFilter) (int, error)
}

// ListDeadLetters implements DeadLetters.
func (c *Client) ListDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error) {
	ctx, cancel := withDefaultTimeout(ctx, 30*time.Second)
	defer cancel()
	filter := "omni.dlq.>"
	if f.Service != "" {
		filter = SubjectDLQ(f.Service)
	}
	st, err := c.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	var out []DeadLetter
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		n := 0
		var pending uint64
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			pending = meta.NumPending
			d := toDeadLetter(m, meta)
			if f.match(d) {
				out = append(out, d)
				if f.Limit > 0 && len(out) >= f.Limit {
					return out, nil
				}
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		if n == 0 || pending == 0 {
			return out, nil
		}
	}
}

func toDeadLetter(m jetstream.Msg, meta *jetstream.MsgMetadata) DeadLetter {
	h := m.Headers()
	d := DeadLetter{
		Seq: meta.Sequence.Stream, Subject: m.Subject(), Time: meta.Timestamp,
		Reason: h.Get(HeaderDLQReason), OriginalSubject: h.Get(HeaderDLQSubject),
		OriginalStream: h.Get(HeaderDLQStream), Consumer: h.Get(HeaderDLQConsumer),
		Header: h, Data: m.Data(),
	}
	d.OriginalSeq, _ = strconv.ParseUint(h.Get(HeaderDLQSequence), 10, 64)
	d.Deliveries, _ = strconv.ParseUint(h.Get(HeaderDLQDeliveries), 10, 64)
	for k, v := range h {
		switch strings.ToLower(k) {
		case "ce-id":
			d.EventID = v[0]
		case "ce-type":
			d.EventType = v[0]
		}
	}
	return d
}

// Redrive implements DeadLetters.
func (c *Client) Redrive(ctx context.Context, f DeadLetterFilter) (int, error) {
	letters, err := c.ListDeadLetters(ctx, f)
	if err != nil {
		return 0, err
	}
	ctx, cancel := withDefaultTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return 0, fmt.Errorf("redrive: %w", err)
	}
	n := 0
	for _, d := range letters {
		if d.OriginalSubject == "" {
			return n, fmt.Errorf("redrive: dead letter %d has no %s header", d.Seq, HeaderDLQSubject)
		}
		h := make(nats.Header, len(d.Header))
		for k, v := range d.Header {
			if !strings.HasPrefix(strings.ToLower(k), "omnibus-dlq-") {
				h[k] = v
			}
		}
		// A fresh Nats-Msg-Id: the original id may still be inside the duplicate window.
		h.Set(jetstream.MsgIDHeader, fmt.Sprintf("redrive:%d:%s", d.Seq, d.EventID))
		if _, err := c.js.PublishMsg(ctx, &nats.Msg{Subject: d.OriginalSubject, Header: h, Data: d.Data}); err != nil {
			return n, fmt.Errorf("redrive %d to %s: %w", d.Seq, d.OriginalSubject, err)
		}
		if err := st.DeleteMsg(ctx, d.Seq); err != nil {
			return n, fmt.Errorf("redrive %d: republished but not deleted from %s: %w", d.Seq, StreamDLQ, err)
		}
		n++
	}
	return n, nil
}

var _ DeadLetters = (*Client)(nil)

// DeadLetterEvent puts an event that a service produced but cannot publish (it fails its
// schema, say) on omni.dlq.<service> with the reason, instead of dropping it or retrying it
// forever. subject is where it was meant to go.
func (c *Client) DeadLetterEvent(ctx context.Context, service, subject string, e event.Event, reason string) error {
	h, body, err := event.Encode(e)
	if err != nil {
		return fmt.Errorf("dead-letter %s: %w", e.ID(), err)
	}
	stampDLQ(h, reason, subject, service, 0)
	h.Set(jetstream.MsgIDHeader, "dlq:produced:"+e.ID())
	ctx, cancel := withDefaultTimeout(ctx, c.opts.timeout)
	defer cancel()
	_, err = c.js.PublishMsg(ctx, &nats.Msg{Subject: SubjectDLQ(service), Header: h, Data: body})
	return err
}
