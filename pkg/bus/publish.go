package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
)

// ErrPublish is wrapped by every publish failure after validation (no ack, timeout, stream error).
var ErrPublish = errors.New("publish failed")

// Publisher publishes CloudEvents to JetStream.
type Publisher interface {
	// Publish validates e against its schema and publishes it in binary mode on subject, waiting
	// for the JetStream ack. An inbound subject (omni.in.<channel>.<kind>) gets its partition
	// token appended (see PartitionedSubject). Errors wrap schema.ErrInvalid, schema.ErrUnknownType,
	// event.ErrInvalid or ErrPublish.
	Publish(ctx context.Context, subject string, e event.Event) error
	// PublishBatch publishes many events asynchronously and waits until every one is acked. It
	// returns nil only when all were acked; otherwise a *BatchError naming the failed indexes
	// (the caller may retry the whole batch: event ids make the retry idempotent within the
	// duplicate window).
	PublishBatch(ctx context.Context, batch []Outgoing) error
}

// Outgoing is one event of a batch and the subject it goes to.
type Outgoing struct {
	Subject string
	Event   event.Event
}

// prepare validates e (unless validated), fills dataschema and the creation trace context, starts
// the producer span and encodes the message. The caller ends the span.
func (c *Client) prepare(ctx context.Context, subject string, e *event.Event, validated bool) (*nats.Msg, trace.Span, error) {
	if !validated {
		if err := c.validate(*e); err != nil {
			return nil, nil, err
		}
	}
	// Copies of an event share their context: work on a copy of it so the caller's event is
	// unchanged. The data is never written, so the copy shares it (Event.Clone would copy it too).
	if e.Context != nil {
		e.Context = e.Context.Clone()
	}
	if err := c.seal(e); err != nil {
		return nil, nil, err
	}
	key := event.PartitionKey(*e)
	if key == "" {
		key = e.ID()
	}
	stored := PartitionedSubject(subject, key)
	if e.DataSchema() == "" {
		e.SetDataSchema(c.dataSchema(e.Type()))
	}
	// The extension keeps the creation context (the caller's span), set once when the event
	// first leaves; the per-hop header below carries the publish span. An event published outside
	// any span that carries its creation context (an outbox relay publishing what a transaction
	// wrote) is published in that trace.
	if !trace.SpanContextFromContext(ctx).IsValid() && event.Ext(*e, event.ExtTraceParent) != "" {
		ctx = ContextFromEvent(ctx, *e)
	}
	creation := ctx
	sctx, span := c.tel.tracer.Start(ctx, "publish "+SubjectTemplate(subject),
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attrSystem, keyDestination.String(stored), keyOperationType.String("send"),
			keyOperationName.String("publish"), keyMessageID.String(e.ID()), keyCEID.String(e.ID()),
			keyCEType.String(e.Type()), keyCESource.String(e.Source())))
	if event.Ext(*e, event.ExtTraceParent) == "" {
		if !trace.SpanContextFromContext(creation).IsValid() {
			creation = sctx
		}
		tracePropagator.Inject(creation, eventCarrier{e})
	}
	h, body, err := event.Encode(*e)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.End()
		return nil, nil, err
	}
	tracePropagator.Inject(sctx, headerCarrier(h))
	h.Set(HeaderSchema, c.opts.schemas.Fingerprint())
	h.Set(jetstream.MsgIDHeader, e.ID())
	return &nats.Msg{Subject: stored, Header: h, Data: body}, span, nil
}

// HeaderSchema carries the fingerprint of the schema set a pkg/bus producer validated the event
// against. A consumer whose registry has the same fingerprint does not validate it again (the
// stream does not change data); anything else — foreign producers, other schema versions — is
// validated on receipt. ConsumerConfig.AlwaysValidate turns the shortcut off.
const HeaderSchema = "Omnibus-Schema"

func (c *Client) validate(e event.Event) error {
	if c.opts.skipValidate {
		return nil
	}
	if err := c.opts.schemas.Validate(e.Type(), e.Data()); err != nil {
		return fmt.Errorf("event %s (%s): %w", e.ID(), e.Type(), err)
	}
	return nil
}

// Publish implements Publisher.
func (c *Client) Publish(ctx context.Context, subject string, e event.Event) error {
	msg, span, err := c.prepare(ctx, subject, &e, false)
	if err != nil {
		return err
	}
	defer span.End()
	ctx, cancel := withDefaultTimeout(ctx, c.opts.timeout)
	defer cancel()
	start := time.Now()
	ack, err := c.js.PublishMsg(ctx, msg)
	c.recordPublish(ctx, subject, e.Type(), start, err)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return fmt.Errorf("%w: %s on %s: %w", ErrPublish, e.ID(), subject, err)
	}
	span.SetAttributes(attribute.Int64("messaging.nats.stream.sequence", int64(ack.Sequence)),
		attribute.Bool("messaging.nats.duplicate", ack.Duplicate))
	return nil
}

func (c *Client) recordPublish(ctx context.Context, subject, typ string, start time.Time, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	attrs := c.tel.attrs(keyDestination.String(subject), keyCEType.String(typ), keyOutcome.String(outcome))
	c.tel.publishDur.Record(ctx, time.Since(start).Seconds(), attrs)
	if err == nil {
		c.tel.published.Add(ctx, 1, attrs)
	}
}

