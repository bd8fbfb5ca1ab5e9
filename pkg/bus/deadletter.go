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

func (c *Client) deadLetter(ctx context.Context, cfg ConsumerConfig, in *inflight, reason string) error {
	msg, meta := in.msg, in.meta
	h := make(nats.Header, len(msg.Headers())+8)
	for k, v := range msg.Headers() {
		h[k] = v
	}
	// Where the message came from: a redriven dead letter names its original subject and stream.
	stampDLQ(h, reason, in.d.Subject, cfg.Durable, meta.NumDelivered)
	h.Set(HeaderDLQStream, in.d.Stream)
	h.Set(HeaderDLQSequence, strconv.FormatUint(in.d.StreamSeq, 10))
	// Deterministic id from the message as delivered: a dead-letter publish repeated after a
	// crash is stored once, and a redriven message that fails again is a new dead letter. A
	// message no consumer can take (undecodable, schema-invalid) has one id whichever consumer
	// meets it, so the stream's duplicate window stores it once, not once per consumer.
	owner := cfg.Durable
	if in.intrinsic {
		owner = "message"
	}
	h.Set(jetstream.MsgIDHeader, fmt.Sprintf("dlq:%s:%s:%d", owner, meta.Stream, meta.Sequence.Stream))
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
	// All says an empty filter means every dead letter: DiscardDeadLetters refuses an empty
	// filter without it (ErrEmptyFilter).
	All bool
}

// ErrEmptyFilter is returned by DiscardDeadLetters for a filter that selects nothing in
// particular (no service, sequences, subject or reason) without All.
var ErrEmptyFilter = errors.New("dead letters: choose what to select (sequences, service, subject or reason) or set All")

func (f DeadLetterFilter) empty() bool {
	return f.Service == "" && len(f.Seqs) == 0 && f.Subject == "" && f.ReasonContains == ""
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

// DeadLetters lists, redrives and discards messages in OMNI_DLQ.
type DeadLetters interface {
	// ListDeadLetters returns the dead letters matching f, oldest first.
	ListDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error)
	// Redrive hands each dead letter matching f back, once, to the consumer that failed it (its
	// durable's redrive subject, omni.redrive.<consumer> in OMNI_REDRIVE; no other subscriber of
	// the original stream sees it, and the original stream gets no copy), then deletes it from
	// OMNI_DLQ. An event that a service produced but could not publish (it never reached a
	// stream) goes to its original subject instead. Dead letters whose consumer no longer exists
	// stay in OMNI_DLQ and are named in the error. It returns how many were redriven.
	Redrive(ctx context.Context, f DeadLetterFilter) (int, error)
	// DeadLetterEvent puts an event that a service produced but cannot publish (it fails its
	// schema, say) on omni.dlq.<service> with the reason, instead of dropping it or retrying it
	// forever. subject is where it was meant to go.
	DeadLetterEvent(ctx context.Context, service, subject string, e event.Event, reason string) error
	// DiscardDeadLetters deletes the dead letters matching f from OMNI_DLQ without redriving
	// them, and returns them (what was discarded, for the caller's audit record). An empty
	// filter without f.All returns ErrEmptyFilter and deletes nothing.
	DiscardDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error)
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
	// How many the filter holds: a fetch of exactly that many returns at once instead of
	// waiting out its deadline for more.
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	var held uint64
	for _, n := range info.State.Subjects {
		held += n
	}
	if info.State.Msgs == 0 || held == 0 {
		return nil, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	var out []DeadLetter
	var seen uint64
	for {
		want := 256
		if held > seen && held-seen < uint64(want) {
			want = int(held - seen)
		}
		batch, err := cons.Fetch(want, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		n := 0
		var pending uint64
		for m := range batch.Messages() {
			n++
			seen++
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
	var errs []error
	exists := map[string]error{} // stream/consumer -> whether it still exists
	for _, d := range letters {
		if d.OriginalSubject == "" {
			errs = append(errs, fmt.Errorf("dead letter %d has no %s header", d.Seq, HeaderDLQSubject))
			continue
		}
		h := make(nats.Header, len(d.Header))
		for k, v := range d.Header {
			if !strings.HasPrefix(strings.ToLower(k), "omnibus-dlq-") {
				h[k] = v
			}
		}
		subject := d.OriginalSubject
		if d.OriginalStream != "" && d.Consumer != "" {
			// Consumed from a stream: back to that consumer only.
			key := d.OriginalStream + "/" + d.Consumer
			err, seen := exists[key]
			if !seen {
				_, err = c.js.Consumer(ctx, d.OriginalStream, d.Consumer)
				exists[key] = err
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("dead letter %d: consumer %s on %s: %w (nothing would receive it; it stays)", d.Seq, d.Consumer, d.OriginalStream, err))
				continue
			}
			subject = SubjectRedrive(d.Consumer)
			h.Set(HeaderRedriveSubject, d.OriginalSubject)
			h.Set(HeaderRedriveStream, d.OriginalStream)
			h.Set(HeaderRedriveSequence, strconv.FormatUint(d.OriginalSeq, 10))
		}
		// The dead letter's sequence names the redrive: repeated after a crash, it is stored once.
		h.Set(jetstream.MsgIDHeader, fmt.Sprintf("redrive:%d:%s", d.Seq, d.EventID))
		if _, err := c.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: h, Data: d.Data}); err != nil {
			return n, errors.Join(append(errs, fmt.Errorf("redrive %d to %s: %w", d.Seq, subject, err))...)
		}
		if err := st.DeleteMsg(ctx, d.Seq); err != nil {
			return n, errors.Join(append(errs, fmt.Errorf("redrive %d: republished but not deleted from %s: %w", d.Seq, StreamDLQ, err))...)
		}
		n++
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("redrive: %w", errors.Join(errs...))
	}
	return n, nil
}

