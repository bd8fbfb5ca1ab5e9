// Package telemetry sets up OpenTelemetry for an omnibus process: a meter provider exported in
// Prometheus format on /metrics, a tracer provider whose trace ids reach the logs, the W3C
// propagator, and the slog logger (text or JSON) that stamps trace_id/span_id on every record
// logged with a context.
//
// Spans and metrics leave the process per the standard OTEL_* variables (export.go): with
// OTEL_EXPORTER_OTLP_ENDPOINT (or the per-signal OTEL_EXPORTER_OTLP_TRACES_ENDPOINT /
// _METRICS_ENDPOINT) set, traces are batched to an OTLP/HTTP receiver and metrics pushed to it
// every OTEL_METRIC_EXPORT_INTERVAL, besides /metrics. HTTPHandler traces and measures an HTTP
// server by route (otelhttp).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry is a process's providers and its Prometheus registry.
type Telemetry struct {
	Tracer   *sdktrace.TracerProvider
	Meter    *sdkmetric.MeterProvider
	Registry *prometheus.Registry
	// Exports says where spans and metrics go besides /metrics ("" when nowhere), for the
	// start-up log.
	Exports string
}

// Option configures Setup.
type Option func(*options)

type options struct {
	lookup func(string) (string, bool)
	log    *slog.Logger
}

// WithLogger is where OpenTelemetry's own errors go (an OTLP collector that cannot be reached,
// a dropped batch): logged as warnings, at most one a minute with the count of those left out
// since, instead of the standard logger's line every few seconds. Default slog.Default().
func WithLogger(log *slog.Logger) Option {
	return func(o *options) { o.log = log }
}

// WithLookup reads the OTEL_* variables through lookup instead of the process environment (the
// all-in-one's configuration, a test's).
func WithLookup(lookup func(string) (string, bool)) Option {
	return func(o *options) { o.lookup = lookup }
}

// Setup creates the providers for serviceName and installs them as the OTel globals. Metrics
// are always served on MetricsHandler; spans and metrics are also exported over OTLP/HTTP when
// the OTEL_* variables say so (see exportConfig). OTEL_SERVICE_NAME, when set, names the service
// instead, and OTEL_RESOURCE_ATTRIBUTES adds resource attributes.
func Setup(ctx context.Context, serviceName string, opts ...Option) (*Telemetry, error) {
	o := options{lookup: os.LookupEnv}
	for _, opt := range opts {
		opt(&o)
	}
	ec, err := exportConfig(o.lookup)
	if err != nil {
		return nil, err
	}
	if ec.serviceName != "" {
		serviceName = ec.serviceName
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	res := resource.NewSchemaless(append(ec.resource, attribute.String("service.name", serviceName))...)
	mopts := []sdkmetric.Option{sdkmetric.WithReader(exp), sdkmetric.WithResource(res)}
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if ec.traces != nil {
		te, err := otlptracehttp.New(ctx, ec.traces...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
		}
		topts = append(topts, sdktrace.WithBatcher(te))
	}
	if ec.metrics != nil {
		me, err := otlpmetrichttp.New(ctx, ec.metrics...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP metric exporter: %w", err)
		}
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(me, sdkmetric.WithInterval(ec.metricInterval))))
	}
	t := &Telemetry{
		Registry: reg,
		Meter:    sdkmetric.NewMeterProvider(mopts...),
		Tracer:   sdktrace.NewTracerProvider(topts...),
		Exports:  ec.describe(),
	}
	otel.SetMeterProvider(t.Meter)
	otel.SetTracerProvider(t.Tracer)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	log := o.log
	if log == nil {
		log = slog.Default()
	}
	otel.SetErrorHandler(newErrorLog(log, time.Minute))
	return t, nil
}

// errorLog logs OpenTelemetry's errors as warnings, at most one per interval; the next one
// says how many were left out.
type errorLog struct {
	log      *slog.Logger
	interval time.Duration
	mu       sync.Mutex
	last     time.Time
	dropped  int
}

func newErrorLog(log *slog.Logger, interval time.Duration) *errorLog {
	return &errorLog{log: log.With("component", "opentelemetry"), interval: interval}
}

// Handle implements otel.ErrorHandler.
func (l *errorLog) Handle(err error) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.dropped++
		l.mu.Unlock()
		return
	}
	dropped := l.dropped
	l.last, l.dropped = now, 0
	l.mu.Unlock()
	if dropped > 0 {
		l.log.Warn("telemetry export failing", "err", err, "similar_errors_not_logged", dropped, "over", l.interval.String())
		return
	}
	l.log.Warn("telemetry export failing", "err", err)
}

// MetricsHandler serves the Prometheus exposition of every metric.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{})
}

// HTTPHandler traces and measures h, an HTTP server's handler (otelhttp): a server span per
// request, continuing the caller's trace (traceparent), and http.server.request.duration by
// method, route (the ServeMux pattern) and status. Probes, /metrics and event streams (a
// browser's EventSource asks for text/event-stream and holds the request for hours) are left
// out.
func (t *Telemetry) HTTPHandler(h http.Handler, server string) http.Handler {
	return otelhttp.NewHandler(h, server,
		otelhttp.WithTracerProvider(t.Tracer), otelhttp.WithMeterProvider(t.Meter),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return !strings.Contains(r.Header.Get("Accept"), "text/event-stream")
		}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method
		}))
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	return errors.Join(t.Tracer.Shutdown(ctx), t.Meter.Shutdown(ctx))
}

// NewLogger returns a slog logger writing to w. format is "text" or "json"; level is debug, info,
// warn or error (default info).
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	if strings.EqualFold(format, "json") {
		// Durations as Go writes them (1.5s, 300ms), as the text format does, not as a count of
		// nanoseconds that log pipelines read as a bare number.
		jopts := *opts
		jopts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		}
		h = slog.NewJSONHandler(w, &jopts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(traceHandler{h})
}

// traceHandler adds trace_id and span_id of the record's context.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}
func (h traceHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(a)}
}
func (h traceHandler) WithGroup(n string) slog.Handler { return traceHandler{h.Handler.WithGroup(n)} }