// PublishBatch implements Publisher.
func (c *Client) PublishBatch(ctx context.Context, batch []Outgoing) error {
	if len(batch) == 0 {
		return nil
	}
	if c.opts.atomic {
		return c.PublishAtomic(ctx, batch)
	}
	start := time.Now()
	errs := map[int]error{}
	prepared := c.prepareAll(ctx, batch, errs)
	c.publishAsync(ctx, batch, prepared, start, errs)
	if len(errs) == 0 {
		return nil
	}
	return &BatchError{Failed: errs}
}

// preparedMsg is event i of a batch, validated and encoded, with its producer span.
type preparedMsg struct {
	i    int
	msg  *nats.Msg
	span trace.Span
}

// prepareAll validates and encodes every event of batch, setting errs of those that fail.
func (c *Client) prepareAll(ctx context.Context, batch []Outgoing, errs map[int]error) []preparedMsg {
	out := make([]preparedMsg, 0, len(batch))
	verrs := c.validateAll(batch)
	for i := range batch {
		o := batch[i]
		if verrs[i] != nil {
			errs[i] = verrs[i]
			continue
		}
		msg, span, err := c.prepare(ctx, o.Subject, &o.Event, true)
		if err != nil {
			errs[i] = err
			continue
		}
		out = append(out, preparedMsg{i, msg, span})
	}
	return out
}

// publishAsync publishes msgs of batch one message each, all in flight at once, waits for their
// acks, ends their spans and sets errs of those that fail.
func (c *Client) publishAsync(ctx context.Context, batch []Outgoing, msgs []preparedMsg, start time.Time, errs map[int]error) {
	type pending struct {
		preparedMsg
		fut jetstream.PubAckFuture
	}
	inflight := make([]pending, 0, len(msgs))
	for _, m := range msgs {
		fut, err := c.js.PublishMsgAsync(m.msg)
		if err != nil {
			m.span.RecordError(err)
			m.span.End()
			errs[m.i] = fmt.Errorf("%w: %s: %w", ErrPublish, batch[m.i].Event.ID(), err)
			continue
		}
		inflight = append(inflight, pending{m, fut})
	}
	ctx, cancel := withDefaultTimeout(ctx, c.opts.timeout)
	defer cancel()
	for _, p := range inflight {
		o := batch[p.i]
		var err error
		select {
		case <-p.fut.Ok():
		case err = <-p.fut.Err():
		case <-ctx.Done():
			err = ctx.Err()
		}
		c.recordPublish(ctx, o.Subject, o.Event.Type(), start, err)
		if err != nil {
			p.span.RecordError(err)
			p.span.SetStatus(codes.Error, err.Error())
			errs[p.i] = fmt.Errorf("%w: %s: %w", ErrPublish, o.Event.ID(), err)
		}
		p.span.End()
	}
}

// parallelValidation is the batch size from which PublishBatch validates on every CPU: schema
// validation is most of a publish's CPU, and a relay or loader publishing batches would
// otherwise validate them on one core while the others wait.
const parallelValidation = 32

// validateAll validates every event of batch, in parallel for a large batch; errs[i] is event
// i's error.
func (c *Client) validateAll(batch []Outgoing) []error {
	errs := make([]error, len(batch))
	workers := min(runtime.GOMAXPROCS(0), len(batch)/(parallelValidation/2))
	if workers < 2 || len(batch) < parallelValidation {
		for i := range batch {
			errs[i] = c.validate(batch[i].Event)
		}
		return errs
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(batch); i = int(next.Add(1)) - 1 {
				errs[i] = c.validate(batch[i].Event)
			}
		})
	}
	wg.Wait()
	return errs
}

// BatchError is what PublishBatch returns when some events were not published: Failed maps
// each failed index of the batch to its error (schema.ErrInvalid, event.ErrInvalid or
// ErrPublish). Every other event was acked. errors.Is and errors.As see every cause.
type BatchError struct {
	Failed map[int]error
}

func (e *BatchError) Error() string {
	idx := make([]int, 0, len(e.Failed))
	for i := range e.Failed {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var b strings.Builder
	fmt.Fprintf(&b, "%d of the batch not published:", len(idx))
	for _, i := range idx {
		fmt.Fprintf(&b, " [%d] %v;", i, e.Failed[i])
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Unwrap returns the causes, for errors.Is and errors.As.
func (e *BatchError) Unwrap() []error {
	out := make([]error, 0, len(e.Failed))
	for _, err := range e.Failed {
		out = append(out, err)
	}
	return out
}

var _ Publisher = (*Client)(nil)
var _ = schema.ErrInvalid

// dataSchema is the dataschema of an event of ceType: its schema's URL under the configured base,
// else the schema's $id; "" for a type without a schema.
func (c *Client) dataSchema(ceType string) string {
	if c.opts.schemaBase == "" || !c.opts.schemas.Has(ceType) {
		return c.opts.schemas.SchemaURL(ceType)
	}
	return c.opts.schemaBase + ceType + ".json"
}
