package resilience

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

const instrumentationName = "github.com/omnibus-dev/omnibus/pkg/resilience"

// instruments are a registry's metrics:
//
//	omnibus_vendor_calls_total{vendor,op,outcome,code}     one per call
//	omnibus_vendor_call_duration_seconds{vendor,op,outcome} call latency, retries included
//	omnibus_vendor_fallbacks_total{vendor,op,kind}          fallbacks served (stale_cache, manual)
//	omnibus_vendor_breaker_state{vendor,op}                 0 closed, 1 half-open, 2 open
type instruments struct {
	tracer    trace.Tracer
	calls     metric.Int64Counter
	duration  metric.Float64Histogram
	fallbacks metric.Int64Counter
	attrCache sync.Map // string → metric.MeasurementOption
}

type routeAttrs struct {
	vendor, op attribute.KeyValue
	gauge      metric.ObserveOption
}

func newRouteAttrs(vendor, op string) routeAttrs {
	v, o := attribute.String("vendor", vendor), attribute.String("op", op)
	return routeAttrs{vendor: v, op: o, gauge: metric.WithAttributeSet(attribute.NewSet(v, o))}
}

func newInstruments(r *Registry) (*instruments, error) {
	m := r.o.MeterProvider.Meter(instrumentationName)
	in := &instruments{tracer: r.o.TracerProvider.Tracer(instrumentationName)}
	var err error
	if in.calls, err = m.Int64Counter("omnibus.vendor.calls", metric.WithUnit("{call}"),
		metric.WithDescription("Third-party calls by vendor, operation, outcome and last vendor code (or HTTP status).")); err != nil {
		return nil, err
	}
	if in.duration, err = m.Float64Histogram("omnibus.vendor.call.duration", metric.WithUnit("s"),
		metric.WithDescription("Third-party call latency, retries and waits included."),
		metric.WithExplicitBucketBoundaries(.005, .01, .025, .05, .1, .2, .3, .5, .75, 1, 2, 5, 10)); err != nil {
		return nil, err
	}
	if in.fallbacks, err = m.Int64Counter("omnibus.vendor.fallbacks", metric.WithUnit("{call}"),
		metric.WithDescription("Failed third-party calls for which a fallback was served, by kind (stale_cache, manual).")); err != nil {
		return nil, err
	}
	gauge, err := m.Int64ObservableGauge("omnibus.vendor.breaker.state",
		metric.WithDescription("Circuit breaker state per route: 0 closed, 1 half-open, 2 open."))
	if err != nil {
		return nil, err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, rt := range r.routes {
			var v int64
			switch rt.BreakerState() {
			case "half-open":
				v = 1
			case "open":
				v = 2
			}
			o.ObserveInt64(gauge, v, rt.attrs.gauge)
		}
		return nil
	}, gauge)
	if err != nil {
		return nil, err
	}
	return in, nil
}

// opt returns the measurement option for an attribute set, built once per distinct set.
func (in *instruments) opt(key string, kvs ...attribute.KeyValue) metric.MeasurementOption {
	if v, ok := in.attrCache.Load(key); ok {
		return v.(metric.MeasurementOption)
	}
	o := metric.WithAttributeSet(attribute.NewSet(kvs...))
	in.attrCache.Store(key, o)
	return o
}

func (in *instruments) record(ctx context.Context, rt *Route, outcome, code string, d time.Duration, fallback string) {
	base := rt.vendor + "\x00" + rt.op + "\x00" + outcome
	in.calls.Add(ctx, 1, in.opt("c\x00"+base+"\x00"+code, rt.attrs.vendor, rt.attrs.op,
		attribute.String("outcome", outcome), attribute.String("code", code)))
	in.duration.Record(ctx, d.Seconds(), in.opt("d\x00"+base, rt.attrs.vendor, rt.attrs.op, attribute.String("outcome", outcome)))
	if fallback != "" {
		in.fallbacks.Add(ctx, 1, in.opt("f\x00"+rt.vendor+"\x00"+rt.op+"\x00"+fallback, rt.attrs.vendor, rt.attrs.op,
			attribute.String("kind", fallback)))
	}
}
