package bus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnibus-dev/omnibus/pkg/event"
)

// Delivery is one consumed event with its JetStream metadata.
type Delivery struct {
	Event        event.Event
	Subject      string    // the subject it was published on
	Stream       string    // the stream it was stored in
	Consumer     string    // the durable consumer that delivered it
	StreamSeq    uint64    // its sequence in Stream
	NumDelivered uint64    // 1 on first delivery
	Published    time.Time // when JetStream stored it
	// SpanContext is the consumer span of this delivery ("process <subject>"): what work done
	// for it continues (a batch handler's outputs, an outbox row), whatever context the handler
	// got — a batch handler's is the batch's, which links every delivery's.
	SpanContext trace.SpanContext
}

// Handler processes one delivery. Return nil once the effect is durable (the message is then
// acked); an error to retry with backoff; Permanent(err) to dead-letter now;
// RetryAfter(err, d) to retry after d. Handlers must be idempotent, keyed by event id:
// a message can be delivered more than once.
type Handler func(ctx context.Context, d Delivery) error

// ConsumerConfig declares a durable pull consumer. Zero fields take the defaults shown.
type ConsumerConfig struct {
	// Service names the consuming service; dead letters go to omni.dlq.<Service>. Required.
	Service string
	// Stream to consume. Required.
	Stream string
	// Durable consumer name. Default Service.
	Durable string
	// FilterSubjects limits the consumer to these subjects (wildcards allowed; inbound subjects
	// match every partition, see ExpandInbound). Default: all.
	FilterSubjects []string
	// DeliverPolicy for a new consumer. Default jetstream.DeliverAllPolicy.
	DeliverPolicy jetstream.DeliverPolicy
	// MaxDeliver is how many deliveries a message gets before it is dead-lettered. Default 5.
	// Failures for a dependency that is down (see Dependencies) never count.
	MaxDeliver int
	// Dependencies are what the handler needs besides its message (its database, a vendor
	// route), each with a cheap check. When the handler fails with an error that is not
	// Permanent, the consumer runs the checks: if one fails — or the error is marked
	// Unavailable — the failure is the dependency's, not the message's. The consumer
	// then pauses: it holds the message (kept in progress, so JetStream neither redelivers it nor
	// counts a delivery), handles nothing else, checks again with backoff from 250 ms to 15 s,
	// and runs the handler again once the dependency serves, however long the outage. Only a
	// failure while every dependency serves counts toward MaxDeliver. Default none: every
	// failure not marked Unavailable counts.
	Dependencies []Dependency
	// Backoff is the nak delay after the 1st, 2nd, ... failure; the last value repeats, each
	// with ±20% jitter. Default 1s, 5s, 30s, 2m.
	Backoff []time.Duration
	// AckWait is how long JetStream waits for an ack before redelivering (a crashed handler).
	// Default 30s.
	AckWait time.Duration
	// MaxAckPending bounds unacknowledged messages in flight. Default 1024.
	MaxAckPending int
	// Concurrency is the number of handlers running at once. Default 1, which keeps stream order.
	Concurrency int
	// PullMaxMessages is the client-side prefetch buffer. Default 256.
	PullMaxMessages int
	// AlwaysValidate validates every message on receipt, even those a pkg/bus producer with the
	// same schema set already validated (see HeaderSchema). Default false.
	AlwaysValidate bool
	// Linger, for SubscribeBatch only, is how long a batch smaller than its maximum waits for
	// more messages once the buffered ones are taken — only while messages keep coming (the
	// previous batch started less than 4 Lingers before), so a message after a quiet spell is
	// handled at once. Default 0: never wait. A few milliseconds turn a steady trickle into
	// fewer, larger batches — worth it when a batch has a fixed cost (a transaction).
	Linger time.Duration
	// KeepSealed hands the handler the events as the log holds them, personal data sealed, even
	// when the client has a DataProtector (which then does not open them): for a consumer that
	// needs only what sealed data carries (the unifier matches identities by their blind index).
	// Default false.
	KeepSealed bool

	maxBatch int // set by SubscribeBatch
}

// ErrInvalidConsumer is wrapped by Subscribe for a bad ConsumerConfig.
var ErrInvalidConsumer = errors.New("invalid consumer config")

// DefaultBackoff is the nak schedule used when ConsumerConfig.Backoff is empty.
var DefaultBackoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}

