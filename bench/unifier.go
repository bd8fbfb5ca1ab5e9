package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/omnibus-dev/omnibus/bench/internal/loadgen"
	"github.com/omnibus-dev/omnibus/pkg/config"
)

// benchFlags parses the flags of `go run ./bench` into a loadgen configuration.
func benchFlags(args []string, stderr io.Writer) (cfg loadgen.Config, out output, err error) {
	cfg = loadgen.Defaults()
	cfg.PGSettings = config.KeyValues{}
	fs := newFlags("bench", `bench — the unifier's load generator: embedded NATS JetStream, a throwaway Postgres,
the unifier in-process, a realistic omnichannel workload; prints raw ceilings, sustained throughput
and latency, backlog catch-up rate, their ratios, and an exactly-once check.

Usage: go run ./bench [flags]
       go run ./bench tools [flags]   (the tool connectors' load generator; -h: its flags)

`, stderr)
	fs.IntVar(&cfg.Events, "events", cfg.Events, "events published to the running unifier (sustained phase)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "events/s of the sustained phase; 0 = as fast as possible")
	fs.IntVar(&cfg.Backlog, "backlog", cfg.Backlog, "events published while the unifier is stopped, then caught up (0 = skip)")
	fs.IntVar(&cfg.Customers, "customers", cfg.Customers, "distinct customers")
	fs.Float64Var(&cfg.CrossChannel, "cross-channel", cfg.CrossChannel, "share of customers writing on wechatkf, sms and webchat with one phone (linked and merged by the unifier)")
	fs.Float64Var(&cfg.Statuses, "statuses", cfg.Statuses, "share of inbound messages followed by a delivery status of an agent's reply (published in the same chunk; extra load, not counted in the rates)")
	fs.IntVar(&cfg.StatusUpdates, "status-updates", cfg.StatusUpdates, `with --statuses: each status is a new reply's first ("sent", with its body), followed by this many updates of it ("delivered", "read"; 0 to 2), as a channel reports an agent's reply`)
	fs.Float64Var(&cfg.Duplicates, "duplicates", cfg.Duplicates, "share of events re-published with a fresh Nats-Msg-Id (a replay: must change nothing)")
	fs.IntVar(&cfg.Publishers, "publishers", cfg.Publishers, "publisher goroutines")
	fs.IntVar(&cfg.Chunk, "chunk", cfg.Chunk, "events per PublishBatch (smaller when --rate paces them: about 10 ms worth)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "workload seed (0 = random)")
	fs.IntVar(&cfg.Batch, "batch", 0, "UNIFIER_BATCH (default: the environment, else the unifier's default)")
	fs.IntVar(&cfg.Workers, "workers", 0, "UNIFIER_WORKERS (default: the environment, else the unifier's default)")
	fs.StringVar(&cfg.NATSSync, "nats-sync", cfg.NATSSync, `embedded JetStream fsync: a duration ("2m", NATS's default) or "always"`)
	fs.StringVar(&cfg.DatabaseURL, "database-url", os.Getenv("DATABASE_URL"), "Postgres to use instead of a throwaway one (default $DATABASE_URL); the bench writes its own rows into it")
	fs.Var(config.KeyValues(cfg.PGSettings), "pg-set", "name=value setting of the throwaway Postgres, e.g. synchronous_commit=off (repeatable)")
	fs.BoolVar(&cfg.PGStats, "pg-stats", false, "report the unifier's statements from pg_stat_statements (loaded into the throwaway Postgres)")
	fs.BoolVar(&cfg.Telemetry, "telemetry", cfg.Telemetry, "instrument like the all-in-one (OTel SDK tracer and Prometheus meter)")
	fs.BoolVar(&cfg.Raw, "raw", cfg.Raw, "measure the raw JetStream and Postgres ceilings")
	fs.BoolVar(&cfg.PII, "pii", cfg.PII, "seal personal data as the all-in-one does (pkg/pii: sealed identities in events, blind indexes and ciphertexts in the store)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "give up after this long")
	fs.DurationVar(&cfg.Stall, "stall", cfg.Stall, "fail a phase when no event is applied for this long")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the unifier phases to this file")
	out.register(fs, false)
	if err = parse(fs, args); err != nil {
		return cfg, out, err
	}
	if cfg.DatabaseURL != "" && len(cfg.PGSettings) > 0 {
		return cfg, out, errors.New("bench: --pg-set applies to the throwaway Postgres, not to --database-url")
	}
	return cfg, out, nil
}

// benchUnifier is `go run ./bench`.
func benchUnifier(args []string, stdout, stderr io.Writer) error {
	cfg, out, err := benchFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg.Progress = out.progress(stderr)
	ctx, stop := interruptible()
	defer stop()
	rep, err := loadgen.Run(ctx, cfg)
	if rep != nil {
		out.print(stdout, rep)
	}
	if err == nil && rep != nil && !rep.Verify.ExactlyOnce {
		err = fmt.Errorf("bench: not every event was applied exactly once: %s", strings.Join(rep.Verify.Problems, "; "))
	}
	return err
}
