package bus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/event"
)

// ErrInvalidReplay is wrapped by Replay for bad ReplayOptions.
var ErrInvalidReplay = errors.New("invalid replay options")

// ReplayOptions selects a range of a stream to read back, oldest first.
type ReplayOptions struct {
	// Stream to read, e.g. StreamIn. Required.
	Stream string
	// Subjects limits the replay to these subjects (wildcards allowed). Default: all.
	Subjects []string
	// StartSeq and EndSeq bound the stream sequences read, inclusive. 0 means from the first
	// message / to the last message stored when Replay starts.
	StartSeq, EndSeq uint64
	// StartTime and EndTime bound the time JetStream stored the messages, inclusive. Zero means
	// unbounded. Replay stops at the first message stored after EndTime.
	StartTime, EndTime time.Time
	// Limit is the most messages handed to fn (decodable or not). 0: no limit.
	Limit int
}

// Validate reports the first problem with o, wrapping ErrInvalidReplay.
func (o ReplayOptions) Validate() error {
	switch {
	case o.Stream == "":
		return fmt.Errorf("%w: Stream is required (one of %s, %s, %s, %s, %s, %s)", ErrInvalidReplay,
			StreamIn, StreamOut, StreamTool, StreamDesk, StreamAudit, StreamDLQ)
	case o.Limit < 0:
		return fmt.Errorf("%w: Limit must be >= 0, got %d", ErrInvalidReplay, o.Limit)
	case o.EndSeq != 0 && o.StartSeq > o.EndSeq:
		return fmt.Errorf("%w: StartSeq (%d) is after EndSeq (%d)", ErrInvalidReplay, o.StartSeq, o.EndSeq)
	case !o.StartTime.IsZero() && !o.EndTime.IsZero() && o.StartTime.After(o.EndTime):
		return fmt.Errorf("%w: StartTime (%s) is after EndTime (%s)", ErrInvalidReplay,
			o.StartTime.Format(time.RFC3339Nano), o.EndTime.Format(time.RFC3339Nano))
	}
	for _, s := range o.Subjects {
		if s == "" {
			return fmt.Errorf("%w: empty subject filter", ErrInvalidReplay)
		}
	}
	return nil
}

// ReplayFunc receives each message of a replay, in stream order. For a message that is not a
// decodable CloudEvent, d.Event is the zero event, decodeErr says why (it wraps
// event.ErrInvalid) and the other fields of d are set: it is reported, never skipped silently.
// Replayed events are not validated against their schema (they were when published; schemas
// may have changed since). d.Consumer is empty and d.NumDelivered is 1. Returning an error stops
// the replay; Replay returns that error.
type ReplayFunc func(d Delivery, decodeErr error) error

// Replayer reads streams back.
type Replayer interface {
	// Replay reads the range of o.Stream selected by o with an ordered consumer (ephemeral,
	// unacknowledged, in memory, deleted when Replay returns; a work-queue stream, which admits
	// none, is read message by message) and calls fn for each message, oldest first. It stops after the last message that existed when it started (it does not follow
	// live traffic), at EndSeq or EndTime, after Limit messages, when fn returns an error (which
	// it returns) or when ctx ends (it returns ctx.Err()). Other errors wrap ErrInvalidReplay,
	// jetstream.ErrStreamNotFound or the JetStream error.
	Replay(ctx context.Context, o ReplayOptions, fn ReplayFunc) error
}

// Replay tunables: messages buffered per pull (one round trip fetches a batch), and how long
// Next may wait before Replay asks the server whether anything is left to deliver (only matters
// when messages are deleted while they are being replayed: otherwise the end is known from the
// pending counts).
const (
	replayBatch     = 512
	replayIdleCheck = 2 * time.Second
)