func (c *ConsumerConfig) setDefaults() {
	if c.Durable == "" {
		c.Durable = c.Service
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 5
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 1024
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.PullMaxMessages == 0 {
		c.PullMaxMessages = 256
	}
}

// Validate reports the first problem with c (after defaults), wrapping ErrInvalidConsumer.
func (c ConsumerConfig) Validate() error {
	switch {
	case c.Service == "":
		return fmt.Errorf("%w: Service is required (it names the dead-letter subject omni.dlq.<service>)", ErrInvalidConsumer)
	case c.Stream == "":
		return fmt.Errorf("%w: Stream is required (one of %s)", ErrInvalidConsumer, streamNames())
	case c.MaxDeliver < 1:
		return fmt.Errorf("%w: MaxDeliver must be >= 1, got %d", ErrInvalidConsumer, c.MaxDeliver)
	case c.Concurrency < 1:
		return fmt.Errorf("%w: Concurrency must be >= 1, got %d", ErrInvalidConsumer, c.Concurrency)
	case c.MaxAckPending < c.Concurrency:
		return fmt.Errorf("%w: MaxAckPending (%d) cannot be below Concurrency (%d)", ErrInvalidConsumer, c.MaxAckPending, c.Concurrency)
	}
	for _, d := range c.Backoff {
		if d <= 0 {
			return fmt.Errorf("%w: Backoff values must be > 0, got %s", ErrInvalidConsumer, d)
		}
	}
	for i, d := range c.Dependencies {
		if d.Name == "" || d.Check == nil {
			return fmt.Errorf("%w: Dependencies[%d] needs a Name and a Check", ErrInvalidConsumer, i)
		}
	}
	return nil
}

// Subscriber runs handlers on durable consumers.
type Subscriber interface {
	// Subscribe creates or updates the durable consumer and starts delivering to h until ctx is
	// cancelled (then it drains) or the returned Subscription is stopped. Errors wrap
	// ErrInvalidConsumer or the JetStream error.
	Subscribe(ctx context.Context, cfg ConsumerConfig, h Handler) (*Subscription, error)
	// SubscribeBatch is Subscribe for a handler of up to maxBatch messages at a time, in order
	// (see Client.SubscribeBatch).
	SubscribeBatch(ctx context.Context, cfg ConsumerConfig, maxBatch int, h BatchHandler) (*Subscription, error)
}

// Subscription is a running consumer: a handle with Stop, Drain and Closed, like
// jetstream.ConsumeContext.
type Subscription struct {
	c        *Client
	cfg      ConsumerConfig
	h        Handler
	cc       jetstream.ConsumeContext
	rcc      jetstream.ConsumeContext // the consumer's redrives on OMNI_REDRIVE; nil without that stream
	sem      chan struct{}
	wg       sync.WaitGroup
	stopping atomic.Bool
	hctx     context.Context
	hcancel  context.CancelFunc
	once     sync.Once
	closing  chan struct{} // closed when the subscription starts to drain or stop
	done     chan struct{}
	// paused counts the handlers holding messages for a dependency that is down.
	paused     atomic.Int32
	pauseAttrs metric.MeasurementOption
	// batch mode
	bh    BatchHandler
	queue chan jetstream.Msg
}

// Subscribe implements Subscriber.
func (c *Client) Subscribe(ctx context.Context, cfg ConsumerConfig, h Handler) (*Subscription, error) {
	return c.subscribe(ctx, cfg, h, nil)
}

func (c *Client) subscribe(ctx context.Context, cfg ConsumerConfig, h Handler, bh BatchHandler) (*Subscription, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cctx, cancel := withDefaultTimeout(ctx, c.opts.timeout)
	cons, err := c.js.CreateOrUpdateConsumer(cctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:        cfg.Durable,
		FilterSubjects: ExpandInbound(cfg.FilterSubjects),
		DeliverPolicy:  cfg.DeliverPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		// Unlimited on the server: the client dead-letters after cfg.MaxDeliver, so JetStream
		// never stops delivering a message silently.
		MaxDeliver:    -1,
		MaxAckPending: cfg.MaxAckPending,
	})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", cfg.Durable, cfg.Stream, err)
	}
	s := &Subscription{c: c, cfg: cfg, h: h, bh: bh, sem: make(chan struct{}, cfg.Concurrency),
		closing: make(chan struct{}), done: make(chan struct{}),
		pauseAttrs: c.tel.attrs(keyConsumerGroup.String(cfg.Durable))}
	s.hctx, s.hcancel = context.WithCancel(context.WithoutCancel(ctx))
	if bh != nil {
		s.queue = make(chan jetstream.Msg, cfg.PullMaxMessages)
		s.wg.Add(1)
		go s.batchLoop() //nolint:contextcheck // the loop's handlers run on s.hctx, the subscription's own context
	}
	s.cc, err = cons.Consume(s.onMsg,
		jetstream.PullMaxMessages(cfg.PullMaxMessages),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) || !s.stopping.Load() {
				c.opts.log.Warn("consumer error", "consumer", cfg.Durable, "stream", cfg.Stream, "err", err)
			}
		}))
	if err != nil {
		s.hcancel()
		return nil, fmt.Errorf("consume %s on %s: %w", cfg.Durable, cfg.Stream, err)
	}
	if err := s.consumeRedrives(ctx); err != nil {
		s.cc.Stop()
		s.hcancel()
		return nil, err
	}
	c.consumers.add(s)
	go func() {
		select {
		case <-ctx.Done():
			s.Drain()
		case <-s.done:
		}
	}()
	return s, nil
}

