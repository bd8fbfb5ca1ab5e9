package bus

import (
	"context"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnibus-dev/omnibus/pkg/event"
)

const instrumentationName = "github.com/omnibus-dev/omnibus/pkg/bus"

// Span and metric attribute keys (OpenTelemetry messaging semantic conventions).
var (
	attrSystem       = attribute.String("messaging.system", "nats")
	keyDestination   = attribute.Key("messaging.destination.name")
	keyOperationType = attribute.Key("messaging.operation.type")
	keyOperationName = attribute.Key("messaging.operation.name")
	keyMessageID     = attribute.Key("messaging.message.id")
	keyConsumerGroup = attribute.Key("messaging.consumer.group.name")
	keyDeliveryCount = attribute.Key("messaging.nats.message.delivery_count")
	keyCEType        = attribute.Key("cloudevents.event_type")
	keyCEID          = attribute.Key("cloudevents.event_id")
	keyCESource      = attribute.Key("cloudevents.event_source")
	keyOutcome       = attribute.Key("omnibus.outcome")
	tracePropagator  = propagation.TraceContext{}
)

type instruments struct {
	attrCache    sync.Map // attribute values joined → metric.MeasurementOption
	tracer       trace.Tracer
	published    metric.Int64Counter
	publishDur   metric.Float64Histogram
	consumed     metric.Int64Counter
	acked        metric.Int64Counter
	redelivered  metric.Int64Counter
	deadLettered metric.Int64Counter
	paused       metric.Int64UpDownCounter
	handlerDur   metric.Float64Histogram
}

func newInstruments(tp trace.TracerProvider, mp metric.MeterProvider) (*instruments, error) {
	m := mp.Meter(instrumentationName)
	in := &instruments{tracer: tp.Tracer(instrumentationName)}
	var err error
	mk := func(name, desc string) metric.Int64Counter {
		if err != nil {
			return nil
		}
		var c metric.Int64Counter
		c, err = m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("{message}"))
		return c
	}
	in.published = mk("omnibus.bus.published", "Events published and acknowledged by JetStream.")
	in.consumed = mk("omnibus.bus.consumed", "Messages delivered to a consumer.")
	in.acked = mk("omnibus.bus.acked", "Messages acked after their handler succeeded.")
	in.redelivered = mk("omnibus.bus.redelivered", "Messages nak'ed for redelivery after a transient error.")
	in.deadLettered = mk("omnibus.bus.deadlettered", "Messages moved to OMNI_DLQ.")
	if err != nil {
		return nil, err
	}
	if in.paused, err = m.Int64UpDownCounter("omnibus.bus.consumer.paused", metric.WithUnit("{handler}"),
		metric.WithDescription("Handlers holding messages until a dependency serves again (see ConsumerConfig.Dependencies).")); err != nil {
		return nil, err
	}
	buckets := metric.WithExplicitBucketBoundaries(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)
	if in.publishDur, err = m.Float64Histogram("omnibus.bus.publish.duration", metric.WithUnit("s"),
		metric.WithDescription("Publish latency until the JetStream ack."), buckets); err != nil {
		return nil, err
	}
	if in.handlerDur, err = m.Float64Histogram("omnibus.bus.handler.duration", metric.WithUnit("s"),
		metric.WithDescription("Handler latency per message."), buckets); err != nil {
		return nil, err
	}
	return in, nil
}

// attrs returns the measurement option for these attributes, built once per distinct set (the
// sets are few: subjects × types × outcomes) instead of on every message.
func (in *instruments) attrs(kvs ...attribute.KeyValue) metric.MeasurementOption {
	var b strings.Builder
	for _, kv := range kvs {
		b.WriteString(kv.Value.AsString())
		b.WriteByte(0)
	}
	key := b.String()
	if v, ok := in.attrCache.Load(key); ok {
		return v.(metric.MeasurementOption)
	}
	opt := metric.WithAttributeSet(attribute.NewSet(kvs...))
	in.attrCache.Store(key, opt)
	return opt
}

// headerCarrier adapts nats.Header to the OTel propagator with lower-case keys, read
// case-insensitively.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string {
	if vs := c[key]; len(vs) > 0 {
		return vs[0]
	}
	for k, vs := range c {
		if len(vs) > 0 && strings.EqualFold(k, key) {
			return vs[0]
		}
	}
	return ""
}
func (c headerCarrier) Set(key, value string) { c[strings.ToLower(key)] = []string{value} }
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// eventCarrier reads and writes the CloudEvents distributed-tracing extension.
type eventCarrier struct{ e *event.Event }

func (c eventCarrier) Get(key string) string { return event.Ext(*c.e, key) }
func (c eventCarrier) Set(key, value string) {
	if key == event.ExtTraceParent || key == event.ExtTraceState {
		c.e.SetExtension(key, value)
	}
}
func (c eventCarrier) Keys() []string { return []string{event.ExtTraceParent, event.ExtTraceState} }

// ContextFromEvent returns ctx carrying the trace context recorded in e's traceparent extension
// (the context in which e was created), as a remote parent.
func ContextFromEvent(ctx context.Context, e event.Event) context.Context {
	return tracePropagator.Extract(ctx, eventCarrier{&e})
}
