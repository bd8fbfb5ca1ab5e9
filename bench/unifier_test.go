package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/bench/internal/loadgen"
	"github.com/omnibus-dev/omnibus/pkg/pgembed"
)

// A short run of the whole bench: it completes, every event reaches the desk exactly once
// (replays change nothing), and the figures are sane. No assertion on throughput.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS, Postgres and the unifier; skipped with -short")
	}
	cfg := loadgen.Defaults()
	cfg.Events, cfg.Backlog, cfg.Customers = 2000, 1000, 500
	cfg.Duplicates = 0.02
	cfg.Telemetry = false
	cfg.PGStats = true
	cfg.Timeout, cfg.Stall = 2*time.Minute, 45*time.Second
	cfg.Progress = io.Discard
	// Speed, not realism: this test checks the load generator, not the unifier's figures. The
	// unifier locks each batch's customers in one statement in id order, so its workers should
	// not deadlock; should one happen anyway (it is retried), it is detected after 100 ms.
	cfg.PGSettings = map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "deadlock_timeout": "100ms"}
	start := time.Now()
	rep, err := loadgen.Run(context.Background(), cfg)
	if errors.Is(err, pgembed.ErrNoBinaries) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bench smoke run took %s", time.Since(start).Round(time.Millisecond))
	v := rep.Verify
	if !v.ExactlyOnce || len(v.Problems) > 0 {
		t.Fatalf("not exactly once: %+v", v)
	}
	const distinct = 3000
	if v.Distinct != distinct || v.DeskAdded != distinct || v.StoredAdded != distinct || v.MessageRows != distinct || v.DeskDuplicates != 0 {
		t.Fatalf("distinct %d, desk message.added %d (repeats %d), stored %d, message rows %d; want %d each and no repeat",
			v.Distinct, v.DeskAdded, v.DeskDuplicates, v.StoredAdded, v.MessageRows, distinct)
	}
	if v.Replays == 0 {
		t.Fatal("no replay was published: duplicates were not exercised")
	}
	if rep.Store.Customers == 0 || rep.Store.Merges == 0 {
		t.Errorf("store: %+v; want customers and cross-channel merges", rep.Store)
	}
	s := rep.Sustained
	if s == nil || rep.CatchUp == nil || rep.Raw == nil || rep.Raw.JetStream == nil || rep.Raw.Postgres == nil || rep.Raw.Store == nil {
		t.Fatalf("missing phases: %+v", rep)
	}
	l := s.Latency
	if l == nil || l.Samples != cfg.Events {
		t.Fatalf("latency: %+v, want %d samples", l, cfg.Events)
	}
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Fatalf("latency not positive and ordered: %+v", l)
	}
	for name, x := range map[string]float64{
		"sustained applied": s.AppliedRate, "catch-up applied": rep.CatchUp.AppliedRate,
		"raw JetStream": rep.Raw.JetStream.PerSecond, "raw Postgres": rep.Raw.Postgres.PerSecond,
		"sustained/JetStream": rep.Ratios.SustainedVsJetStream, "catch-up/Postgres": rep.Ratios.CatchUpVsPostgres,
		"raw stored rows": rep.Raw.Store.PerSecond, "catch-up/stored rows": rep.Ratios.CatchUpVsStore,
		"floor": rep.Ratios.Floor, "catch-up/floor": rep.Ratios.CatchUpVsFloor,
	} {
		if !(x > 0) {
			t.Errorf("%s: %v, want > 0", name, x)
		}
	}
	switch pg := rep.Postgres; {
	case pg == nil:
		t.Error("no Postgres statement report")
	case pg.Note != "":
		t.Logf("pg_stat_statements not available here: %s", pg.Note)
	case pg.Calls == 0 || len(pg.Waits) == 0:
		t.Errorf("pg_stat_statements: %+v", pg)
	}
	var out bytes.Buffer
	rep.WriteTable(&out)
	// Every row the unifier stored is copied: a customer, identity, conversation and message at
	// least for most events, and one processed_events row per event.
	if st := rep.Raw.Store; st.Rows < 2*(cfg.Events+cfg.Backlog) || st.Count != cfg.Events+cfg.Backlog {
		t.Errorf("stored-rows ceiling: %d rows of %d events, want at least 2 per event of %d", st.Rows, st.Count, cfg.Events+cfg.Backlog)
	}
	for _, want := range []string{"raw JetStream", "raw Postgres", "stored rows", "floor:", "sustained: applied", "ingest→desk latency", "catch-up: applied", "RATIOS", "EXACTLY ONCE: yes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
}

func TestBenchFlags(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	cfg, out, err := benchFlags([]string{"--events", "10", "--rate", "500", "--backlog", "0", "--pg-set", "synchronous_commit=off",
		"--pg-set", "deadlock_timeout = 200ms", "--nats-sync", "always", "--json", "--quiet", "--workers", "2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Events != 10 || cfg.Rate != 500 || cfg.Backlog != 0 || cfg.NATSSync != "always" || cfg.Workers != 2 || !out.asJSON || !out.quiet {
		t.Fatalf("parsed %+v output %+v", cfg, out)
	}
	if cfg.PGSettings["synchronous_commit"] != "off" || cfg.PGSettings["deadlock_timeout"] != "200ms" {
		t.Fatalf("pg settings %v", cfg.PGSettings)
	}
	def, _, err := benchFlags(nil, io.Discard)
	if err != nil || def.Events != 100000 || def.Backlog != 50000 || def.Customers != 20000 || def.NATSSync != "2m" ||
		def.CrossChannel != 0.3 || def.Duplicates != 0.01 {
		t.Fatalf("defaults %+v, %v", def, err)
	}
	for _, bad := range [][]string{{"--pg-set", "novalue"}, {"extra"}, {"--database-url", "postgres://x", "--pg-set", "a=b"}} {
		if _, _, err := benchFlags(bad, io.Discard); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	if code := run([]string{"--events", "-1", "--quiet"}, io.Discard, io.Discard); code != 1 {
		t.Errorf("bench with --events -1 exited %d, want 1", code)
	}
}

// The bench with agents' replies reported as a channel does (--statuses 1 --status-updates 2):
// every reply is stored once, with one message.added, and the inbound messages exactly once.
func TestBenchReplyStatuses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS, Postgres and the unifier; skipped with -short")
	}
	cfg := loadgen.Defaults()
	cfg.Events, cfg.Backlog, cfg.Customers = 600, 300, 200
	cfg.Statuses, cfg.StatusUpdates = 1, 2
	cfg.Telemetry, cfg.Raw = false, false
	cfg.Timeout, cfg.Stall = 2*time.Minute, 45*time.Second
	cfg.Progress = io.Discard
	cfg.PGSettings = map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
	rep, err := loadgen.Run(context.Background(), cfg)
	if errors.Is(err, pgembed.ErrNoBinaries) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	v := rep.Verify
	if !v.ExactlyOnce || len(v.Problems) > 0 {
		t.Fatalf("not exactly once: %+v", v)
	}
	const distinct = 900
	if v.Distinct != distinct || v.ReplyRows != distinct || v.StoredAdded != 2*distinct {
		t.Fatalf("distinct %d, replies stored %d, message.added stored %d; want %d, %d and %d",
			v.Distinct, v.ReplyRows, v.StoredAdded, distinct, distinct, 2*distinct)
	}
}
