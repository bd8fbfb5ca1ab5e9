package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnibus-dev/omnibus/pkg/schema"
)

// ErrInvalidOption is wrapped by Connect for a bad option.
var ErrInvalidOption = errors.New("invalid bus option")

// Bus is every role together: what a process hands the services it runs (service.Deps.Bus),
// which pass each part on to the code that needs only that role (a Publisher to the audit trail,
// KeyValues to a connector's state). *Client is one; a test may fake it.
type Bus interface {
	Publisher
	Subscriber
	StreamAdmin
	DeadLetters
	Replayer
	KeyValues
	Live
	// Schemas is the registry events are validated against.
	Schemas() *schema.Registry
	// JetStream is the escape hatch for what the roles do not cover — administering consumers,
	// a service's own stream — and for tests and admin tools. A service that uses it says why.
	JetStream() jetstream.JetStream
}

var _ Bus = (*Client)(nil)

// Client is the omnibus JetStream client; it implements Bus: Publisher, Subscriber,
// StreamAdmin, DeadLetters, Replayer, KeyValues and Live. It does not own the NATS connection: close
// that after draining subscriptions.
type Client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	opts options
	tel  *instruments
	// consumers are the durable consumers this client runs (their lag is a gauge).
	consumers consumerSet
}

type options struct {
	schemas      *schema.Registry
	log          *slog.Logger
	tp           trace.TracerProvider
	mp           metric.MeterProvider
	streams      StreamsConfig
	streamsSet   bool // WithStreams was given: configuration, not defaults
	timeout      time.Duration
	asyncPending int
	skipValidate bool
	atomic       bool
	schemaBase   string // dataschema base ("": the schemas' canonical $id)
	protector    DataProtector
	natsOpts     []nats.Option
	noProvision  bool
}

// Option configures a Client.
type Option func(*options) error

// WithSchemas sets the schema registry (default schema.Default()).
func WithSchemas(r *schema.Registry) Option {
	return func(o *options) error { o.schemas = r; return nil }
}

// WithDataSchemaBase makes the dataschema of published events base + type + ".json" instead of
// the schema's canonical $id (https://omnibus.dev/schemas/<type>.json): a URL where the process
// serves its schemas (schema.Registry.Handler, mounted at schema.Path), so a consumer that
// dereferences dataschema gets the schema the event was validated against. base is an absolute
// http(s) URL; a missing final "/" is added. "" keeps the canonical $id.
func WithDataSchemaBase(base string) Option {
	return func(o *options) error {
		if base == "" {
			o.schemaBase = ""
			return nil
		}
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: dataschema base %q is not an absolute http(s) URL", ErrInvalidOption, base)
		}
		if !strings.HasSuffix(base, "/") {
			base += "/"
		}
		o.schemaBase = base
		return nil
	}
}

// WithAtomicBatches makes PublishBatch store each stream's events as JetStream atomic batches
// (see PublishAtomic): one write per batch instead of one per message. Turn it on when the server
// fsyncs every write (sync_interval: always), where it multiplies batch throughput (×6–9 in
// BenchmarkPublishFsynced); with NATS's default sync interval it costs the server more CPU than it
// saves (the unifier's catch-up: 3.9–4.7 against 5.4–5.6 k events/s). Default off.
func WithAtomicBatches(on bool) Option { return func(o *options) error { o.atomic = on; return nil } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) error { o.log = l; return nil } }

// WithTracerProvider sets the tracer provider (default otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) error { o.tp = tp; return nil }
}

// WithMeterProvider sets the meter provider (default otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) error { o.mp = mp; return nil }
}

// WithNATSOptions adds options to the connection Dial opens: credentials (an nkey, see
// pkg/natsauth), an inbox prefix, TLS. Connect ignores them.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(o *options) error { o.natsOpts = append(o.natsOpts, opts...); return nil }
}

// WithoutProvision makes Dial only check that the omnibus streams exist instead of creating or
// updating them: for a service whose NATS user may not change streams (pkg/natsauth), where
// the administrator provisions them (omnibus nats provision).
func WithoutProvision() Option { return func(o *options) error { o.noProvision = true; return nil } }

// Inbox is the reply-subject prefix of a service's connections (nats.CustomInboxPrefix): its
// JetStream API replies and consumer deliveries arrive there, and under per-service NATS
// permissions (pkg/natsauth) no other service may read them.
func Inbox(service string) string { return "_INBOX_" + service }

// WithStreams sets the stream tunables used by Provision.
func WithStreams(c StreamsConfig) Option {
	return func(o *options) error { o.streams, o.streamsSet = c, true; return nil }
}

// WithDefaultTimeout sets the timeout applied to calls whose context has no deadline (default 5s).
func WithDefaultTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: default timeout must be > 0, got %s", ErrInvalidOption, d)
		}
		o.timeout = d
		return nil
	}
}

// WithAsyncMaxPending bounds outstanding async publishes in PublishBatch (default 4096).
func WithAsyncMaxPending(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("%w: async max pending must be > 0, got %d", ErrInvalidOption, n)
		}
		o.asyncPending = n
		return nil
	}
}

// Connect wraps an open NATS connection.
func Connect(nc *nats.Conn, opts ...Option) (*Client, error) {
	o := options{timeout: 5 * time.Second, asyncPending: 4096}
	for _, fn := range opts {
		if err := fn(&o); err != nil {
			return nil, err
		}
	}
	if o.schemas == nil {
		o.schemas = schema.Default()
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	if o.tp == nil {
		o.tp = otel.GetTracerProvider()
	}
	if o.mp == nil {
		o.mp = otel.GetMeterProvider()
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(o.asyncPending))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	tel, err := newInstruments(o.tp, o.mp)
	if err != nil {
		return nil, err
	}
	c := &Client{nc: nc, js: js, opts: o, tel: tel}
	if err := c.registerGauges(o.mp); err != nil {
		return nil, err
	}
	return c, nil
}

// JetStream exposes the underlying jetstream handle for what pkg/bus does not wrap (see Bus).
func (c *Client) JetStream() jetstream.JetStream { return c.js }

// Conn is the NATS connection the client uses.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Schemas is the registry events are validated against.
func (c *Client) Schemas() *schema.Registry { return c.opts.schemas }

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// Dial connects to the NATS server at url as name (reconnecting forever, as a service should),
// wraps the connection in a Client and provisions the omnibus streams. The caller closes the
// returned connection after draining its subscriptions.
func Dial(ctx context.Context, url, name string, opts ...Option) (*nats.Conn, *Client, error) {
	var o options
	for _, fn := range opts {
		if err := fn(&o); err != nil {
			return nil, nil, err
		}
	}
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true)}, o.natsOpts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("nats %s: %w", url, err)
	}
	c, err := Connect(nc, opts...)
	if err == nil && o.noProvision {
		err = c.requireStreams(ctx)
	} else if err == nil {
		err = c.Provision(ctx)
	}
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, c, nil
}
