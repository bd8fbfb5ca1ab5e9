// Package connector is the SDK every channel and tool connector is written on. A connector is a
// Spec (its name and the subjects and event types it consumes and produces), a typed config
// struct loaded from the environment with pkg/config, and a setup function that mounts its
// webhooks and consumers on a Runtime:
//
//	var Spec = connector.Spec{Name: "example", Produces: ..., Consumes: ...}
//	func Service() service.Service { return connector.Define(Spec, setup) }
//	func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error { ... }
//
// The Runtime enforces the spec: publishing a subject or type not in Produces, or consuming one
// not in Consumes, is an error. A connector keeps its state in key-value buckets it declares
// once, at setup, with Runtime.KeyValue, not through a JetStream handle of its own. Inbound webhooks follow one flow, the same for every channel:
// cap the body → verify the vendor signature → decode into events → publish and wait for the
// JetStream ack → only then answer the vendor. A vendor that gets no 2xx retries, and since
// connectors use the vendor's message id as the event id, the retry is stored once.
//
// Lifecycle: setup runs once; the connector's consumers and loops run until the service's
// context is cancelled; then the Runtime drains the consumers, waits for the loops, flushes its
// resilience registry (if the connector asked for one) and returns.
package connector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnibus-dev/omnibus/pkg/alert"
	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/httpguard"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

// Route is a subject pattern (NATS wildcards allowed) and the CloudEvents type it carries.
type Route = service.Route

// Spec declares a connector.
type Spec struct {
	// Name is the connector's name: webhooks live under /hooks/<Name>/, events have source
	// /connectors/<Name>, dead letters go to omni.dlq.<Name>. Lower case, no dots.
	Name        string
	Description string
	Produces    []Route
	Consumes    []Route
	// Buckets are the key-value buckets the connector declares with Runtime.KeyValue (and
	// Runtime.Seen); Streams the streams of its own it creates; ReadsStreams the omnibus
	// streams it reads besides those of its Consumes (see service.Service). NATS permissions are
	// generated from the spec (pkg/natsauth), so what is missing here is refused by the server.
	Buckets      []string
	Streams      []service.OwnStream
	ReadsStreams []string
}

// ErrUndeclared is wrapped when a connector publishes or consumes a route missing from its Spec.
var ErrUndeclared = errors.New("route not declared in connector spec")

// SetupFunc mounts a connector's webhooks and consumers.
type SetupFunc[C any] func(ctx context.Context, rt *Runtime, cfg *C) error

// Define turns a connector into a service.Service. When C tags the variables that enable the
// connector (`enable:"true"`, typically its vendor credentials, see config.Enablers), the
// service is optional: a process that runs what it has leaves it out, listed as disabled, while
// none of them is set (service.Select).
func Define[C any](spec Spec, setup SetupFunc[C]) service.Service {
	var configured func(config.Lookup) (bool, []string)
	if len(config.Enablers(new(C))) > 0 {
		configured = func(env config.Lookup) (bool, []string) { return config.Configured(new(C), env) }
	}
	return service.Service{
		Name:         spec.Name,
		Config:       new(C),
		Publishes:    spec.Produces,
		Subscribes:   spec.Consumes,
		Buckets:      spec.Buckets,
		Streams:      spec.Streams,
		ReadsStreams: spec.ReadsStreams,
		Configured:   configured,
		Run: func(ctx context.Context, d service.Deps) error {
			cfg := new(C)
			if err := config.Load(cfg, d.Env); err != nil {
				return fmt.Errorf("%s config: %w", spec.Name, err)
			}
			rt := &Runtime{Spec: spec, Bus: d.Bus, Log: d.Log.With("connector", spec.Name), Env: d.Env, mux: d.Mux,
				Meter: d.Meter, Tracer: d.Tracer, Instance: d.Instance, Guard: d.Guard, hookLimit: d.Guard.Webhook(spec.Name)}
			if err := setup(ctx, rt, cfg); err != nil {
				rt.shutdown(ctx, 10*time.Second)
				if service.StoppedWhileStarting(ctx, err) {
					return nil
				}
				return fmt.Errorf("%s setup: %w", spec.Name, err)
			}
			rt.Log.Info("connector running", "webhooks", rt.routes(), "consumes", len(rt.subs))
			d.MarkStarted()
			<-ctx.Done()
			rt.shutdown(ctx, 20*time.Second)
			return nil
		},
	}
}