// Replay implements Replayer.
func (c *Client) Replay(ctx context.Context, o ReplayOptions, fn ReplayFunc) error {
	if fn == nil {
		return fmt.Errorf("%w: nil ReplayFunc", ErrInvalidReplay)
	}
	if err := o.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	o.Subjects = ExpandInbound(o.Subjects)
	wrap := func(err error) error { return fmt.Errorf("replay %s: %w", o.Stream, err) }

	// The end is fixed now: live traffic published during the replay has later sequences.
	actx, cancel := withDefaultTimeout(ctx, c.opts.timeout)
	defer cancel()
	st, err := c.js.Stream(actx, o.Stream)
	if err != nil {
		return wrap(err)
	}
	info, err := st.Info(actx)
	if err != nil {
		return wrap(err)
	}
	end := info.State.LastSeq
	if o.EndSeq != 0 && o.EndSeq < end {
		end = o.EndSeq
	}
	if info.State.Msgs == 0 || o.StartSeq > end {
		return nil
	}

	em := &replayEmitter{fn: fn, limit: o.Limit, open: c.open}
	if info.Config.Retention == jetstream.WorkQueuePolicy {
		// A work queue (OMNI_OUT) admits no unacknowledged consumer, and an acknowledging one
		// would take the messages from their workers: read it message by message instead. It
		// only holds what is not yet consumed, so it is small.
		return c.replayByGet(ctx, st, o, end, em)
	}

	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:   o.Subjects,
		DeliverPolicy:    jetstream.DeliverAllPolicy,
		NamePrefix:       fmt.Sprintf("replay_%016x", rand.Uint64()),
		MaxResetAttempts: 5,
		Metadata:         map[string]string{"omnibus": "replay"},
	}
	switch {
	case !o.StartTime.IsZero():
		// With StartSeq too, the server positions by time and earlier sequences are skipped below.
		t := o.StartTime
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	case o.StartSeq > 1:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.StartSeq
	}
	cons, err := st.OrderedConsumer(actx, cfg)
	if err != nil {
		return wrap(err)
	}
	// Leave nothing behind on the server, whatever happens below.
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.timeout)
			derr := c.js.DeleteConsumer(dctx, o.Stream, ci.Name)
			dcancel()
			if derr != nil && !errors.Is(derr, jetstream.ErrConsumerNotFound) {
				c.opts.log.Warn("replay: ephemeral consumer not deleted; the server removes it when inactive",
					"stream", o.Stream, "consumer", ci.Name, "err", derr)
			}
		}
	}()
	if ci := cons.CachedInfo(); ci == nil || ci.NumPending == 0 {
		return nil // nothing matches from the start position on
	}
	batch := replayBatch
	if o.Limit > 0 && o.Limit < batch {
		batch = o.Limit
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(batch))
	if err != nil {
		return wrap(err)
	}
	// Stop unsubscribes in the background (the iterator's Closed channel is not dependable for a
	// Messages iterator stopped early, so it is not waited on).
	defer it.Stop()
	stopOnCancel := context.AfterFunc(ctx, it.Stop)
	defer stopOnCancel()

	for {
		m, err := it.Next(jetstream.NextMaxWait(replayIdleCheck))
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if errors.Is(err, nats.ErrTimeout) {
			// Nothing came: messages still pending may have been deleted meanwhile (limits, a work
			// queue, a redrive). Ask whether anything is left to deliver.
			ictx, icancel := withDefaultTimeout(ctx, c.opts.timeout)
			ci, ierr := cons.Info(ictx)
			icancel()
			if ierr == nil && ci.NumPending == 0 {
				return nil
			}
			continue
		}
		if err != nil {
			return wrap(err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return wrap(fmt.Errorf("message without JetStream metadata on %s: %w", m.Subject(), err))
		}
		seq := meta.Sequence.Stream
		if seq > end || (!o.EndTime.IsZero() && meta.Timestamp.After(o.EndTime)) {
			return nil
		}
		if seq >= o.StartSeq { // below it only when positioned by StartTime
			if done, err := em.emit(m.Subject(), meta.Stream, seq, meta.Timestamp, m.Headers(), m.Data()); done || err != nil {
				return err
			}
		}
		if seq >= end || meta.NumPending == 0 {
			return nil // the last message, or the last one matching the filter
		}
	}
}

// replayEmitter decodes replayed messages, hands them to fn and counts them against the limit.
type replayEmitter struct {
	fn       ReplayFunc
	limit, n int
	open     func(*event.Event) error // opens sealed personal data
}

// emit reports done once the limit is reached; an error is fn's, returned as is.
func (r *replayEmitter) emit(subject, stream string, seq uint64, stored time.Time, h nats.Header, data []byte) (done bool, err error) {
	e, decErr := event.Decode(h, data)
	if decErr == nil {
		decErr = r.open(&e)
	}
	if decErr != nil {
		e = event.Event{}
	}
	d := Delivery{Event: e, Subject: subject, Stream: stream, StreamSeq: seq, NumDelivered: 1, Published: stored}
	if err := r.fn(d, decErr); err != nil {
		return true, err
	}
	r.n++
	return r.limit > 0 && r.n >= r.limit, nil
}

// replayByGet reads [o.StartSeq, end] one message at a time (one round trip each), skipping gaps
// and, with a single filter subject, non-matching messages on the server.
func (c *Client) replayByGet(ctx context.Context, st jetstream.Stream, o ReplayOptions, end uint64, em *replayEmitter) error {
	next := ">"
	if len(o.Subjects) == 1 {
		next = o.Subjects[0]
	}
	for seq := max(o.StartSeq, 1); seq <= end; {
		gctx, cancel := withDefaultTimeout(ctx, c.opts.timeout)
		m, err := st.GetMsg(gctx, seq, jetstream.WithGetMsgSubject(next))
		cancel()
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil // nothing (matching) from seq on
		}
		if err != nil {
			return fmt.Errorf("replay %s: %w", o.Stream, err)
		}
		if m.Sequence > end || (!o.EndTime.IsZero() && m.Time.After(o.EndTime)) {
			return nil
		}
		seq = m.Sequence + 1
		if (!o.StartTime.IsZero() && m.Time.Before(o.StartTime)) || !subjectMatchesAny(o.Subjects, m.Subject) {
			continue
		}
		if done, err := em.emit(m.Subject, o.Stream, m.Sequence, m.Time, m.Header, m.Data); done || err != nil {
			return err
		}
	}
	return nil
}

func subjectMatchesAny(patterns []string, subject string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if SubjectMatches(p, subject) {
			return true
		}
	}
	return false
}

var _ Replayer = (*Client)(nil)
