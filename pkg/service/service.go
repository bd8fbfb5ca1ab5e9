// Package service is the lifecycle every omnibus service shares: the Service type with its
// Run(ctx, Deps) entry point, an instantiable Registry the all-in-one binary composes from,
// health and readiness endpoints, the HTTP server, and Main, the standalone harness each
// service's cmd/<name>/main.go calls.
//
// Run contract: Run starts the service's consumers, loops and HTTP routes, blocks until ctx is
// cancelled, then stops fetching, finishes in-flight work, drains its subscriptions and returns
// nil. A non-nil error means the service could not run; the process then stops every service.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/httpguard"
	"github.com/omnibus-dev/omnibus/pkg/pii"
)

// Deps is what a service gets from the process that runs it.
type Deps struct {
	// Bus is the process's bus, every role of it (a *bus.Client in production); nil for a NoBus
	// service. Pass each part on as the role it is (bus.Publisher, bus.KeyValues, ...).
	Bus    bus.Bus
	DB     *pgxpool.Pool // set only for services with NeedsDB
	Mux    *http.ServeMux
	Log    *slog.Logger
	Health *Health
	Env    config.Lookup // the service's configuration source (os.LookupEnv in production)
	// Instance is this replica's stable name (SERVICE_INSTANCE), "" for the only one: what a
	// replica keeps in shared state under its own key (its routes' alert state) is kept under it.
	Instance string
	// Meter and Tracer are the process's OTel providers, served on its /metrics; nil means the
	// OTel globals. Services pass them on (the connector runtime does) rather than read the
	// globals, so several all-in-ones in one process (tests) keep their own.
	Meter  metric.MeterProvider
	Tracer trace.TracerProvider
	// Guard is the process's abuse limits (HTTP_*, RATE_*): the client address behind trusted
	// proxies, and limiters that count their rejections on /metrics. nil limits nothing.
	Guard *httpguard.Guard
	// Started, set by the process (see Startup), is what MarkStarted calls.
	Started func()
	// PII is the process's personal-data keys (PII_KEYSET_FILE; the all-in-one's own keyset), nil
	// when personal data is kept in clear. The bus already seals and opens events with them; a
	// service uses them for what it stores (the unifier's blind indexes and ciphertexts).
	PII *pii.Keys
}

// MarkStarted tells the process the service serves: its routes are mounted and its consumers
// subscribed. Every service calls it once, when it has; until all have, the process is not ready.
func (d Deps) MarkStarted() {
	if d.Started != nil {
		d.Started()
	}
}

// Service is one runnable omnibus service.
type Service struct {
	Name    string
	NeedsDB bool
	// NoBus marks a service that never touches NATS (the vendor sandbox): run on its own it
	// does not dial NATS_URL, and Deps.Bus is nil.
	NoBus bool
	// First marks a service the others may call while they start (the vendor sandbox, which the
	// connectors' start checks ask): RunAll starts the others once it has started.
	First bool
	// Config, if set, is a pointer to a zero config struct; it documents the service's
	// variables (config.Describe) for docs/configuration.md and "omnibus config".
	Config any
	// Publishes and Subscribes list the subjects and CloudEvents types the service produces and
	// consumes; tests check each type has a schema and an AsyncAPI entry.
	Publishes, Subscribes []Route
	// Buckets are the JetStream key-value buckets the service creates and uses; Streams the
	// streams of its own it creates (webchat's visitor log); ReadsStreams the omnibus streams
	// it reads besides those its Subscribes imply (a replay, the dead letters). With Publishes
	// and Subscribes they are the whole of what the service may do on NATS: pkg/natsauth turns
	// them into the service's server-side permissions.
	Buckets      []string
	Streams      []OwnStream
	ReadsStreams []string
	Run          func(ctx context.Context, d Deps) error
	// Rebuild, if set, recreates the service's state in the EMPTY database d.DB from the log on
	// d.Bus, before Run. A process calls it on request when its database is empty while the
	// service's durable consumers say it had consumed from the log (the all-in-one's --rebuild);
	// Run then resumes from where the consumers are. It must refuse a database that is not empty.
	Rebuild func(ctx context.Context, d Deps) error
	// Configured, if set, marks an optional service (a connector to a vendor) and tells whether
	// env configures it: configured is false when none of the variables that enable it is set,
	// and vars lists those variables (config.Configured; connector.Define sets it from the
	// config's `enable:"true"` fields). A process that runs what it has (the all-in-one, see
	// Select) leaves an unconfigured service out and lists it as disabled; a service that is
	// configured must then load and validate, so a partial configuration refuses to start. Core
	// services leave it nil and always run.
	Configured func(env config.Lookup) (configured bool, vars []string)
}