// DiscardDeadLetters implements DeadLetters.
func (c *Client) DiscardDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error) {
	if f.empty() && !f.All {
		return nil, ErrEmptyFilter
	}
	letters, err := c.ListDeadLetters(ctx, f)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("discard: %w", err)
	}
	for i, d := range letters {
		if err := st.DeleteMsg(ctx, d.Seq); err != nil {
			return letters[:i], fmt.Errorf("discard %d from %s: %w", d.Seq, StreamDLQ, err)
		}
	}
	return letters, nil
}

// Headers of a redriven dead letter in OMNI_REDRIVE: where the message was first consumed from.
const (
	HeaderRedriveSubject  = "Omnibus-Redrive-Subject"
	HeaderRedriveStream   = "Omnibus-Redrive-Stream"
	HeaderRedriveSequence = "Omnibus-Redrive-Sequence"
)

// SubjectRedrive is where Redrive hands a dead letter back to the durable consumer that failed it.
func SubjectRedrive(consumer string) string { return "omni.redrive." + consumer }

// redriveOrigin is the subject, stream and sequence a redriven message was first consumed from
// (d's own when the headers are missing).
func redriveOrigin(h nats.Header, d Delivery) (string, string, uint64) {
	subject, stream := h.Get(HeaderRedriveSubject), h.Get(HeaderRedriveStream)
	seq, err := strconv.ParseUint(h.Get(HeaderRedriveSequence), 10, 64)
	if subject == "" || stream == "" || err != nil {
		return d.Subject, d.Stream, d.StreamSeq
	}
	return subject, stream, seq
}

// consumeRedrives feeds the subscription's redrives (omni.redrive.<durable> in OMNI_REDRIVE) to
// its handler, beside its stream. Without an OMNI_REDRIVE stream (not provisioned) it does
// nothing.
func (s *Subscription) consumeRedrives(ctx context.Context) error {
	cfg := s.cfg
	cctx, cancel := withDefaultTimeout(ctx, s.c.opts.timeout)
	defer cancel()
	cons, err := s.c.js.CreateOrUpdateConsumer(cctx, StreamRedrive, jetstream.ConsumerConfig{
		Durable:        cfg.Durable,
		FilterSubjects: []string{SubjectRedrive(cfg.Durable)},
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  cfg.MaxAckPending,
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("redrive consumer %s on %s: %w", cfg.Durable, StreamRedrive, err)
	}
	s.rcc, err = cons.Consume(s.onMsg, jetstream.PullMaxMessages(min(cfg.PullMaxMessages, 64)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) || !s.stopping.Load() {
				s.c.opts.log.Warn("redrive consumer error", "consumer", cfg.Durable, "err", err)
			}
		}))
	if err != nil {
		return fmt.Errorf("consume %s on %s: %w", cfg.Durable, StreamRedrive, err)
	}
	return nil
}

var _ DeadLetters = (*Client)(nil)

// DeadLetterEvent implements DeadLetters.
func (c *Client) DeadLetterEvent(ctx context.Context, service, subject string, e event.Event, reason string) error {
	if e.Context != nil {
		e.Context = e.Context.Clone()
	}
	if err := c.seal(&e); err != nil {
		return fmt.Errorf("dead-letter %s: %w", e.ID(), err)
	}
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
