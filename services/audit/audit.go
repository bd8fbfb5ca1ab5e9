// Package audit is the audit sink: it consumes every third-party call record
// (omni.audit.call.recorded on omni.audit.>, stream OMNI_AUDIT) and keeps it in Postgres for
// AUDIT_RETENTION, queryable by time, vendor, customer and trace through GET /api/audit and the
// `omnibus audit` command (Command).
//
// Storage: one table, audit_records, range-partitioned by day (UTC) on the record's time.
// Partitions are created AUDIT_PARTITIONS_AHEAD days ahead (and on demand for a late record),
// and a partition is dropped once its whole day is older than the retention — a DROP TABLE, not
// a DELETE, so expiry costs nothing however many records there are. Records are inserted in
// batches (one statement per batch of up to AUDIT_BATCH events), idempotently: a redelivered
// event has the same id and time and is ignored. A record older than the retention is acked and
// not stored; one dated more than a day in the future is dead-lettered (a producer with a broken
// clock), as is one that does not decode.
//
// The service also keeps watch on the dead-letter queue (pkg/alert WatchDeadLetters): every
// 5 seconds it reads how many messages each omni.dlq.<service> subject of OMNI_DLQ holds,
// raises one dead_letters alert (omni.ops.alert.raised, stream OMNI_OPS) for a subject that holds
// any, and resolves it when the subject is empty again. The watcher runs as long as the service.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/alert"
	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/audit/internal/store"
)

// Config is read from the environment.
type Config struct {
	Retention       string        `env:"AUDIT_RETENTION" default:"180d" desc:"how long call records are kept: days (180d) or a Go duration (4320h); whole days are dropped"`
	PartitionsAhead int           `env:"AUDIT_PARTITIONS_AHEAD" default:"7" desc:"daily partitions created ahead of today"`
	BatchSize       int           `env:"AUDIT_BATCH" default:"500" desc:"most records inserted in one statement"`
	Maintenance     time.Duration `env:"AUDIT_MAINTENANCE_INTERVAL" default:"1h" desc:"how often partitions are created ahead and expired ones dropped"`
	// Who may read GET /api/audit: bearer tokens of the desk's OpenID Connect issuer (the same
	// variables as the desk's) with one of AUDIT_API_ROLES.
	OIDCIssuer   string   `env:"DESK_OIDC_ISSUER" desc:"iss of accepted tokens: your OpenID Connect provider (required unless DESK_DEV_LOGIN=true)"`
	OIDCAudience string   `env:"DESK_OIDC_AUDIENCE" default:"omnibus-desk" desc:"a value the aud claim of accepted tokens must contain"`
	JWKSURL      string   `env:"DESK_JWKS_URL" desc:"the issuer's JWKS URL (default: jwks_uri of <DESK_OIDC_ISSUER>/.well-known/openid-configuration)"`
	RolesClaim   string   `env:"DESK_ROLES_CLAIM" default:"roles" desc:"claim holding the roles, an array or a space-separated string"`
	DevLogin     bool     `env:"DESK_DEV_LOGIN" default:"false" desc:"DEVELOPMENT ONLY: accept the tokens of the desk's development issuer, iss <DESK_PUBLIC_URL>/desk/dev (its keys fetched from <it>/jwks.json, or DESK_JWKS_URL)"`
	PublicURL    string   `env:"DESK_PUBLIC_URL" default:"http://127.0.0.1:8080" desc:"the desk's public URL, whose development issuer the audit API trusts with DESK_DEV_LOGIN=true"`
	APIRoles     []string `env:"AUDIT_API_ROLES" default:"auditor,supervisor" desc:"roles that may read GET /api/audit (a token must carry one); without DESK_OIDC_ISSUER or DESK_DEV_LOGIN the API refuses every request"`

	retention time.Duration
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	d, err := ParseRetention(c.Retention)
	if err != nil {
		return fmt.Errorf("AUDIT_RETENTION: %w", err)
	}
	if d < 24*time.Hour {
		return fmt.Errorf("AUDIT_RETENTION must be at least 1d, got %s", c.Retention)
	}
	c.retention = d
	if c.DevLogin && c.OIDCIssuer != "" {
		return errors.New("DESK_DEV_LOGIN=true trusts the desk's development issuer: unset DESK_OIDC_ISSUER, or set DESK_DEV_LOGIN=false to use your provider")
	}
	if len(c.APIRoles) == 0 {
		return errors.New("AUDIT_API_ROLES must name at least one role (auditor, supervisor)")
	}
	switch {
	case c.PartitionsAhead < 1 || c.PartitionsAhead > 90:
		return fmt.Errorf("AUDIT_PARTITIONS_AHEAD must be between 1 and 90, got %d", c.PartitionsAhead)
	case c.BatchSize < 1 || c.BatchSize > 10000:
		return fmt.Errorf("AUDIT_BATCH must be between 1 and 10000, got %d", c.BatchSize)
	case c.Maintenance < time.Minute:
		return fmt.Errorf("AUDIT_MAINTENANCE_INTERVAL must be at least 1m, got %s", c.Maintenance)
	}
	return nil
}