// Disabled is an optional service a process left out: none of the variables that enable it is
// set. /readyz lists it (Health.SetDisabled); the process is ready without it.
type Disabled struct {
	Name string `json:"name"`
	// Reason is why, for people: "not configured: set SMS_PROVIDER (and its credentials) to enable".
	Reason string `json:"reason"`
	// Enable lists the variables any of which enables the service.
	Enable []string `json:"enable"`
}

// Select splits services into those to run and those that are disabled because env configures
// none of their enabling variables (Service.Configured), keeping the order of services.
func Select(services []Service, env config.Lookup) (run []Service, disabled []Disabled) {
	for _, s := range services {
		if s.Configured != nil {
			if ok, vars := s.Configured(env); !ok {
				disabled = append(disabled, Disabled{Name: s.Name, Enable: vars,
					Reason: "not configured: set " + strings.Join(vars, " or ") + " (with what it needs) to enable it"})
				continue
			}
		}
		run = append(run, s)
	}
	return run, disabled
}

// OwnStream is a stream a service creates and keeps itself, outside the omnibus streams.
type OwnStream struct {
	Name     string
	Subjects []string
}

// Route is a subject pattern (NATS wildcards allowed) and the CloudEvents type it carries.
type Route struct {
	Subject string
	Type    string
}

// ErrDuplicate is returned by Register for a name already registered.
var ErrDuplicate = errors.New("service already registered")

// Registry is an explicit set of services (tests build empty ones; the all-in-one builds one with
// every service).
type Registry struct {
	mu       sync.Mutex
	services map[string]Service
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{services: map[string]Service{}} }

// Register adds s.
func (r *Registry) Register(s Service) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.Name == "" || s.Run == nil {
		return fmt.Errorf("service: Name and Run are required (got %q)", s.Name)
	}
	if _, dup := r.services[s.Name]; dup {
		return fmt.Errorf("%w: %s", ErrDuplicate, s.Name)
	}
	r.services[s.Name] = s
	return nil
}

// MustRegister is Register that panics, for package-level registration in main.
func (r *Registry) MustRegister(s Service) {
	if err := r.Register(s); err != nil {
		panic(err)
	}
}

// Services returns the registered services sorted by name.
func (r *Registry) Services() []Service {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Service, 0, len(r.services))
	for _, s := range r.services {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// StoppedWhileStarting reports whether err is only the echo of ctx's cancellation: the service
// was told to stop before it had started, which is a clean stop, not a failure. A Run that
// cancels its start-up on ctx returns nil when this holds.
func StoppedWhileStarting(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled)
}

// RunAll runs every service with deps until ctx is cancelled or one fails; then it cancels the
// others and waits for all of them. It returns the errors of the services that failed. The
// services marked First start first; the others once every First one has started
// (Deps.MarkStarted) — or returned, or ctx ended.
func RunAll(ctx context.Context, services []Service, deps func(Service) Deps) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	var first []chan struct{} // each closed once its First service has started or returned
	for _, pass := range []bool{true, false} {
		for _, ch := range first {
			select {
			case <-ch:
			case <-ctx.Done():
			}
		}
		for _, s := range services {
			if s.First != pass {
				continue
			}
			d := deps(s)
			signal := func() {}
			if s.First {
				ch, once := make(chan struct{}), &sync.Once{}
				first = append(first, ch)
				signal = func() { once.Do(func() { close(ch) }) }
				started := d.Started
				d.Started = func() {
					if started != nil {
						started()
					}
					signal()
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer signal()
				err := s.Run(ctx, d)
				if StoppedWhileStarting(ctx, err) {
					err = nil
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
					mu.Unlock()
					cancel()
				}
			}()
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}
