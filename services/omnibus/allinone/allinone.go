// Package allinone runs every omnibus service in one process on embedded infrastructure: an
// in-process NATS JetStream (or NATS_URL) and a Postgres from the machine's binaries (or
// DATABASE_URL), both keeping their data in the data dir so that a restart resumes where the
// last run stopped, one HTTP listener for every service's routes, and the demo's simulated
// vendors and customers. Before the services start, it checks that the log and the database
// belong together (see agree.go) and rebuilds the stores from the log on request.
package allinone

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/tlsconf"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nats-io/nats.go"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/httpguard"
	"github.com/omnibus-dev/omnibus/pkg/natsembed"
	"github.com/omnibus-dev/omnibus/pkg/pgembed"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/telemetry"
)

// Config is the all-in-one's own configuration.
type Config struct {
	HTTPAddr        string        `env:"OMNIBUS_HTTP_ADDR" default:"127.0.0.1:8080" desc:"the one listener for every service: /healthz, /readyz, /metrics, /hooks/<connector>/..., the desk at /"`
	PublicURL       string        `env:"OMNIBUS_PUBLIC_URL" desc:"the URL others reach the all-in-one at (default http://<OMNIBUS_HTTP_ADDR>); events' dataschema is <it>/schemas/<type>.json, served there"`
	NATSURL         string        `env:"NATS_URL" desc:"external NATS to use instead of the embedded one"`
	NATSAddr        string        `env:"OMNIBUS_NATS_ADDR" default:"127.0.0.1:4222" desc:"listen address of the embedded NATS (for the nats CLI and omnibus dlq/replay)"`
	NATSSync        string        `env:"OMNIBUS_NATS_SYNC" default:"always" desc:"embedded JetStream fsync: always (ack means on disk) or a duration such as 2m"`
	NATSAtomic      bool          `env:"NATS_ATOMIC_BATCHES" desc:"publish batches as JetStream atomic batches, one fsync per batch (default: on with the embedded NATS at OMNIBUS_NATS_SYNC=always, off with NATS_URL)"`
	DataDir         string        `env:"OMNIBUS_DATA_DIR" default:".omnibus" desc:"where the embedded NATS (nats/) and the embedded Postgres (postgres/) keep their data; a restart resumes from it"`
	DatabaseURL     string        `env:"DATABASE_URL" desc:"Postgres to use instead of the embedded one in OMNIBUS_DATA_DIR/postgres"`
	Rebuild         bool          `env:"OMNIBUS_REBUILD" default:"false" desc:"when the database is empty but NATS's durable consumers have acked messages, rebuild the stores from the log instead of refusing to start (omnibus --rebuild); ignored when the database is not empty"`
	Simulate        bool          `env:"OMNIBUS_SIMULATE" default:"true" desc:"run the simulated vendors and customers of the demo"`
	SimInterval     time.Duration `env:"OMNIBUS_SIM_INTERVAL" default:"2s" desc:"how often a simulated customer writes"`
	LogLevel        string        `env:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat       string        `env:"LOG_FORMAT" default:"text" desc:"text or json"`
	ShutdownTimeout time.Duration `env:"OMNIBUS_SHUTDOWN_TIMEOUT" default:"20s" desc:"graceful stop budget before in-flight work is cancelled"`
	// Streams: the omnibus streams' settings (replicas, retention, size), applied at start.
	Streams bus.StreamsEnv
	// Guard: the abuse limits of the HTTP entries (timeouts, body cap, rate limits).
	Guard httpguard.Config
	// TLS of the HTTP listener (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CLIENT_CA_FILE), TLS 1.3 only.
	TLS      tlsconf.Server
	TLSLocal bool `env:"OMNIBUS_TLS_LOCAL" default:"false" desc:"development TLS: make a local CA in OMNIBUS_DATA_DIR/tls (kept) and serve HTTPS and the embedded NATS over TLS 1.3 with a certificate it signed for localhost and 127.0.0.1; trust tls/ca.pem in the browser, curl --cacert or nats --tlsca. With OMNIBUS_SIMULATE=false (the simulated vendors are reached on the listener)"`
	// PII: the personal-data keyset; with PII_KEYSET_FILE empty, OMNIBUS_DATA_DIR/pii-keyset.json,
	// generated (clear, mode 0600) on first start.
	PII pii.Config
}

// KeysetFile is where the all-in-one keeps its personal-data keyset.
func (c Config) KeysetFile() string {
	if c.PII.KeysetFile != "" {
		return c.PII.KeysetFile
	}
	return filepath.Join(c.DataDir, "pii-keyset.json")
}

// Validate checks cross-field rules.
func (c *Config) Validate() error {
	if c.NATSURL == "" {
		if _, _, err := natsembed.ParseSync(c.NATSSync); err != nil {
			return fmt.Errorf("OMNIBUS_NATS_SYNC: %w", err)
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("OMNIBUS_PUBLIC_URL must be an http(s) URL, got %q", c.PublicURL)
		}
	}
	if (c.TLSLocal || c.TLS.Enabled()) && c.Simulate {
		return errors.New("TLS on the all-in-one's listener (OMNIBUS_TLS_LOCAL, TLS_CERT_FILE) needs OMNIBUS_SIMULATE=false: the connectors reach the simulated vendors on that listener")
	}
	if c.TLSLocal && c.TLS.Enabled() {
		return errors.New("OMNIBUS_TLS_LOCAL makes its own certificate: unset TLS_CERT_FILE and TLS_KEY_FILE, or OMNIBUS_TLS_LOCAL")
	}
	if _, err := c.TLS.Config(); err != nil && !c.TLSLocal {
		return err
	}
	if c.SimInterval <= 0 {
		return errors.New("OMNIBUS_SIM_INTERVAL must be > 0")
	}
	if err := c.Guard.Validate(); err != nil {
		return err
	}
	_, err := c.Streams.Config()
	return err
}

// Run runs the services that build returns, given the HTTP base URL everything is served on,
// until ctx is cancelled; of the optional ones (service.Service.Configured) only those that env
// configures: the others are logged and listed as disabled on /readyz (service.Select). env is the services' configuration source; ready, if non-nil, is
// called with the base URL once everything listens.
func Run(ctx context.Context, cfg Config, build func(base string) []service.Service, env func(string) (string, bool), log *slog.Logger, ready func(string)) error {
	tel, err := telemetry.Setup(ctx, "omnibus", telemetry.WithLookup(env), telemetry.WithLogger(log))
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.WithoutCancel(ctx)) }()
	if tel.Exports != "" {
		log.Info("OpenTelemetry export", "to", tel.Exports)
	}

	var natsTLS []nats.Option // the process's own connections to the embedded NATS
	var natsServerTLS *tls.Config
	if cfg.TLSLocal {
		l, err := tlsconf.LocalCA(filepath.Join(cfg.DataDir, "tls"), localHosts(cfg.HTTPAddr, cfg.NATSAddr))
		if err != nil {
			return fmt.Errorf("OMNIBUS_TLS_LOCAL: %w", err)
		}
		cfg.TLS = tlsconf.Server{CertFile: l.CertFile, KeyFile: l.KeyFile}
		if natsServerTLS, err = cfg.TLS.Config(); err != nil {
			return err
		}
		if natsTLS, err = (tlsconf.NATS{CAFile: l.CAFile}).Options(); err != nil {
			return err
		}
		log.Info("development TLS 1.3 (OMNIBUS_TLS_LOCAL)", "ca", l.CAFile, "certificate", l.CertFile)
	}
	ln, err := service.Listen(cfg.HTTPAddr, cfg.TLS)
	if err != nil {
		return fmt.Errorf("%w (set OMNIBUS_HTTP_ADDR to another address)", err)
	}
	defer ln.Close() // closed by Serve on the normal path; this covers the early returns
	scheme := "http://"
	if cfg.TLS.Enabled() {
		scheme = "https://"
	}
	base := scheme + ln.Addr().String()
	public := strings.TrimSuffix(cfg.PublicURL, "/")
	if public == "" {
		public = base
	}
	// Run what is configured: an optional service (a vendor connector) that none of its enabling
	// variables configures is left out and listed as disabled on /readyz and the desk's /ops.
	services, disabled := service.Select(build(base), env)
	for _, d := range disabled {
		log.Info("connector disabled", "service", d.Name, "reason", "not configured", "enable_with", d.Enable)
	}

	natsURL, natsWhere := cfg.NATSURL, redactURL(cfg.NATSURL)
	var users *Users // the embedded server's: each service connects as its own user
	if natsURL == "" {
		host, port, err := splitHostPort(cfg.NATSAddr)
		if err != nil {
			return fmt.Errorf("OMNIBUS_NATS_ADDR: %w", err)
		}
		// Others may enter the data dir, not list it: as root, the embedded Postgres runs as
		// the postgres OS user and must reach postgres/ in it.
		if err := os.MkdirAll(cfg.DataDir, 0o751); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		dir := filepath.Join(cfg.DataDir, "nats")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		if users, err = NATSUsers(dir, services); err != nil {
			return err
		}
		ns, err := natsembed.Start(natsembed.Options{Host: host, Port: port, StoreDir: dir, Sync: cfg.NATSSync,
			Users: users.Server(), Log: log, TLS: natsServerTLS})
		if err != nil {
			return fmt.Errorf("embedded nats on %s: %w (set OMNIBUS_NATS_ADDR to another port, or NATS_URL to use a running server)", cfg.NATSAddr, err)
		}
		defer ns.Shutdown()
		natsURL, natsWhere = ns.URL(), dir
		log.Info("embedded NATS JetStream", "url", natsURL, "store", dir, "sync", natsembed.SyncDescription(cfg.NATSSync),
			"auth", "a user per service, permissions from its spec; operators: "+filepath.Join(dir, AdminSeedFile)+" (all), "+filepath.Join(dir, ReaderSeedFile)+" (read OMNI_DESK, OMNI_IN)")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o751); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	keys, created, err := pii.EnsureFile(cfg.KeysetFile(), cfg.PII.KEKURI)
	if err != nil {
		return fmt.Errorf("personal-data keyset: %w", err)
	}
	log.Info("personal data sealed", "keyset", cfg.KeysetFile(), "created", created, "primary_key", keys.PrimaryKeyID())
	sealer := pii.NewEvents(keys)
	// Batches as atomic batches when every write is fsynced: one fsync per batch.
	atomic := cfg.NATSAtomic || (cfg.NATSURL == "" && cfg.NATSSync == "always")
	streams, _ := cfg.Streams.Config() // checked by Validate
	busOpts := func(log *slog.Logger) []bus.Option {
		return []bus.Option{bus.WithDataProtector(sealer), bus.WithLogger(log), bus.WithAtomicBatches(atomic), bus.WithStreams(streams),
			bus.WithDataSchemaBase(public + schema.Path), bus.WithMeterProvider(tel.Meter), bus.WithTracerProvider(tel.Tracer)}
	}
	adminOpts := natsTLS
	if users != nil {
		adminOpts = append(adminOpts, users.admin.Options()...)
	}
	nc, client, err := bus.Dial(ctx, natsURL, "omnibus", append(busOpts(log), bus.WithNATSOptions(adminOpts...))...)
	if err != nil {
		return err
	}
	defer nc.Close()
	// Each service on its own connection as its own user, so the server holds it to its spec.
	clients := map[string]*bus.Client{}
	conns := []*nats.Conn{nc}
	if users != nil {
		for _, s := range services {
			u, ok := users.services[s.Name]
			if !ok {
				continue
			}
			snc, err := nats.Connect(natsURL, append(append([]nats.Option{nats.Name(s.Name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true)}, natsTLS...), u.Options()...)...)
			if err != nil {
				return fmt.Errorf("nats as %s: %w", s.Name, err)
			}
			defer snc.Close()
			c, err := bus.Connect(snc, busOpts(log.With("service", s.Name))...)
			if err != nil {
				return err
			}
			clients[s.Name], conns = c, append(conns, snc)
		}
	}

	needsDB := false
	for _, s := range services {
		needsDB = needsDB || s.NeedsDB
	}

	// HTTP serves from here on: while Postgres starts, a rebuild runs and the services mount
	// their routes, /readyz says what is still starting and webhooks answer 503 (Gate).
	guard, err := httpguard.New(cfg.Guard, tel.Meter)
	if err != nil {
		return err
	}
	health := service.NewProcessHealth(nc, nil)
	health.SetDisabled(disabled)
	names := make([]string, 0, len(services))
	for _, s := range services {
		names = append(names, s.Name)
	}
	startup := service.NewStartup(names...)
	startup.Watch(health)
	mux := http.NewServeMux()
	health.Mount(mux, tel.MetricsHandler())
	deps := service.Deps{Bus: client, Mux: mux, Log: log, Health: health, Env: env, Meter: tel.Meter, Tracer: tel.Tracer, Guard: guard, PII: keys}
	depsFor := func(s service.Service) service.Deps {
		d := deps
		if c, ok := clients[s.Name]; ok {
			d.Bus = c
		}
		d.Log = log.With("service", s.Name)
		return startup.For(s.Name, d)
	}
	srv := httpguard.Server(ctx, tel.HTTPHandler(startup.Gate(mux), "omnibus"), cfg.Guard, guard.Counter())
	return service.Serve(ctx, ln, srv, cfg.ShutdownTimeout, log, func(ctx context.Context) error {
		if needsDB {
			pool, closeDB, err := openDB(ctx, cfg, log)
			if err != nil {
				return err
			}
			defer closeDB()
			health.AddCheck("postgres", func(ctx context.Context) error { return pool.Ping(ctx) })
			deps.DB = pool
			if err := agree(ctx, log, client.JetStream(), pool, logOf(cfg, natsWhere), storeOf(cfg), services, cfg.Rebuild, depsFor); err != nil {
				return err
			}
		}
		done := make(chan error, 1)
		go func() { done <- service.RunAll(ctx, services, depsFor) }()
		// Up (and ready) once every service has mounted its routes and subscribed.
		select {
		case <-startup.Done():
		case err := <-done:
			return err
		}
		log.Info("omnibus is up", "http", base, "healthz", base+"/healthz", "metrics", base+"/metrics",
			"webhooks", base+"/hooks/<connector>/...", "nats", natsURL, "services", names, "disabled", disabledNames(disabled))
		if ready != nil {
			ready(base)
		}
		return <-done
	}, conns...)
}

// localHosts are the names the development certificate covers: localhost, the loopback
// addresses and the hosts the listeners are bound to.
func localHosts(addrs ...string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" && h != "0.0.0.0" && h != "::" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// disabledNames lists the names of the disabled services.
func disabledNames(disabled []service.Disabled) []string {
	out := make([]string, 0, len(disabled))
	for _, d := range disabled {
		out = append(out, d.Name)
	}
	return out
}

// openDB connects to DATABASE_URL, or starts the embedded Postgres on the data dir's postgres/
// (initialised on first use and kept). closeDB closes the pool and stops the server in order.
func openDB(ctx context.Context, cfg Config, log *slog.Logger) (_ *pgxpool.Pool, closeDB func(), err error) {
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stopAll() // not closeDB: a failing return has set it to nil
		}
	}()
	dbURL := cfg.DatabaseURL
	if dbURL == "" {
		dir := filepath.Join(cfg.DataDir, "postgres")
		// As root, Postgres runs as the postgres OS user, which must reach the data dir.
		pg, err := pgembed.Start(ctx, pgembed.Options{DataDir: dir, GrantParentSearch: true, Logger: log.With("component", "postgres")})
		if errors.Is(err, pgembed.ErrDataDirInUse) {
			return nil, nil, fmt.Errorf("postgres: %w (is another omnibus running on OMNIBUS_DATA_DIR=%s?)", err, cfg.DataDir)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("postgres in %s: %w (or set DATABASE_URL)", dir, err)
		}
		stops = append(stops, func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := pg.Stop(sctx); err != nil {
				log.Warn("postgres stop", "err", err)
			}
		})
		dbURL = pg.URL("postgres")
		log.Info("embedded Postgres", "url", dbURL, "data", dir)
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: %w", err)
	}
	stops = append(stops, pool.Close)
	return pool, stopAll, nil
}

// logOf describes the log for messages: where it is and how to start over.
func logOf(cfg Config, where string) logState {
	if cfg.NATSURL != "" {
		return logState{Where: where, Reset: "delete the omnibus streams (OMNI_*) on NATS_URL and empty the database"}
	}
	return logState{Where: where, Reset: "rm -rf " + cfg.DataDir + " (the whole data dir)"}
}

// storeOf describes the database for messages: where it is and how to empty it.
func storeOf(cfg Config) storeState {
	if cfg.DatabaseURL != "" {
		return storeState{Where: redactURL(cfg.DatabaseURL), Reset: "drop and recreate the database DATABASE_URL names, or point it at a new one"}
	}
	dir := filepath.Join(cfg.DataDir, "postgres")
	return storeState{Where: dir, Reset: "rm -rf " + dir}
}

// redactURL hides a URL's password.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "(a connection string that is not a URL)" // keyword/value: it may hold a password
	}
	return u.Redacted()
}

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil {
		return "", 0, fmt.Errorf("port %q: %w", port, err)
	}
	return host, p, nil
}