// Drain stops fetching, lets the handlers finish every message already buffered and in flight,
// then closes. It returns at once; wait on Closed.
func (s *Subscription) Drain() { s.finish() }

// Stop stops fetching; handlers in flight finish, buffered messages are nak'ed for prompt
// redelivery. It returns at once; wait on Closed.
func (s *Subscription) Stop() {
	s.stopping.Store(true)
	s.finish()
}

// Closed is closed once no handler runs and nothing more will be delivered.
func (s *Subscription) Closed() <-chan struct{} { return s.done }

// Shutdown drains and waits for Closed. If ctx ends first it cancels the handlers' context,
// naks what is left and waits for the handlers to return.
func (s *Subscription) Shutdown(ctx context.Context) error {
	s.Drain()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.stopping.Store(true)
		s.hcancel()
		<-s.done
		return ctx.Err()
	}
}

func (s *Subscription) finish() {
	s.once.Do(func() {
		close(s.closing)
		s.cc.Drain()
		if s.rcc != nil {
			s.rcc.Drain()
		}
		go func() {
			<-s.cc.Closed()
			if s.rcc != nil {
				<-s.rcc.Closed()
			}
			if s.queue != nil {
				close(s.queue) // the callback no longer runs: the batch loop drains and exits
			}
			s.wg.Wait()
			s.hcancel()
			s.c.consumers.remove(s)
			close(s.done)
		}()
	})
}

func (s *Subscription) onMsg(msg jetstream.Msg) {
	if s.stopping.Load() {
		_ = msg.Nak()
		return
	}
	if s.queue != nil { // batch mode: the batch loop takes it from here
		s.queue <- msg
		return
	}
	s.wg.Add(1)
	if s.cfg.Concurrency == 1 {
		defer s.wg.Done()
		s.process(msg)
		return
	}
	s.sem <- struct{}{}
	go func() {
		defer func() { <-s.sem; s.wg.Done() }()
		s.process(msg)
	}()
}

// inflight is one message between begin and settle.
type inflight struct {
	msg   jetstream.Msg
	meta  *jetstream.MsgMetadata
	d     Delivery
	ctx   context.Context
	span  trace.Span
	attrs metric.MeasurementOption
	// intrinsic marks a message every consumer refuses alike (undecodable, schema-invalid): it
	// is dead-lettered once, by the first consumer that meets it, not once per consumer.
	intrinsic bool
}

