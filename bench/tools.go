package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/omnibus-dev/omnibus/bench/internal/toolload"
	"github.com/omnibus-dev/omnibus/pkg/config"
)

// benchToolsFlags parses the flags of `go run ./bench tools`.
func benchToolsFlags(args []string, stderr io.Writer) (cfg toolload.Config, out output, err error) {
	cfg = toolload.Defaults()
	cfg.ErrorCodes = map[string]string{}
	for k, v := range toolload.DefaultErrorCodes {
		cfg.ErrorCodes[k] = v
	}
	cfg.Set = map[string]string{}
	fs := newFlags("bench tools", `bench tools — the tool connectors' load generator: embedded NATS JetStream, the vendor
sandbox, the crm, oms, logistics and ticket connectors and the audit service in-process. For each tool
and phase (latency: the sandbox answers every call of the tool's routes after --latency; errors: the
same plus --error-ratio of the calls failed with the vendor's own error code) it measures bare vendor
calls (the baseline), then publishes the tool's ...requested events at --rate for --duration and
reports answered, lost, failed, requested→answered latency against the baseline, the vendor calls
made and the cache hit share. Exits non-zero when a request got no answer.

Usage: go run ./bench tools [flags]

`, stderr)
	fs.Var(config.List(&cfg.Tools), "tools", "tools to load, in order: crm, oms, logistics, ticket")
	fs.Var(config.List(&cfg.Phases), "phases", "phases per tool: latency, errors")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "requests/s of each tool phase (and bare calls/s of its baseline)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long each phase publishes")
	fs.DurationVar(&cfg.Latency, "latency", cfg.Latency, "latency the sandbox adds to each call of the tool's routes")
	fs.Float64Var(&cfg.ErrorRatio, "error-ratio", cfg.ErrorRatio, "share of the tool's vendor calls the sandbox fails in the errors phase")
	fs.Var(config.KeyValues(cfg.ErrorCodes), "error-code", "vendor=code injected in the errors phase (repeatable; defaults: salesforce=SERVER_UNAVAILABLE oms=50001 sfexpress=A1099 cainiao=S99 jira=503 zendesk=503)")
	fs.BoolVar(&cfg.Baseline, "baseline", cfg.Baseline, "measure bare vendor calls at the same rate and faults")
	fs.IntVar(&cfg.Warmup, "warmup", cfg.Warmup, "warm-up requests per tool before its first phase (not reported)")
	fs.DurationVar(&cfg.Wait, "wait", cfg.Wait, "how long after a phase's last request its answers are awaited (then: lost)")
	fs.Float64Var(&cfg.Repeat, "repeat", cfg.Repeat, "share of requests that ask a key asked before in the phase")
	fs.IntVar(&cfg.Customers, "customers", cfg.Customers, "simulated population the keys come from (SANDBOX_CUSTOMERS)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "workload and sandbox seed (0 = random)")
	fs.DurationVar(&cfg.CacheTTL, "cache-ttl", cfg.CacheTTL, "the connectors' cache TTL (CRM_/OMS_/LOGISTICS_CACHE_TTL); 1ms = caches off; 0 = the connectors' defaults")
	fs.DurationVar(&cfg.CacheStale, "cache-stale", cfg.CacheStale, "the connectors' stale-if-error window (with --cache-ttl > 0)")
	fs.StringVar(&cfg.TicketProvider, "ticket-provider", cfg.TicketProvider, "ticket tool's vendor: jira or zendesk")
	fs.Float64Var(&cfg.TicketRateLimit, "ticket-rate-limit", 0, "calls/s of the ticket search and create routes for the run (their default is 10/s); 0 = 3 × --rate")
	fs.StringVar(&cfg.NATSSync, "nats-sync", cfg.NATSSync, `embedded JetStream fsync: "always" (the all-in-one's) or a duration such as 2m`)
	fs.StringVar(&cfg.DatabaseURL, "database-url", os.Getenv("DATABASE_URL"), "Postgres for the audit service instead of a throwaway one (default $DATABASE_URL)")
	fs.Var(config.KeyValues(cfg.Set), "set", "NAME=value service variable for this run, e.g. TICKET_CONCURRENCY=32 (repeatable; wins over everything)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "give up after this long")
	out.register(fs, true)
	if err = parse(fs, args); err != nil {
		return cfg, out, err
	}
	return cfg, out, cfg.Validate()
}

// benchTools is `go run ./bench tools`.
func benchTools(args []string, stdout, stderr io.Writer) error {
	cfg, out, err := benchToolsFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg.Progress, cfg.Log = out.progress(stderr), out.logger(stderr)
	ctx, stop := interruptible()
	defer stop()
	rep, err := toolload.Run(ctx, cfg)
	if rep != nil && len(rep.Tools) > 0 {
		out.print(stdout, rep)
	}
	if err == nil && rep != nil && rep.Lost > 0 {
		err = fmt.Errorf("bench tools: %d requests got no answer within %s", rep.Lost, cfg.Wait)
	}
	return err
}
