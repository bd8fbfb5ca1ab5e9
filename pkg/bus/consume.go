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
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
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
}

// Handler processes one delivery. Return nil once the effect is durable (the message is then
// acked); an error to retry with backoff; resilience.Permanent(err) to dead-letter now;
// resilience.RetryAfter(err, d) to retry after d. Handlers must be idempotent, keyed by event id:
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
	// FilterSubjects limits the consumer to these subjects (wildcards allowed). Default: all.
	FilterSubjects []string
	// DeliverPolicy for a new consumer. Default jetstream.DeliverAllPolicy.
	DeliverPolicy jetstream.DeliverPolicy
	// MaxDeliver is how many deliveries a message gets before it is dead-lettered. Default 5.
	MaxDeliver int
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
		return fmt.Errorf("%w: Stream is required (one of %s, %s, %s, %s, %s)", ErrInvalidConsumer, StreamIn, StreamOut, StreamTool, StreamDesk, StreamAudit)
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
	return nil
}

// Subscriber runs handlers on durable consumers.
type Subscriber interface {
	// Subscribe creates or updates the durable consumer and starts delivering to h until ctx is
	// cancelled (then it drains) or the returned Subscription is stopped. Errors wrap
	// ErrInvalidConsumer or the JetStream error.
	Subscribe(ctx context.Context, cfg ConsumerConfig, h Handler) (*Subscription, error)
}

// Subscription is a running consumer: a handle with Stop, Drain and Closed, like
// jetstream.ConsumeContext.
type Subscription struct {
	c        *Client
	cfg      ConsumerConfig
	h        Handler
	cc       jetstream.ConsumeContext
	sem      chan struct{}
	wg       sync.WaitGroup
	stopping atomic.Bool
	hctx     context.Context
	hcancel  context.CancelFunc
	once     sync.Once
	done     chan struct{}
}

// Subscribe implements Subscriber.
func (c *Client) Subscribe(ctx context.Context, cfg ConsumerConfig, h Handler) (*Subscription, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cctx, cancel := withDefaultTimeout(ctx, c.opts.timeout)
	cons, err := c.js.CreateOrUpdateConsumer(cctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:        cfg.Durable,
		FilterSubjects: cfg.FilterSubjects,
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
	s := &Subscription{c: c, cfg: cfg, h: h, sem: make(chan struct{}, cfg.Concurrency), done: make(chan struct{})}
	s.hctx, s.hcancel = context.WithCancel(context.WithoutCancel(ctx))
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
		s.cc.Drain()
		go func() {
			<-s.cc.Closed()
			s.wg.Wait()
			s.hcancel()
			close(s.done)
		}()
	})
}

func (s *Subscription) onMsg(msg jetstream.Msg) {
	if s.stopping.Load() {
		_ = msg.Nak()
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

func (s *Subscription) process(msg jetstream.Msg) {
	c, cfg, tel := s.c, s.cfg, s.c.tel
	meta, err := msg.Metadata()
	if err != nil { // not a JetStream message: cannot happen on a pull consumer
		c.opts.log.Error("message without JetStream metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	start := time.Now()
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
	ctx, span := tel.tracer.Start(ctx, "process "+msg.Subject(),
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(links...),
		trace.WithAttributes(attrSystem, keyDestination.String(msg.Subject()), keyOperationType.String("process"),
			keyOperationName.String("process"), keyConsumerGroup.String(cfg.Durable),
			keyDeliveryCount.Int64(int64(meta.NumDelivered)), keyMessageID.String(e.ID()),
			keyCEID.String(e.ID()), keyCEType.String(e.Type())))
	defer span.End()

	mattrs := metric.WithAttributes(keyConsumerGroup.String(cfg.Durable), keyCEType.String(e.Type()))
	tel.consumed.Add(ctx, 1, mattrs)
	if meta.NumDelivered > 1 {
		tel.redelivered.Add(ctx, 1, mattrs)
	}

	var herr error
	switch {
	case decErr != nil:
		herr = resilience.Permanent(fmt.Errorf("undecodable: %w", decErr))
	default:
		if verr := c.validate(e); verr != nil {
			herr = resilience.Permanent(fmt.Errorf("schema: %w", verr))
			break
		}
		herr = s.safeHandle(ctx, Delivery{
			Event: e, Subject: msg.Subject(), Stream: meta.Stream, Consumer: meta.Consumer,
			StreamSeq: meta.Sequence.Stream, NumDelivered: meta.NumDelivered, Published: meta.Timestamp,
		})
		tel.handlerDur.Record(ctx, time.Since(start).Seconds(), mattrs)
	}
	if herr == nil {
		if err := msg.Ack(); err != nil {
			c.opts.log.Warn("ack failed; message will be redelivered", "subject", msg.Subject(), "id", e.ID(), "err", err)
			return
		}
		tel.acked.Add(ctx, 1, mattrs)
		return
	}
	span.RecordError(herr)
	span.SetStatus(codes.Error, herr.Error())
	var reason string
	switch {
	case resilience.IsPermanent(herr):
		reason = herr.Error()
	case meta.NumDelivered >= uint64(cfg.MaxDeliver):
		reason = fmt.Sprintf("max deliveries (%d) reached: %v", cfg.MaxDeliver, herr)
	default:
		delay, ok := resilience.RetryDelay(herr)
		if !ok {
			delay = backoff(cfg.Backoff, meta.NumDelivered)
		}
		c.opts.log.Debug("handler failed; retrying", "consumer", cfg.Durable, "subject", msg.Subject(),
			"id", e.ID(), "delivery", meta.NumDelivered, "delay", delay, "err", herr)
		_ = msg.NakWithDelay(delay)
		return
	}
	if err := c.deadLetter(ctx, cfg, msg, meta, reason); err != nil {
		c.opts.log.Error("dead-letter publish failed; message will be retried", "consumer", cfg.Durable,
			"subject", msg.Subject(), "id", e.ID(), "err", errors.Join(herr, err))
		_ = msg.NakWithDelay(backoff(cfg.Backoff, meta.NumDelivered))
		return
	}
	tel.deadLettered.Add(ctx, 1, mattrs)
	c.opts.log.Warn("message dead-lettered", "consumer", cfg.Durable, "subject", msg.Subject(),
		"id", e.ID(), "deliveries", meta.NumDelivered, "reason", reason)
	_ = msg.Ack()
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