// begin decodes and validates msg and starts its consumer span. A non-nil error is permanent
// (undecodable or schema-invalid): settle dead-letters it.
func (s *Subscription) begin(msg jetstream.Msg) (*inflight, error) {
	c, cfg, tel := s.c, s.cfg, s.c.tel
	meta, err := msg.Metadata()
	if err != nil { // not a JetStream message: cannot happen on a pull consumer
		meta = &jetstream.MsgMetadata{}
	}
	e, decErr := event.Decode(msg.Headers(), msg.Data())

	// Parent: the per-hop context of the publish; link: the event's creation context.
	ctx := tracePropagator.Extract(s.hctx, headerCarrier(msg.Headers()))
	var links []trace.Link
	if decErr == nil {
		if sc := trace.SpanContextFromContext(ContextFromEvent(context.Background(), e)); sc.IsValid() {
			if !trace.SpanContextFromContext(ctx).IsValid() {
				ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
			} else {
				links = append(links, trace.Link{SpanContext: sc})
			}
		}
	}
	ctx, span := tel.tracer.Start(ctx, "process "+SubjectTemplate(msg.Subject()),
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(links...),
		trace.WithAttributes(attrSystem, keyDestination.String(msg.Subject()), keyOperationType.String("process"),
			keyOperationName.String("process"), keyConsumerGroup.String(cfg.Durable),
			keyDeliveryCount.Int64(int64(meta.NumDelivered)), keyMessageID.String(e.ID()),
			keyCEID.String(e.ID()), keyCEType.String(e.Type())))
	in := &inflight{msg: msg, meta: meta, ctx: ctx, span: span,
		attrs: tel.attrs(keyConsumerGroup.String(cfg.Durable), keyCEType.String(e.Type())),
		d: Delivery{Event: e, Subject: msg.Subject(), Stream: meta.Stream, Consumer: meta.Consumer,
			StreamSeq: meta.Sequence.Stream, NumDelivered: meta.NumDelivered, Published: meta.Timestamp,
			SpanContext: span.SpanContext()}}
	if meta.Stream == StreamRedrive { // a redriven dead letter: the handler sees where it came from
		in.d.Subject, in.d.Stream, in.d.StreamSeq = redriveOrigin(msg.Headers(), in.d)
		in.d.Consumer = cfg.Durable
	}
	tel.consumed.Add(ctx, 1, in.attrs)
	if meta.NumDelivered > 1 {
		tel.redelivered.Add(ctx, 1, in.attrs)
	}
	switch {
	case err != nil:
		return in, Permanent(fmt.Errorf("no JetStream metadata: %w", err))
	case decErr != nil:
		in.intrinsic = true
		return in, Permanent(fmt.Errorf("undecodable: %w", decErr))
	}
	// Not intrinsic: another consumer's keys may open what these do not (a key missing here).
	if !cfg.KeepSealed {
		if err := c.open(&in.d.Event); err != nil {
			return in, Permanent(err)
		}
		e = in.d.Event
	}
	if cfg.AlwaysValidate || msg.Headers().Get(HeaderSchema) != c.opts.schemas.Fingerprint() {
		if verr := c.validate(e); verr != nil {
			in.intrinsic = true
			return in, Permanent(fmt.Errorf("schema: %w", verr))
		}
	}
	return in, nil
}

func (s *Subscription) process(msg jetstream.Msg) {
	in, err := s.begin(msg)
	if err == nil {
		err = s.handleOne(in)
		if name, cause := s.downDependency(in.ctx, err); name != "" {
			msgs := []jetstream.Msg{msg}
			p := s.pauseFor(in.ctx, msgs, name, cause)
			for {
				if !p.wait() {
					err = closingErr(err)
					break
				}
				if err = s.handleOne(in); err == nil {
					break
				}
				if name, cause = s.downDependency(in.ctx, err); name == "" {
					break
				}
				p.still(name, cause)
			}
			p.end(err)
		}
	}
	s.settle(in, err)
}

// handleOne runs the handler on in, keeping the message in progress while it runs.
func (s *Subscription) handleOne(in *inflight) error {
	stop := s.keepAlive([]jetstream.Msg{in.msg})
	defer stop()
	start := time.Now()
	err := s.safeHandle(in.ctx, in.d)
	s.c.tel.handlerDur.Record(in.ctx, time.Since(start).Seconds(), in.attrs)
	return err
}

