package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

// Sink receives the audit entries of calls. Emit must not block.
type Sink interface {
	Emit(ctx context.Context, e Entry)
}

// Discard is a Sink that keeps nothing (tests and tools that make no third-party calls).
var Discard Sink = discard{}

type discard struct{}

func (discard) Emit(context.Context, Entry) {}

// Options configure a Publisher. Zero fields take the defaults shown.
type Options struct {
	// Service is the calling service (^[a-z][a-z0-9_]*$); records go to omni.audit.<Service>.
	// Required.
	Service string
	// Source is the events' CloudEvents source. Default "/connectors/<Service>".
	Source string
	// Buffer is how many records may wait for the bus. Default 4096.
	Buffer int
	// Workers publishing concurrently. Default 2.
	Workers int
	// PublishTimeout bounds one publish attempt. Default 5s.
	PublishTimeout time.Duration
	// Masker masks bodies. Default NewMasker(nil, DefaultMaxBody).
	Masker *Masker
	// Log receives spilled records. Default slog.Default().
	Log *slog.Logger
	// MeterProvider for omnibus_audit_records_total. Default otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
}

// ErrInvalidOptions is wrapped by NewPublisher for bad options.
var ErrInvalidOptions = errors.New("audit: invalid options")

// Publisher is the Sink that publishes records on the bus (see the package documentation for
// its delivery rules).
type Publisher struct {
	pub     bus.Publisher
	o       Options
	subject string
	ch      chan Entry
	mu      sync.RWMutex
	closed  bool
	wg      sync.WaitGroup
	stop    context.Context
	cancel  context.CancelFunc
	count   metric.Int64Counter
	results map[string]metric.MeasurementOption
}

// NewPublisher starts a Publisher's workers; Close stops them.
func NewPublisher(pub bus.Publisher, o Options) (*Publisher, error) {
	if pub == nil {
		return nil, fmt.Errorf("%w: a bus publisher is required", ErrInvalidOptions)
	}
	if !ValidName(o.Service) {
		return nil, fmt.Errorf("%w: Service %q must match ^[a-z][a-z0-9_]*$ (it is the last token of omni.audit.<service>)", ErrInvalidOptions, o.Service)
	}
	if o.Source == "" {
		o.Source = "/connectors/" + o.Service
	}
	if o.Buffer <= 0 {
		o.Buffer = 4096
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 5 * time.Second
	}
	if o.Masker == nil {
		o.Masker = NewMasker(nil, DefaultMaxBody)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = otel.GetMeterProvider()
	}
	p := &Publisher{pub: pub, o: o, subject: Subject(o.Service), ch: make(chan Entry, o.Buffer), results: map[string]metric.MeasurementOption{}}
	var err error
	p.count, err = o.MeterProvider.Meter("github.com/omnibus-dev/omnibus/pkg/audit").Int64Counter("omnibus.audit.records",
		metric.WithDescription("Audit records by result: published on the bus, or spilled to the log (buffer full, bus down, or after close)."),
		metric.WithUnit("{record}"))
	if err != nil {
		return nil, err
	}
	for _, r := range []string{"published", "spilled"} {
		p.results[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("service", o.Service), attribute.String("result", r)))
	}
	p.stop, p.cancel = context.WithCancel(context.Background())
	for range o.Workers {
		p.wg.Add(1)
		go p.work()
	}
	return p, nil
}

// Emit queues e for publishing, or spills it to the log when the buffer is full or the publisher
// is closed. It never blocks on the bus.
func (p *Publisher) Emit(ctx context.Context, e Entry) {
	p.mu.RLock()
	if !p.closed {
		select {
		case p.ch <- e:
			p.mu.RUnlock()
			return
		default:
		}
	}
	p.mu.RUnlock()
	p.spill(ctx, p.o.Masker.Mask(e), errors.New("audit buffer full or publisher closed"))
}

// Close stops accepting records and waits until the buffered ones are published or ctx ends;
// whatever is left then is spilled to the log.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.ch)
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		p.cancel()
		return nil
	case <-ctx.Done():
		p.cancel() // workers spill the rest instead of publishing
		<-done
		return ctx.Err()
	}
}

func (p *Publisher) work() {
	defer p.wg.Done()
	for e := range p.ch {
		rec := p.o.Masker.Mask(e)
		if p.stop.Err() != nil {
			p.spill(context.Background(), rec, p.stop.Err())
			continue
		}
		if err := p.publish(e.SpanContext, rec); err != nil {
			p.spill(context.Background(), rec, err)
			continue
		}
		p.count.Add(context.Background(), 1, p.results["published"])
	}
}

// publish sends one record, retrying twice on a bus error.
func (p *Publisher) publish(sc trace.SpanContext, rec Record) error {
	opts := []event.Option{event.WithTime(rec.At)}
	if rec.CustomerID != "" {
		opts = append(opts, event.WithSubject(rec.CustomerID))
	}
	if rec.CorrelationID != "" {
		opts = append(opts, event.WithCorrelationID(rec.CorrelationID))
	}
	ev, err := event.New(TypeCallRecorded, p.o.Source, rec, opts...)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	var errs []error
	for attempt, wait := range []time.Duration{0, 100 * time.Millisecond, 500 * time.Millisecond} {
		if attempt > 0 {
			select {
			case <-time.After(wait):
			case <-p.stop.Done():
				return errors.Join(append(errs, p.stop.Err())...)
			}
		}
		pctx, cancel := context.WithTimeout(ctx, p.o.PublishTimeout)
		err = p.pub.Publish(pctx, p.subject, ev)
		cancel()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (p *Publisher) spill(ctx context.Context, rec Record, why error) {
	b, _ := json.Marshal(rec)
	p.o.Log.WarnContext(ctx, "audit record spilled", "subject", p.subject, "reason", why.Error(), "audit_record", string(b))
	p.count.Add(ctx, 1, p.results["spilled"])
}

// Memory is a Sink that keeps masked records in memory (tests, and tools without a bus).
type Memory struct {
	Masker *Masker // default NewMasker(nil, DefaultMaxBody)
	mu     sync.Mutex
	recs   []Record
}

// Emit implements Sink.
func (m *Memory) Emit(_ context.Context, e Entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Masker == nil {
		m.Masker = NewMasker(nil, DefaultMaxBody)
	}
	m.recs = append(m.recs, m.Masker.Mask(e))
}

// Records returns a copy of the records so far.
func (m *Memory) Records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Record(nil), m.recs...)
}
