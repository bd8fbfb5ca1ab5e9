package resilience

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/failsafe-go/failsafe-go/timeout"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnibus-dev/omnibus/pkg/alert"
	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/config"
)

// AlertRecorder receives every call's outcome; *alert.Monitor is one.
type AlertRecorder interface {
	Record(vendor, op, outcome string)
}

// Options configure a Registry. Zero fields take the defaults shown.
type Options struct {
	// Service is the calling service (^[a-z][a-z0-9_]*$): audit records go to
	// omni.audit.<Service> and alerts name it. Required.
	Service string
	// Bus, when set, carries the audit records (an audit.Publisher) and the alerts (an
	// alert.Monitor) that New creates; Close flushes them.
	Bus bus.Publisher
	// Audit overrides the audit sink made from Bus (tests use an *audit.Memory). With neither,
	// records are discarded.
	Audit audit.Sink
	// AuditOptions tune the publisher made from Bus (Service is filled in).
	AuditOptions audit.Options
	// Alerts overrides the monitor made from Bus. With neither, no alerts are raised.
	Alerts AlertRecorder
	// AlertOptions tune the monitor made from Bus (Service is filled in).
	AlertOptions alert.Options
	// Env is where RESILIENCE_<VENDOR>_<OP>_* overrides are read. Default os.LookupEnv.
	Env config.Lookup
	// Log. Default slog.Default().
	Log *slog.Logger
	// TracerProvider and MeterProvider. Default the OTel globals.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// HTTPClient is the client of Route.HTTP unless a RouteSpec has its own. Default: a client
	// whose transport keeps 64 idle connections per host; no client timeout (the pipeline's
	// contexts bound every request).
	HTTPClient *http.Client
}

// Registry holds a service's routes and what they share: settings source, telemetry, audit sink
// and alert monitor. Build one per service with New, then one Route per vendor operation.
type Registry struct {
	o       Options
	tel     *instruments
	audit   audit.Sink
	alerts  AlertRecorder
	closers []func(ctx context.Context) error
	mu      sync.Mutex
	routes  map[string]*Route
}

// New builds a registry.
func New(o Options) (*Registry, error) {
	if !audit.ValidName(o.Service) {
		return nil, fmt.Errorf("%w: Service %q must match ^[a-z][a-z0-9_]*$", ErrInvalidRoute, o.Service)
	}
	if o.Env == nil {
		o.Env = os.LookupEnv
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.TracerProvider == nil {
		o.TracerProvider = otel.GetTracerProvider()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = otel.GetMeterProvider()
	}
	if o.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		o.HTTPClient = &http.Client{Transport: tr}
	}
	r := &Registry{o: o, routes: map[string]*Route{}, audit: o.Audit, alerts: o.Alerts}
	if r.audit == nil && o.Bus != nil {
		ao := o.AuditOptions
		ao.Service, ao.MeterProvider = o.Service, o.MeterProvider
		if ao.Log == nil {
			ao.Log = o.Log
		}
		p, err := audit.NewPublisher(o.Bus, ao)
		if err != nil {
			return nil, err
		}
		r.audit = p
		r.closers = append(r.closers, p.Close)
	}
	if r.audit == nil {
		r.audit = audit.Discard
	}
	if r.alerts == nil && o.Bus != nil {
		mo := o.AlertOptions
		mo.Service = o.Service
		if mo.Log == nil {
			mo.Log = o.Log
		}
		m, err := alert.NewMonitor(o.Bus, mo)
		if err != nil {
			r.close(context.Background())
			return nil, err
		}
		r.alerts = m
		r.closers = append(r.closers, func(context.Context) error { m.Close(); return nil })
	}
	tel, err := newInstruments(r)
	if err != nil {
		r.close(context.Background())
		return nil, err
	}
	r.tel = tel
	return r, nil
}

// Close flushes the audit records and alerts that New started (waiting at most until ctx ends;
// records still buffered then go to the log). Calls made after Close still work; their records
// are logged.
func (r *Registry) Close(ctx context.Context) error { return r.close(ctx) }

func (r *Registry) close(ctx context.Context) error {
	var errs []error
	for _, c := range r.closers {
		errs = append(errs, c(ctx))
	}
	r.closers = nil
	return errors.Join(errs...)
}

// ErrInvalidRoute is wrapped by New and Registry.Route for a bad spec or setting.
var ErrInvalidRoute = errors.New("resilience: invalid route")

// RouteSpec declares one vendor operation. Only Vendor and Op are required.
type RouteSpec struct {
	// Vendor and Op name the route (^[a-z][a-z0-9_]*$), e.g. sfexpress / route_query. They label
	// metrics, spans and audit records, and name the override variables RESILIENCE_<VENDOR>_<OP>_*.
	Vendor, Op string
	// Idempotent declares that sending the request twice has the effect of sending it once
	// (queries, puts keyed by an id the vendor dedupes). Only idempotent calls are retried after
	// a request may have reached the vendor; a non-idempotent call is retried only when it
	// provably never left (dial or DNS failure).
	Idempotent bool
	// Settings are the vendor's figures (timeouts, quota, ...); zero fields take DefaultSettings.
	Settings Settings
	// Codes maps the vendor's result codes to classes. A code not in Codes on a 2xx answer is
	// UnknownCode; with no code, the HTTP status decides (StatusClass).
	Codes Codes
	// UnknownCode is the class of an unmapped code on a 2xx answer. Default ClassPermanent.
	UnknownCode Class
	// Classify, if set, replaces Codes and StatusClass entirely.
	Classify func(status int, code string) Class
	// CodeOf extracts the vendor's result code from an HTTP answer for Route.HTTP, e.g.
	// JSONCode("errcode"). Default: no code.
	CodeOf func(status int, header http.Header, body []byte) string
	// Fallback returns the manual path offered when a call fails (nil: none), e.g. the carrier's
	// tracking page for call.Key. A Call's own Fallback takes precedence.
	Fallback func(call Call, err error) *Fallback
	// HTTPClient overrides the registry's client for Route.HTTP.
	HTTPClient *http.Client
}