// settle acks, naks with backoff or dead-letters a message according to its handler's error.
func (s *Subscription) settle(in *inflight, herr error) {
	c, cfg, tel := s.c, s.cfg, s.c.tel
	msg, meta, ctx, span := in.msg, in.meta, in.ctx, in.span
	defer span.End()
	id := in.d.Event.ID()
	if herr == nil {
		if err := msg.Ack(); err != nil {
			c.opts.log.Warn("ack failed; message will be redelivered", "subject", msg.Subject(), "id", id, "err", err)
			return
		}
		tel.acked.Add(ctx, 1, in.attrs)
		return
	}
	span.RecordError(herr)
	span.SetStatus(codes.Error, herr.Error())
	var reason string
	switch {
	case isClosingUnavailable(herr): // back for redelivery; a dependency's outage never dead-letters
		_ = msg.NakWithDelay(pauseBackoff[0])
		return
	case IsPermanent(herr):
		reason = herr.Error()
	case meta.NumDelivered >= uint64(cfg.MaxDeliver):
		reason = fmt.Sprintf("max deliveries (%d) reached: %v", cfg.MaxDeliver, herr)
	default:
		delay, ok := RetryDelay(herr)
		if !ok {
			delay = backoff(cfg.Backoff, meta.NumDelivered)
		}
		c.opts.log.Debug("handler failed; retrying", "consumer", cfg.Durable, "subject", msg.Subject(),
			"id", id, "delivery", meta.NumDelivered, "delay", delay, "err", herr)
		_ = msg.NakWithDelay(delay)
		return
	}
	if err := c.deadLetter(ctx, cfg, in, reason); err != nil {
		c.opts.log.Error("dead-letter publish failed; message will be retried", "consumer", cfg.Durable,
			"subject", msg.Subject(), "id", id, "err", errors.Join(herr, err))
		_ = msg.NakWithDelay(backoff(cfg.Backoff, meta.NumDelivered))
		return
	}
	tel.deadLettered.Add(ctx, 1, in.attrs)
	c.opts.log.Warn("message dead-lettered", "consumer", cfg.Durable, "subject", msg.Subject(),
		"id", id, "deliveries", meta.NumDelivered, "reason", reason)
	_ = msg.Ack()
}

// BatchHandler processes a batch of deliveries, typically in one database transaction. It
// returns nil when every delivery's effect is durable, or a slice of len(batch) errors, one per
// delivery (nil for those that succeeded), read as for Handler.
type BatchHandler func(ctx context.Context, batch []Delivery) []error

// SubscribeBatch implements Subscriber: Subscribe for handlers that work in batches. Batches adapt to the load: the
// loop takes every message already buffered, up to maxBatch, and never waits to fill a batch,
// so a lone message is handled at once and a backlog is handled maxBatch at a time. Order within
// the consumer is kept (Concurrency is ignored).
func (c *Client) SubscribeBatch(ctx context.Context, cfg ConsumerConfig, maxBatch int, h BatchHandler) (*Subscription, error) {
	if maxBatch < 1 {
		return nil, fmt.Errorf("%w: maxBatch must be >= 1, got %d", ErrInvalidConsumer, maxBatch)
	}
	if cfg.PullMaxMessages == 0 {
		cfg.PullMaxMessages = max(256, 2*maxBatch)
	}
	if cfg.MaxAckPending == 0 {
		cfg.MaxAckPending = max(1024, 4*maxBatch)
	}
	cfg.maxBatch = maxBatch
	return c.subscribe(ctx, cfg, nil, h)
}

func (s *Subscription) batchLoop() {
	defer s.wg.Done()
	batch := make([]jetstream.Msg, 0, s.cfg.maxBatch)
	var linger *time.Timer
	if s.cfg.Linger > 0 {
		linger = time.NewTimer(s.cfg.Linger)
		linger.Stop()
		defer linger.Stop()
	}
	var last time.Time // when the previous batch started
	for msg := range s.queue {
		batch = append(batch[:0], msg)
		now := time.Now()
		waited := linger == nil || now.Sub(last) > 4*s.cfg.Linger
		last = now
	fill:
		for len(batch) < s.cfg.maxBatch {
			select {
			case m, ok := <-s.queue:
				if !ok {
					break fill
				}
				batch = append(batch, m)
				continue
			default:
			}
			if waited {
				break
			}
			// Nothing more buffered: wait once, up to Linger, for the batch to fill.
			waited = true
			linger.Reset(s.cfg.Linger)
		wait:
			for len(batch) < s.cfg.maxBatch {
				select {
				case m, ok := <-s.queue:
					if !ok {
						break fill
					}
					batch = append(batch, m)
				case <-linger.C:
					break wait
				}
			}
			linger.Stop()
		}
		if s.stopping.Load() {
			for _, m := range batch {
				_ = m.Nak()
			}
			continue
		}
		s.processBatch(batch)
	}
}

