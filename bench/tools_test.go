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

	"github.com/omnibus-dev/omnibus/bench/internal/toolload"
	"github.com/omnibus-dev/omnibus/pkg/pgembed"
)

// A short run of the tool load generator over every tool and both phases, at a low rate: every
// request gets an answer (none lost, none twice) and the report is complete. No assertion on
// latency or failure figures (the machine is shared; the full run reports those).
// It runs beside the other all-in-one tests: each all-in-one hands its own OTel providers to its
// services (service.Deps), and the report reads the connectors' calls from its /metrics.
func TestBenchToolsSmoke(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts NATS, Postgres, the sandbox and four connectors; skipped with -short")
	}
	cfg, _, err := benchToolsFlags([]string{"--rate", "20", "--duration", "600ms", "--warmup", "2", "--wait", "20s",
		"--customers", "200", "--seed", "7", "--timeout", "2m"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, err := toolload.Run(context.Background(), cfg)
	if errors.Is(err, pgembed.ErrNoBinaries) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bench tools smoke run took %s", time.Since(start).Round(time.Millisecond))
	if rep.Lost != 0 {
		t.Errorf("%d requests lost", rep.Lost)
	}
	if len(rep.Tools) != len(toolload.Tools) {
		t.Fatalf("%d tools reported, want %d", len(rep.Tools), len(toolload.Tools))
	}
	const requests = 12 // 20/s × 0.6 s
	for i, tr := range rep.Tools {
		if tr.Tool != toolload.Tools[i] || len(tr.Phases) != 2 || tr.Phases[0].Name != toolload.PhaseLatency || tr.Phases[1].Name != toolload.PhaseErrors {
			t.Fatalf("tool %d: %s with %d phases", i, tr.Tool, len(tr.Phases))
		}
		for _, p := range tr.Phases {
			name := tr.Tool + " " + p.Name
			if p.Requests != requests || p.Answered != p.Requests || p.Lost != 0 || p.Duplicates != 0 || p.PublishErrors != 0 {
				t.Errorf("%s: %d requests, %d answered, %d lost, %d duplicates, %d publish errors; want %d answered once each",
					name, p.Requests, p.Answered, p.Lost, p.Duplicates, p.PublishErrors, requests)
			}
			if p.Completed+p.Failed != p.Answered {
				t.Errorf("%s: %d completed + %d failed != %d answered", name, p.Completed, p.Failed, p.Answered)
			}
			if l := p.Latency; l == nil || l.Samples+p.MissedBySubscriber != p.Answered || !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
				t.Errorf("%s: latency %+v for %d answers", name, l, p.Answered)
			}
			if b := p.Baseline; b == nil || b.Calls != requests || b.Latency == nil || b.Latency.Samples != requests || !(b.Latency.P99 > 0) {
				t.Errorf("%s: baseline %+v", name, b)
			}
			if !(p.P99Ratio > 0) || len(p.Targets) != 2 {
				t.Errorf("%s: p99 ratio %v, targets %+v", name, p.P99Ratio, p.Targets)
			}
			var calls int64
			for _, v := range p.Vendor {
				calls += v.Calls
			}
			if calls < int64(p.Requests)/2 || len(p.Connector) == 0 {
				t.Errorf("%s: %d vendor calls (%+v), connector calls %v: the vendor was not called", name, calls, p.Vendor, p.Connector)
			}
			if tr.Tool != "ticket" && p.Cache == nil {
				t.Errorf("%s: no cache figures", name)
			}
			if p.Name == toolload.PhaseErrors && p.Baseline != nil && p.Baseline.VendorErrors == 0 && calls > 0 {
				var injected int64
				for _, v := range p.Vendor {
					injected += v.Injected
				}
				if injected == 0 {
					t.Logf("%s: no error injected in %d calls (possible at this size)", name, calls)
				}
			}
		}
	}
	var out bytes.Buffer
	rep.WriteTable(&out)
	for _, want := range []string{"TOOL", "BARE p99", "crm", "oms", "logistics", "ticket", "requested→answered", "bare vendor call", "TARGETS (issue 5)", "LOST: 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
}

func TestBenchToolsFlags(t *testing.T) {
	t.Parallel()
	cfg, out, err := benchToolsFlags([]string{"--tools", "crm, ticket", "--phases", "errors", "--rate", "50", "--duration", "3s",
		"--error-code", "jira=429", "--set", "TICKET_CONCURRENCY=32", "--ticket-provider", "zendesk", "--cache-ttl", "0", "--json", "--quiet", "--log-level", "warn"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Tools, ",") != "crm,ticket" || strings.Join(cfg.Phases, ",") != "errors" || cfg.Rate != 50 || cfg.Duration != 3*time.Second ||
		cfg.ErrorCodes["jira"] != "429" || cfg.ErrorCodes["salesforce"] != "SERVER_UNAVAILABLE" || cfg.Set["TICKET_CONCURRENCY"] != "32" ||
		cfg.TicketProvider != "zendesk" || cfg.CacheTTL != 0 || !out.asJSON || !out.quiet || out.logLevel != "warn" {
		t.Fatalf("parsed %+v output %+v", cfg, out)
	}
	def, _, err := benchToolsFlags(nil, io.Discard)
	if err != nil || def.Rate != 100 || def.Duration != 30*time.Second || def.Latency != 10*time.Millisecond || def.ErrorRatio != 0.2 ||
		len(def.Tools) != 4 || len(def.Phases) != 2 || def.CacheTTL != time.Millisecond || def.TicketProvider != "jira" || !def.Baseline {
		t.Fatalf("defaults %+v, %v", def, err)
	}
	for _, bad := range [][]string{{"--tools", "crm,payment"}, {"--phases", "spikes"}, {"--error-ratio", "2"}, {"--ticket-provider", "servicenow"},
		{"--set", "novalue"}, {"extra"}} {
		if _, _, err := benchToolsFlags(bad, io.Discard); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	if code := run([]string{"tools", "--rate", "-1", "--quiet"}, io.Discard, io.Discard); code != 1 {
		t.Errorf("bench tools with --rate -1 exited %d, want 1", code)
	}
}
