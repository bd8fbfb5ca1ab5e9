package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/httpguard"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/telemetry"
	"github.com/omnibus-dev/omnibus/pkg/tlsconf"
)

// Base is the process configuration every standalone service reads.
type Base struct {
	NATSURL         string        `env:"NATS_URL" default:"nats://127.0.0.1:4222" desc:"NATS server URL (standalone services)"`
	NATSAtomic      bool          `env:"NATS_ATOMIC_BATCHES" default:"false" desc:"publish batches as JetStream atomic batches (nats-server 2.12+): set it when the server fsyncs every write (sync_interval: always, as deploy/nats/nats.conf), where a batch then costs one fsync instead of one per message; with NATS's default sync interval it costs the server more CPU than it saves"`
	HTTPAddr        string        `env:"HTTP_ADDR" default:"127.0.0.1:8080" desc:"HTTP listen address of a standalone service (webhooks, /healthz, /readyz, /metrics)"`
	DatabaseURL     string        `env:"DATABASE_URL" desc:"Postgres URL for services that keep state (empty: the all-in-one runs its own, kept in OMNIBUS_DATA_DIR)"`
	LogLevel        string        `env:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat       string        `env:"LOG_FORMAT" default:"text" desc:"text or json"`
	Instance        string        `env:"SERVICE_INSTANCE" desc:"this replica's stable name, such as its StatefulSet pod name: replicas of one service keep their vendor routes' alert state apart under it (empty: 0, for one replica)"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"20s" desc:"how long a graceful stop may take before in-flight work is cancelled"`
	NATSNkeyFile    string        `env:"NATS_NKEY_FILE" desc:"the service's NATS nkey seed file (omnibus nats keys writes one per service): it connects as its own user, with the permissions its spec implies, and checks the omnibus streams exist instead of provisioning them (the administrator does, omnibus nats provision); empty: no NATS authentication"`
	SchemaBaseURL   string        `env:"SCHEMA_BASE_URL" desc:"where consumers fetch the events' schemas: dataschema becomes <it>/<type>.json (every service serves them at /schemas/, so e.g. http://desk.example.com/schemas/); empty: the schema's canonical $id https://omnibus.dev/schemas/<type>.json"`
	// Streams: the omnibus streams' settings, applied by every service's Provision.
	Streams bus.StreamsEnv
	// Guard: the abuse limits of the service's HTTP entries (timeouts, body cap, rate limits).
	Guard httpguard.Config
	// TLS of the HTTP listener, and of the connection to NATS (TLS 1.3 only; Postgres's comes
	// from DATABASE_URL's sslmode, held to TLS 1.3 too).
	TLS     tlsconf.Server
	NATSTLS tlsconf.NATS
	// PII: the personal-data keyset (docs/operations.md, Personal data).
	PII pii.Config
}

// Main runs s as a standalone process (the container entry point) and exits. "health" as the
// first argument instead checks http://HTTP_ADDR/healthz and exits 0 or 1 (the container
// healthcheck in images without a shell).
func Main(s Service) {
	var base Base
	if err := config.Load(&base, os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if len(os.Args) > 1 && os.Args[1] == "health" {
		os.Exit(HealthCheckTLS(base.HTTPAddr, base.TLS))
	}
	log := telemetry.NewLogger(os.Stderr, base.LogFormat, base.LogLevel).With("service", s.Name)
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runStandalone(ctx, s, base, log)
	stop()
	if err != nil {
		log.Error("service failed", "err", err)
		os.Exit(1)
	}
}

// HealthCheck GETs /healthz on addr and returns the process exit code.
func HealthCheck(addr string) int { return HealthCheckTLS(addr, tlsconf.Server{}) }

// HealthCheckTLS is HealthCheck of a listener that serves tls: over HTTPS, without verifying
// the certificate's names (the process checks its own loopback listener), presenting the
// listener's own certificate where clients must have one.
func HealthCheckTLS(addr string, t tlsconf.Server) int {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 1
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := http.Client{Timeout: 2 * time.Second}
	scheme := "http"
	if t.Enabled() {
		cfg, err := tlsconf.SelfCheck(t)
		if err != nil {
			return 1
		}
		scheme, c.Transport = "https", &http.Transport{TLSClientConfig: cfg}
	}
	resp, err := c.Get(scheme + "://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

func runStandalone(ctx context.Context, s Service, base Base, log *slog.Logger) error {
	if s.Configured != nil {
		if ok, vars := s.Configured(os.LookupEnv); !ok {
			return fmt.Errorf("%s is not configured: set %s (with what it needs); run on its own, a service runs only when configured", s.Name, strings.Join(vars, " or "))
		}
	}
	tel, err := telemetry.Setup(ctx, s.Name, telemetry.WithLogger(log))
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.WithoutCancel(ctx)) }()
	if tel.Exports != "" {
		log.Info("OpenTelemetry export", "to", tel.Exports)
	}
	keys, err := base.PII.Load()
	if err != nil {
		return err
	}
	var busOpts []bus.Option
	if keys != nil {
		busOpts = append(busOpts, bus.WithDataProtector(pii.NewEvents(keys)))
		log.Info("personal data sealed", "keyset", base.PII.KeysetFile, "primary_key", keys.PrimaryKeyID())
	} else {
		log.Warn("personal data is published and stored in clear: set PII_KEYSET_FILE (docs/operations.md, Personal data)")
	}
	var nc *nats.Conn
	var client *bus.Client
	if !s.NoBus {
		streams, err := base.Streams.Config()
		if err != nil {
			return err
		}
		opts := append([]bus.Option{bus.WithLogger(log), bus.WithAtomicBatches(base.NATSAtomic), bus.WithStreams(streams),
			bus.WithDataSchemaBase(base.SchemaBaseURL), bus.WithMeterProvider(tel.Meter), bus.WithTracerProvider(tel.Tracer)}, busOpts...)
		if base.NATSNkeyFile != "" {
			nkey, err := nats.NkeyOptionFromSeed(base.NATSNkeyFile)
			if err != nil {
				return fmt.Errorf("NATS_NKEY_FILE: %w", err)
			}
			opts = append(opts, bus.WithNATSOptions(nkey, nats.CustomInboxPrefix(bus.Inbox(s.Name))), bus.WithoutProvision())
		}
		natsTLS, err := base.NATSTLS.Options()
		if err != nil {
			return err
		}
		opts = append(opts, bus.WithNATSOptions(natsTLS...))
		if nc, client, err = bus.Dial(ctx, base.NATSURL, s.Name, opts...); err != nil {
			return err
		}
		defer nc.Close()
	}
	var pool *pgxpool.Pool
	if s.NeedsDB {
		if base.DatabaseURL == "" {
			return errors.New("DATABASE_URL is required for " + s.Name)
		}
		if pool, err = OpenDB(ctx, base.DatabaseURL); err != nil {
			return err
		}
		defer pool.Close()
	}
	guard, err := httpguard.New(base.Guard, tel.Meter)
	if err != nil {
		return err
	}
	health := NewProcessHealth(nc, pool)
	startup := NewStartup(s.Name)
	startup.Watch(health)
	mux := http.NewServeMux()
	health.Mount(mux, tel.MetricsHandler())
	ln, err := Listen(base.HTTPAddr, base.TLS)
	if err != nil {
		return err
	}
	log.Info("service started", "http", "http://"+ln.Addr().String(), "nats", base.NATSURL)
	deps := Deps{DB: pool, Mux: mux, Log: log, Health: health, Env: os.LookupEnv, Meter: tel.Meter, Tracer: tel.Tracer, Instance: base.Instance, Guard: guard, PII: keys}
	if client != nil { // a nil *bus.Client in Deps.Bus would not read as "no bus"
		deps.Bus = client
	}
	srv := httpguard.Server(ctx, tel.HTTPHandler(startup.Gate(mux), s.Name), base.Guard, guard.Counter())
	return Serve(ctx, ln, srv, base.ShutdownTimeout, log, func(ctx context.Context) error {
		return s.Run(ctx, startup.For(s.Name, deps))
	}, nc)
}

// Serve serves srv (built by httpguard.Server: its timeouts and body cap) on ln and runs
// run(ctx) until ctx is cancelled or run fails; then it stops the HTTP server (in-flight requests
// finish), waits for run to return (the services drain their consumers) and drains the NATS
// connections (the process's and its services'). Everything is bounded by timeout; past it,
// contexts are cancelled.
func Serve(ctx context.Context, ln net.Listener, srv *http.Server, timeout time.Duration, log *slog.Logger,
	run func(ctx context.Context) error, conns ...*nats.Conn) error {
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()
	runErr := make(chan error, 1)
	go func() { runErr <- run(runCtx) }()

	var err error
	runDone := false
	select {
	case <-ctx.Done():
	case err = <-httpErr:
		err = fmt.Errorf("http: %w", err)
	case err = <-runErr:
		runDone = true
	}
	log.Info("shutting down", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if e := srv.Shutdown(sctx); e != nil {
		log.Warn("http shutdown", "err", e)
	}
	cancelRun()
	if !runDone {
		select {
		case e := <-runErr:
			err = errors.Join(err, e)
		case <-sctx.Done():
			err = errors.Join(err, fmt.Errorf("services did not stop within %s", timeout))
		}
	}
	for _, nc := range conns {
		if nc != nil && !nc.IsClosed() {
			if e := nc.Drain(); e != nil && !errors.Is(e, nats.ErrConnectionClosed) {
				log.Warn("nats drain", "err", e)
			}
		}
	}
	for _, nc := range conns {
		for nc != nil && !nc.IsClosed() && sctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
	log.Info("stopped")
	return err
}

// Listen listens on addr, serving TLS 1.3 when t says so (tlsconf.Server).
func Listen(addr string, t tlsconf.Server) (net.Listener, error) {
	cfg, err := t.Config()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return ln, nil
}

// OpenDB opens a pool on url; a TLS connection (sslmode in url) is held to TLS 1.3.
func OpenDB(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	tlsconf.Client(cfg.ConnConfig.TLSConfig)
	for _, f := range cfg.ConnConfig.Fallbacks {
		tlsconf.Client(f.TLSConfig)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return pool, nil
}