// Route is one vendor operation's pipeline. It is safe for concurrent use; build it once.
type Route struct {
	reg         *Registry
	spec        RouteSpec
	vendor, op  string
	settings    Settings
	unknownCode Class
	breaker     circuitbreaker.CircuitBreaker[any]
	limiter     ratelimiter.RateLimiter[any] // nil without RateLimit; Do takes its permits itself
	inner       []failsafe.Policy[any]       // bulkhead, breaker, timeout: outer to inner
	client      *http.Client
	attrs       routeAttrs
}

// Route builds the pipeline of spec, with its settings overridden from the environment. Building
// the same vendor/op twice is an error.
func (r *Registry) Route(spec RouteSpec) (*Route, error) {
	if !audit.ValidName(spec.Vendor) || !audit.ValidName(spec.Op) {
		return nil, fmt.Errorf("%w: Vendor %q and Op %q must match ^[a-z][a-z0-9_]*$", ErrInvalidRoute, spec.Vendor, spec.Op)
	}
	s, err := spec.Settings.withDefaults().load(spec.Vendor, spec.Op, r.o.Env)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRoute, err)
	}
	rt := &Route{reg: r, spec: spec, vendor: spec.Vendor, op: spec.Op, settings: s, unknownCode: spec.UnknownCode, client: spec.HTTPClient}
	if rt.unknownCode == 0 {
		rt.unknownCode = ClassPermanent
	}
	if rt.client == nil {
		rt.client = r.o.HTTPClient
	}
	rt.breaker = circuitbreaker.NewBuilder[any]().
		HandleIf(func(_ any, err error) bool { return countsForBreaker(err) }).
		WithFailureRateThreshold(s.BreakerRatio, uint(s.BreakerMinCalls), s.BreakerWindow).
		WithDelay(s.BreakerOpenFor).
		WithSuccessThreshold(uint(s.BreakerProbes)).
		OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
			r.o.Log.Warn("circuit breaker "+e.NewState.String(), "vendor", rt.vendor, "op", rt.op, "from", e.OldState.String())
		}).
		Build()
	if s.RateLimit > 0 {
		every := time.Duration(float64(time.Second) / s.RateLimit)
		rt.limiter = ratelimiter.NewSmoothBuilderWithMaxRate[any](max(every, time.Nanosecond)).WithMaxWaitTime(s.MaxWait).Build()
	}
	rt.inner = append(rt.inner,
		bulkhead.NewBuilder[any](uint(s.MaxConcurrent)).WithMaxWaitTime(s.MaxWait).Build(),
		rt.breaker,
		timeout.New[any](s.Timeout))
	rt.attrs = newRouteAttrs(rt.vendor, rt.op)
	key := spec.Vendor + "." + spec.Op
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.routes[key]; dup {
		return nil, fmt.Errorf("%w: route %s built twice (build each route once and share it)", ErrInvalidRoute, key)
	}
	r.routes[key] = rt
	return rt, nil
}

// MustRoute is Route that panics, for routes built from constant specs at start.
func (r *Registry) MustRoute(spec RouteSpec) *Route {
	rt, err := r.Route(spec)
	if err != nil {
		panic(err)
	}
	return rt
}

// Settings are the route's effective settings.
func (rt *Route) Settings() Settings { return rt.settings }

// Name is "vendor.op".
func (rt *Route) Name() string { return rt.vendor + "." + rt.op }

// BreakerState is the breaker's state: "closed", "open" or "half-open".
func (rt *Route) BreakerState() string { return stateName(rt.breaker.State()) }

func stateName(s circuitbreaker.State) string {
	switch s {
	case circuitbreaker.OpenState:
		return "open"
	case circuitbreaker.HalfOpenState:
		return "half-open"
	}
	return "closed"
}

// UnknownEnv returns an error for each RESILIENCE_* variable in environ ("K=V") that names no
// setting of a built route, with the closest known name. Call it after building every route.
func (r *Registry) UnknownEnv(environ []string) []error {
	r.mu.Lock()
	var known []string
	for _, rt := range r.routes {
		for _, f := range Describe(rt.vendor, rt.op, rt.spec.Settings) {
			known = append(known, f.Env)
		}
	}
	r.mu.Unlock()
	sort.Strings(known)
	var errs []error
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "RESILIENCE_") || contains(known, k) {
			continue
		}
		errs = append(errs, fmt.Errorf("%w: unknown variable %s%s", config.ErrInvalid, k, config.DidYouMean(k, known)))
	}
	return errs
}

func contains(sorted []string, s string) bool {
	i := sort.SearchStrings(sorted, s)
	return i < len(sorted) && sorted[i] == s
}