// ParseRetention reads "180d" (days) or a Go duration ("4320h").
func ParseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Source is the CloudEvents source of the events the audit service publishes (its dead-letter
// alerts).
const Source = "/services/audit"

// dlqWatchInterval is how often the dead-letter watcher looks at OMNI_DLQ; tests shorten it.
var dlqWatchInterval = 5 * time.Second

// Subjects the audit service consumes.
var Subjects = []string{"omni.audit.>"}

// Service returns the audit sink as a service.
func Service() service.Service {
	return service.Service{
		Name:    "audit",
		NeedsDB: true,
		Config:  &Config{},
		Subscribes: []service.Route{
			{Subject: "omni.audit.*", Type: audit.TypeCallRecorded},
		},
		Publishes: []service.Route{
			{Subject: alert.SubjectRaised, Type: alert.TypeRaised},
			{Subject: alert.SubjectResolved, Type: alert.TypeResolved},
		},
		Run: Run,
	}
}

// Run runs the audit sink until ctx is cancelled.
func Run(ctx context.Context, d service.Deps) error {
	var cfg Config
	if err := config.Load(&cfg, d.Env); err != nil {
		return err
	}
	if err := store.Migrate(ctx, d.DB.Config().ConnString()); err != nil {
		return err
	}
	st := store.New(d.DB)
	s := &sink{cfg: cfg, st: st, log: d.Log, now: time.Now}
	if err := s.maintain(ctx); err != nil {
		return err
	}
	verifier, err := apiVerifier(cfg)
	if err != nil {
		return err
	}
	if verifier == nil {
		d.Log.Warn("the audit API refuses every request: no token issuer is configured (set DESK_OIDC_ISSUER, or DESK_DEV_LOGIN=true for development)")
	}
	d.Mux.Handle("GET /api/audit", NewHandler(st, verifier, d.Guard.Token("audit/api"), d.Log))
	w, err := alert.WatchDeadLetters(ctx, d.Bus, alert.DeadLetterOptions{Source: Source, Interval: dlqWatchInterval, Log: d.Log})
	if err != nil {
		return err
	}
	defer w.Stop() // it stops with ctx; this waits for it
	// A store outage pauses the consumer: records wait in OMNI_AUDIT, none is dead-lettered for it.
	sub, err := d.Bus.SubscribeBatch(ctx, bus.ConsumerConfig{Service: "audit", Durable: "audit", Stream: bus.StreamAudit,
		FilterSubjects: Subjects, Dependencies: []bus.Dependency{{Name: "postgres", Check: d.DB.Ping}}}, cfg.BatchSize, s.handle)
	if err != nil {
		if service.StoppedWhileStarting(ctx, err) {
			return nil
		}
		return err
	}
	d.Log.Info("audit running", "retention", cfg.retention, "batch", cfg.BatchSize, "dlq_watch", dlqWatchInterval)
	d.MarkStarted()
	tick := time.NewTicker(cfg.Maintenance)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
			defer cancel()
			return sub.Shutdown(sctx)
		case <-tick.C:
			if err := s.maintain(ctx); err != nil && ctx.Err() == nil {
				d.Log.Warn("audit partition maintenance failed", "err", err)
			}
		}
	}
}

type sink struct {
	cfg Config
	st  *store.Store
	log *slog.Logger
	now func() time.Time
}

// maintain creates the partitions from yesterday to PartitionsAhead days ahead and drops expired
// ones.
func (s *sink) maintain(ctx context.Context) error {
	now := s.now()
	if err := s.st.EnsurePartitions(ctx, now.AddDate(0, 0, -1), now.AddDate(0, 0, s.cfg.PartitionsAhead)); err != nil {
		return err
	}
	dropped, err := s.st.DropBefore(ctx, now.Add(-s.cfg.retention))
	if len(dropped) > 0 {
		s.log.Info("audit partitions past retention dropped", "partitions", dropped)
	}
	return err
}

// handle stores a batch of records.
func (s *sink) handle(ctx context.Context, batch []bus.Delivery) []error {
	errs := make([]error, len(batch))
	var rows []store.Row
	var idx []int
	now := s.now()
	oldest := now.Add(-s.cfg.retention)
	for i, d := range batch {
		var r audit.Record
		if err := event.DecodeData(d.Event, &r); err != nil {
			errs[i] = bus.Permanent(err)
			continue
		}
		switch {
		case r.At.IsZero() || r.At.After(now.Add(24*time.Hour)):
			errs[i] = bus.Permanent(fmt.Errorf("record %s dated %s: more than a day ahead of this clock", d.Event.ID(), r.At))
			continue
		case r.At.Before(oldest):
			continue // past retention: nothing to keep
		}
		rows = append(rows, store.Row{ID: d.Event.ID(), Record: r})
		idx = append(idx, i)
	}
	if len(rows) > 0 {
		if _, err := s.st.Insert(ctx, rows); err != nil {
			s.log.Warn("audit insert failed; the batch will be redelivered", "records", len(rows), "err", err)
			for _, i := range idx {
				errs[i] = err
			}
		}
	}
	for _, err := range errs {
		if err != nil {
			return errs
		}
	}
	return nil
}