// Register defines the connector and adds it to reg: the one call a connector's package makes.
func Register[C any](reg *service.Registry, spec Spec, setup SetupFunc[C]) {
	reg.MustRegister(Define(spec, setup))
}

// Bus is the part of the bus a connector's Runtime uses: publishing, consuming, live events
// (through Runtime.PublishLive), its key-value buckets (through Runtime.KeyValue) and the schema
// registry. service.Deps.Bus (a *bus.Client)
// is one.
type Bus interface {
	bus.Publisher
	bus.Subscriber
	bus.KeyValues
	bus.Live
	// Schemas is the registry events are validated against.
	Schemas() *schema.Registry
	// JetStream is the escape hatch for a stream the connector owns (webchat's visitor log) and
	// for PutMany's batched puts; buckets go through Runtime.KeyValue.
	JetStream() jetstream.JetStream
}

// Runtime is what a connector's setup gets: its bus, logger, configuration source and the means
// to mount webhooks, consumers, key-value buckets and background loops.
type Runtime struct {
	Spec Spec
	Bus  Bus
	Log  *slog.Logger
	// Env is the service's configuration source (service.Deps.Env), the one the connector's
	// Config was loaded from. nil reads the process environment.
	Env config.Lookup
	// Meter and Tracer are the process's OTel providers (service.Deps); nil means the globals.
	// The resilience registry uses them; a connector passes Meter to the caches it builds.
	Meter  metric.MeterProvider
	Tracer trace.TracerProvider
	// Instance is this replica's stable name (service.Deps.Instance); its vendor routes' alert
	// state is kept under it, apart from other replicas'.
	Instance string
	// Guard is the process's abuse limits (service.Deps.Guard): webhooks are rate limited per
	// client address with it, and a connector's own routes (the web chat's) use it for their
	// limits and the client address. nil limits nothing.
	Guard *httpguard.Guard

	hookLimit *httpguard.Limiter // per client address, for every /hooks/<name>/ route
	mux       *http.ServeMux
	hooks     []string
	mu        sync.Mutex
	subs      []*bus.Subscription
	wg        sync.WaitGroup
	res       *resilience.Registry // built by Resilience, closed by shutdown
	kvs       map[string]bucket    // declared by KeyValue
}

// bucket is a key-value bucket a connector declared, and its handle.
type bucket struct {
	cfg jetstream.KeyValueConfig
	kv  jetstream.KeyValue
}

// ErrInvalidBucket is wrapped by KeyValue for a bucket it cannot declare.
var ErrInvalidBucket = errors.New("invalid key-value bucket")

