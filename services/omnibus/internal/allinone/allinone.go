// Package allinone runs every omnibus service in one process on embedded infrastructure: an
// in-process NATS JetStream (or NATS_URL), a throwaway Postgres from the machine's binaries (or
// DATABASE_URL), one HTTP listener for every service's routes, and the demo's simulated vendors
// and customers.
package allinone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/natsembed"
	"github.com/omnibus-dev/omnibus/pkg/pgembed"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/telemetry"
)

// Config is the all-in-one's own configuration.
type Config struct {
	HTTPAddr        string        `env:"OMNIBUS_HTTP_ADDR" default:"127.0.0.1:8080" desc:"the one listener for every service: /healthz, /readyz, /metrics, /hooks/<connector>/..., the desk at /"`
	NATSURL         string        `env:"NATS_URL" desc:"external NATS to use instead of the embedded one"`
	NATSAddr        string        `env:"OMNIBUS_NATS_ADDR" default:"127.0.0.1:4222" desc:"listen address of the embedded NATS (for the nats CLI and omnibus dlq/replay)"`
	NATSSync        string        `env:"OMNIBUS_NATS_SYNC" default:"always" desc:"embedded JetStream fsync: always (ack means on disk) or a duration such as 2m"`
	NATSAtomic      bool          `env:"NATS_ATOMIC_BATCHES" desc:"publish batches as JetStream atomic batches, one fsync per batch (default: on with the embedded NATS at OMNIBUS_NATS_SYNC=always, off with NATS_URL)"`
	DataDir         string        `env:"OMNIBUS_DATA_DIR" default:".omnibus" desc:"where the embedded NATS keeps its streams"`
	DatabaseURL     string        `env:"DATABASE_URL" desc:"Postgres to use instead of a throwaway local one"`
	Simulate        bool          `env:"OMNIBUS_SIMULATE" default:"true" desc:"run the simulated vendors and customers of the demo"`
	SimInterval     time.Duration `env:"OMNIBUS_SIM_INTERVAL" default:"2s" desc:"how often a simulated customer writes"`
	LogLevel        string        `env:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat       string        `env:"LOG_FORMAT" default:"text" desc:"text or json"`
	ShutdownTimeout time.Duration `env:"OMNIBUS_SHUTDOWN_TIMEOUT" default:"20s" desc:"graceful stop budget before in-flight work is cancelled"`
}

// Validate checks cross-field rules.
func (c *Config) Validate() error {
	if c.NATSURL == "" {
		if _, _, err := natsembed.ParseSync(c.NATSSync); err != nil {
			return fmt.Errorf("OMNIBUS_NATS_SYNC: %w", err)
		}
	}
	if c.SimInterval <= 0 {
		return errors.New("OMNIBUS_SIM_INTERVAL must be > 0")
	}
	return nil
}

// Run runs the services that build returns, given the HTTP base URL everything is served on,
// until ctx is cancelled. env is the services' configuration source; ready, if non-nil, is
// called with the base URL once everything listens.
func Run(ctx context.Context, cfg Config, build func(base string) []service.Service, env func(string) (string, bool), log *slog.Logger, ready func(string)) error {
	tel, err := telemetry.Setup("omnibus")
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()

	natsURL := cfg.NATSURL
	if natsURL == "" {
		host, port, err := splitHostPort(cfg.NATSAddr)
		if err != nil {
			return fmt.Errorf("OMNIBUS_NATS_ADDR: %w", err)
		}
		dir := filepath.Join(cfg.DataDir, "nats")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		ns, err := natsembed.Start(natsembed.Options{Host: host, Port: port, StoreDir: dir, Sync: cfg.NATSSync})
		if err != nil {
			return fmt.Errorf("embedded nats on %s: %w (set OMNIBUS_NATS_ADDR to another port, or NATS_URL to use a running server)", cfg.NATSAddr, err)
		}
		defer ns.Shutdown()
		natsURL = ns.URL()
		log.Info("embedded NATS JetStream", "url", natsURL, "store", dir, "sync", natsembed.SyncDescription(cfg.NATSSync))
	}
	// Batches as atomic batches when every write is fsynced: one fsync per batch.
	atomic := cfg.NATSAtomic || (cfg.NATSURL == "" && cfg.NATSSync == "always")
	nc, client, err := bus.Dial(ctx, natsURL, "omnibus", bus.WithLogger(log), bus.WithAtomicBatches(atomic),
		bus.WithMeterProvider(tel.Meter), bus.WithTracerProvider(tel.Tracer))
	if err != nil {
		return err
	}
	defer nc.Close()

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w (set OMNIBUS_HTTP_ADDR to another address)", cfg.HTTPAddr, err)
	}
	defer ln.Close() // closed by Serve on the normal path; this covers the early returns
	base := "http://" + ln.Addr().String()
	services := build(base)
	var pool *pgxpool.Pool
	needsDB := false
	for _, s := range services {
		needsDB = needsDB || s.NeedsDB
	}
	if needsDB {
		dbURL := cfg.DatabaseURL
		if dbURL == "" {
			pg, err := pgembed.Start(ctx, pgembed.Options{Logger: log.With("component", "postgres")})
			if err != nil {
				return fmt.Errorf("throwaway postgres: %w (or set DATABASE_URL)", err)
			}
			defer func() { _ = pg.Stop(context.Background()) }()
			dbURL = pg.URL("postgres")
			log.Info("throwaway Postgres", "url", dbURL)
		}
		if pool, err = pgxpool.New(ctx, dbURL); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		defer pool.Close()
	}

	health := service.NewProcessHealth(nc, pool)
	names := make([]string, 0, len(services))
	for _, s := range services {
		names = append(names, s.Name)
	}
	startup := service.NewStartup(names...)
	startup.Watch(health)
	mux := http.NewServeMux()
	health.Mount(mux, tel.MetricsHandler())
	deps := service.Deps{Bus: client, DB: pool, Mux: mux, Log: log, Health: health, Env: env, Meter: tel.Meter, Tracer: tel.Tracer}
	return service.Serve(ctx, ln, mux, cfg.ShutdownTimeout, log, func(ctx context.Context) error {
		done := make(chan error, 1)
		go func() {
			done <- service.RunAll(ctx, services, func(s service.Service) service.Deps {
				d := deps
				d.Log = log.With("service", s.Name)
				return startup.For(s.Name, d)
			})
		}()
		// Up (and ready) once every service has mounted its routes and subscribed.
		select {
		case <-startup.Done():
		case err := <-done:
			return err
		}
		log.Info("omnibus is up", "http", base, "healthz", base+"/healthz", "metrics", base+"/metrics",
			"webhooks", base+"/hooks/<connector>/...", "nats", natsURL, "services", names)
		if ready != nil {
			ready(base)
		}
		return <-done
	}, nc)
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

// RandomSecret returns a random hex secret for the demo's simulated vendors.
func RandomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