func (s *Subscription) processBatch(msgs []jetstream.Msg) {
	all := make([]*inflight, len(msgs))
	errs := make([]error, len(msgs))
	var valid []Delivery
	var idx []int
	for i, m := range msgs {
		all[i], errs[i] = s.begin(m)
		if errs[i] == nil {
			valid = append(valid, all[i].d)
			idx = append(idx, i)
		}
	}
	if len(valid) > 0 {
		s.handleBatch(all, idx, valid, errs)
		if name, cause := s.batchDependency(idx, errs); name != "" {
			// Hold the whole batch and run the handler again, on the deliveries that failed,
			// once the dependency is back; then settle every delivery as usual.
			p := s.pauseFor(s.hctx, msgs, name, cause)
			for {
				idx, valid = idx[:0], valid[:0]
				for i, err := range errs {
					if err != nil && !IsPermanent(err) {
						idx, valid = append(idx, i), append(valid, all[i].d)
					}
				}
				if !p.wait() {
					for _, i := range idx {
						errs[i] = closingErr(errs[i])
					}
					break
				}
				s.handleBatch(all, idx, valid, errs)
				if name, cause = s.batchDependency(idx, errs); name == "" {
					break
				}
				p.still(name, cause)
			}
			p.end(errs[idx[0]])
		}
	}
	for i := range msgs {
		s.settle(all[i], errs[i])
	}
}

// handleBatch runs the batch handler on valid (the deliveries of all at idx), keeping them in
// progress while it runs, and stores each delivery's result in errs.
func (s *Subscription) handleBatch(all []*inflight, idx []int, valid []Delivery, errs []error) {
	held := make([]jetstream.Msg, len(idx))
	for j, i := range idx {
		held[j] = all[i].msg
	}
	stop := s.keepAlive(held)
	defer stop()
	ctx := s.hctx
	if len(idx) == 1 {
		ctx = all[idx[0]].ctx
	} else {
		// One span for the batch's work, linked to every delivery's span: a batch applies many
		// events at once, so it belongs to no single event's trace (each delivery's
		// SpanContext is there for what its own outputs continue).
		links := make([]trace.Link, len(idx))
		for j, i := range idx {
			links[j] = trace.Link{SpanContext: all[i].span.SpanContext()}
		}
		var span trace.Span
		ctx, span = s.c.tel.tracer.Start(ctx, "process batch "+s.cfg.Durable, trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithLinks(links...), trace.WithAttributes(attrSystem, keyOperationType.String("process"),
				keyOperationName.String("process"), keyConsumerGroup.String(s.cfg.Durable),
				attribute.Int("messaging.batch.message_count", len(idx))))
		defer span.End()
	}
	start := time.Now()
	herrs := s.safeHandleBatch(ctx, valid)
	per := time.Since(start).Seconds() / float64(len(valid))
	for j, i := range idx {
		s.c.tel.handlerDur.Record(all[i].ctx, per, all[i].attrs)
		errs[i] = nil
		if herrs != nil {
			errs[i] = herrs[j]
		}
	}
}

// batchDependency reports the dependency that the failures among the handled deliveries show to
// be down, if any (see downDependency).
func (s *Subscription) batchDependency(idx []int, errs []error) (string, error) {
	for _, i := range idx {
		if name, cause := s.downDependency(s.hctx, errs[i]); name != "" {
			return name, cause
		}
		if errs[i] != nil && !IsPermanent(errs[i]) {
			return "", nil // the checks passed: the failures are the messages' own
		}
	}
	return "", nil
}

func (s *Subscription) safeHandleBatch(ctx context.Context, batch []Delivery) (errs []error) {
	defer func() {
		if r := recover(); r != nil {
			s.c.opts.log.Error("batch handler panic", "consumer", s.cfg.Durable, "panic", r, "stack", string(debug.Stack()))
			errs = make([]error, len(batch))
			for i := range errs {
				errs[i] = fmt.Errorf("handler panic: %v", r)
			}
		}
	}()
	errs = s.bh(ctx, batch)
	if errs != nil && len(errs) != len(batch) {
		err := fmt.Errorf("batch handler returned %d errors for %d deliveries", len(errs), len(batch))
		errs = make([]error, len(batch))
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

func (s *Subscription) safeHandle(ctx context.Context, d Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.c.opts.log.Error("handler panic", "consumer", s.cfg.Durable, "id", d.Event.ID(), "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return s.h(ctx, d)
}

// backoff returns the delay after the n-th failed delivery, with ±20% jitter.
func backoff(sched []time.Duration, n uint64) time.Duration {
	i := int(n) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sched) {
		i = len(sched) - 1
	}
	d := sched[i]
	j := time.Duration(float64(d) * 0.2 * (2*rand.Float64() - 1))
	return d + j
}

var _ Subscriber = (*Client)(nil)