// KeyValue declares a key-value bucket the connector keeps state in, as bus.Streams declares
// the streams: the first call for cfg.Bucket creates the bucket or updates it to cfg (every
// replica does, at start); later calls with the same cfg return the same handle, and a call that
// declares the bucket again differently fails with ErrInvalidBucket, as does a config without a
// Bucket or a Runtime without a Bus. Buckets are file-backed unless cfg says otherwise. Other
// errors are bus.KeyValues'.
func (rt *Runtime) KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("%w: %s declares a bucket without a name", ErrInvalidBucket, rt.Spec.Name)
	}
	if rt.Bus == nil {
		return nil, fmt.Errorf("%w: %s has no bus for bucket %s", ErrInvalidBucket, rt.Spec.Name, cfg.Bucket)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if b, ok := rt.kvs[cfg.Bucket]; ok {
		if !reflect.DeepEqual(b.cfg, cfg) {
			return nil, fmt.Errorf("%w: %s declares bucket %s twice, differently", ErrInvalidBucket, rt.Spec.Name, cfg.Bucket)
		}
		return b.kv, nil
	}
	kv, err := rt.Bus.KeyValue(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if rt.kvs == nil {
		rt.kvs = map[string]bucket{}
	}
	rt.kvs[cfg.Bucket] = bucket{cfg: cfg, kv: kv}
	return kv, nil
}

// ResilienceRoutes are the routes a connector's resilience registry (Runtime.Resilience)
// publishes: the audit records of its vendor calls on omni.audit.<name> and the route alerts on
// omni.ops.alert.raised and .resolved. A connector that calls vendors lists them in its
// Spec.Produces.
func ResilienceRoutes(name string) []Route {
	return []Route{
		{Subject: audit.Subject(name), Type: audit.TypeCallRecorded},
		{Subject: alert.SubjectRaised, Type: alert.TypeRaised},
		{Subject: alert.SubjectResolved, Type: alert.TypeResolved},
	}
}

// resilienceFlush bounds how long shutdown waits for the registry's buffered audit records and
// alerts to be published.
const resilienceFlush = 5 * time.Second

// Resilience returns the connector's pkg/resilience registry, built on the first call: its audit
// records and route alerts go out on Bus (Spec.Produces must declare ResilienceRoutes), and its
// routes read their RESILIENCE_<VENDOR>_<OP>_* overrides from Env. Every call returns the same
// registry. The Runtime closes it when it shuts down, after the consumers drained and the loops
// returned, so the records of their last calls are flushed.
//
// It takes no context: the registry's publishers outlive setup's and stop when Close (in
// shutdown) flushes them.
//
//nolint:contextcheck // the publishers' lifetime is bounded by Close, not by a caller's context
func (rt *Runtime) Resilience() (*resilience.Registry, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.res != nil {
		return rt.res, nil
	}
	for _, r := range ResilienceRoutes(rt.Spec.Name) {
		if !declared(rt.Spec.Produces, r.Subject, r.Type) {
			return nil, fmt.Errorf("%w: %s's resilience registry produces %s on %s", ErrUndeclared, rt.Spec.Name, r.Type, r.Subject)
		}
	}
	o := resilience.Options{Service: rt.Spec.Name, Bus: rt.Bus, Env: rt.Env, Log: rt.Log, MeterProvider: rt.Meter, TracerProvider: rt.Tracer}
	o.AlertOptions.Instance = rt.Instance
	reg, err := resilience.New(o)
	if err != nil {
		return nil, fmt.Errorf("%s resilience: %w", rt.Spec.Name, err)
	}
	rt.res = reg
	return reg, nil
}

// Source is the CloudEvents source of this connector's events.
func (rt *Runtime) Source() string { return "/connectors/" + rt.Spec.Name }

// NewEvent builds an event with this connector's source.
func (rt *Runtime) NewEvent(typ string, data any, opts ...event.Option) (event.Event, error) {
	return event.New(typ, rt.Source(), data, opts...)
}

func declared(routes []Route, subject, typ string) bool {
	for _, r := range routes {
		if r.Type == typ && bus.SubjectMatches(r.Subject, subject) {
			return true
		}
	}
	return false
}

func (rt *Runtime) checkProduces(batch []bus.Outgoing) error {
	for _, o := range batch {
		if !declared(rt.Spec.Produces, o.Subject, o.Event.Type()) {
			return fmt.Errorf("%w: %s produces %s on %s", ErrUndeclared, rt.Spec.Name, o.Event.Type(), o.Subject)
		}
	}
	return nil
}

// Publish publishes events declared in Spec.Produces and waits for every JetStream ack.
func (rt *Runtime) Publish(ctx context.Context, batch ...bus.Outgoing) error {
	if err := rt.checkProduces(batch); err != nil {
		return err
	}
	if len(batch) == 1 {
		return rt.Bus.Publish(ctx, batch[0].Subject, batch[0].Event)
	}
	return rt.Bus.PublishBatch(ctx, batch)
}

// PublishLive publishes a live event (bus.Live: core NATS under omni.live.>, at most once, never
// stored) declared in Spec.Produces. Errors wrap ErrUndeclared or are bus.Live's.
func (rt *Runtime) PublishLive(ctx context.Context, o bus.Outgoing) error {
	if err := rt.checkProduces([]bus.Outgoing{o}); err != nil {
		return err
	}
	return rt.Bus.PublishLive(ctx, o.Subject, o.Event)
}

// Consume runs h on a durable consumer of route, which must be in Spec.Consumes. The consumer
// is named <connector>-<last two subject tokens>; cfg may override ConsumerConfig defaults
// (Service, Stream and FilterSubjects are set here). Messages of another type are dead-lettered.
func (rt *Runtime) Consume(ctx context.Context, route Route, h bus.Handler, cfg bus.ConsumerConfig) error {
	if !declared(rt.Spec.Consumes, route.Subject, route.Type) {
		return fmt.Errorf("%w: %s consumes %s on %s", ErrUndeclared, rt.Spec.Name, route.Type, route.Subject)
	}
	stream, ok := bus.StreamOf(route.Subject)
	if !ok {
		return fmt.Errorf("%w: %s consumes %s, which is in no omnibus stream", ErrUndeclared, rt.Spec.Name, route.Subject)
	}
	cfg.Service, cfg.Stream, cfg.FilterSubjects = rt.Spec.Name, stream, []string{route.Subject}
	if cfg.Durable == "" {
		cfg.Durable = rt.Spec.Name + "-" + durableSuffix(route.Subject)
	}
	sub, err := rt.Bus.Subscribe(ctx, cfg, func(ctx context.Context, d bus.Delivery) error {
		if d.Event.Type() != route.Type {
			return bus.Permanent(fmt.Errorf("%s expects %s on %s, got %s", rt.Spec.Name, route.Type, route.Subject, d.Event.Type()))
		}
		return h(ctx, d)
	})
	if err != nil {
		return err
	}
	rt.mu.Lock()
	rt.subs = append(rt.subs, sub)
	rt.mu.Unlock()
	return nil
}

// Go runs a background loop until ctx is cancelled; shutdown waits for it.
func (rt *Runtime) Go(ctx context.Context, name string, loop func(ctx context.Context) error) {
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		if err := loop(ctx); err != nil && !errors.Is(err, context.Canceled) {
			rt.Log.Error("loop stopped", "loop", name, "err", err)
		}
	}()
}

// shutdown drains the connector within timeout; ctx is the service's (already cancelled):
// shutdown keeps its values (trace, logger) but not its cancellation.
func (rt *Runtime) shutdown(parent context.Context, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), timeout)
	defer cancel()
	rt.mu.Lock()
	subs := rt.subs
	rt.mu.Unlock()
	for _, s := range subs {
		if err := s.Shutdown(ctx); err != nil {
			rt.Log.Warn("consumer did not drain in time", "err", err)
		}
	}
	rt.wg.Wait()
	rt.mu.Lock()
	reg := rt.res
	rt.mu.Unlock()
	if reg != nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(parent), resilienceFlush)
		defer cancel()
		if err := reg.Close(fctx); err != nil {
			rt.Log.Warn("resilience registry did not flush", "err", err)
		}
	}
}

func durableSuffix(subject string) string {
	toks := strings.Split(subject, ".")
	if len(toks) > 2 {
		toks = toks[len(toks)-2:]
	}
	r := strings.NewReplacer("*", "any", ">", "all")
	return r.Replace(strings.Join(toks, "-"))
}
