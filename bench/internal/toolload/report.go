package toolload

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/omnibus-dev/omnibus/bench/internal/stats"
)

// Targets of issue 5 ("Load").
const (
	TargetP99MS       = 50.0  // p99 requested→answered at 10 ms vendor latency
	TargetFailureRate = 0.001 // failures the caller sees at 20 % vendor errors
)

// Report is everything one run measured. Latencies are in milliseconds.
type Report struct {
	Setup Setup         `json:"setup"`
	Tools []*ToolReport `json:"tools"`
	// Lost is the number of requests no answer was found for, over every phase.
	Lost int `json:"lost"`
	// TargetsMet is true when every target of every phase run was met.
	TargetsMet bool `json:"targets_met"`
}

// Setup is what the run ran with.
type Setup struct {
	CPUs           int               `json:"cpus"`
	GoVersion      string            `json:"go_version"`
	NATSSync       string            `json:"nats_sync"`
	Postgres       string            `json:"postgres"`
	Rate           float64           `json:"rate"`
	Seconds        float64           `json:"seconds_per_phase"`
	LatencyMS      float64           `json:"vendor_latency_ms"`
	ErrorRatio     float64           `json:"error_ratio"`
	ErrorCodes     map[string]string `json:"error_codes"`
	Repeat         float64           `json:"repeat_share"`
	Customers      int               `json:"customers"`
	Seed           uint64            `json:"seed"`
	Warmup         int               `json:"warmup_requests"`
	WaitSeconds    float64           `json:"answer_wait_seconds"`
	Caches         string            `json:"caches"`
	TicketProvider string            `json:"ticket_provider"`
	Baseline       bool              `json:"baseline"`
	// Settings are the service variables the bench set besides pointing them at the sandbox.
	Settings map[string]string `json:"settings"`
}

// ToolReport is one tool's phases.
type ToolReport struct {
	Tool       string   `json:"tool"`
	Request    string   `json:"request_type"`
	BaselineOp string   `json:"baseline_op"`
	Phases     []*Phase `json:"phases"`
}

// Phase is one tool phase.
type Phase struct {
	Name   string            `json:"phase"`
	Faults map[string]string `json:"faults"` // sandbox route → fault

	Requests           int              `json:"requests"`
	DistinctKeys       int              `json:"distinct_keys"`
	PublishRate        float64          `json:"publish_rate"`
	PublishErrors      int              `json:"publish_errors"`
	Answered           int              `json:"answered"`
	Completed          int              `json:"completed"`
	Failed             int              `json:"failed"`
	FailedCodes        map[string]int   `json:"failed_codes,omitempty"`
	Lost               int              `json:"lost"`
	Duplicates         int              `json:"duplicate_answers"`
	MissedBySubscriber int              `json:"missed_by_subscriber"` // answered in the stream, not seen live
	FailureRate        float64          `json:"failure_rate"`         // (failed + lost) / requests
	DrainSeconds       float64          `json:"drain_seconds"`        // last request → last answer
	Latency            *Dist            `json:"latency_ms"`           // requested → answered
	ByKind             map[string]*Dist `json:"latency_ms_by_kind"`   // by what was asked (carrier, key kind, new or repeat)
	PublishAck         *Dist            `json:"publish_ack_ms"`       // a request's publish → JetStream's ack (the bus's share)
	CPU                *CPU             `json:"cpu,omitempty"`        // while the tool phase ran

	Baseline  *Baseline `json:"baseline,omitempty"`
	P99Ratio  float64   `json:"p99_ratio,omitempty"`   // p99(tool) / p99(bare call)
	P99DiffMS float64   `json:"p99_diff_ms,omitempty"` // p99(tool) − p99(bare call)

	Vendor                []RouteCalls     `json:"vendor_calls"`
	VendorCallsPerRequest float64          `json:"vendor_calls_per_request"`
	Connector             map[string]int64 `json:"connector_calls"` // omnibus_vendor_calls_total: "vendor.op outcome [code]"
	Cache                 *CacheStats      `json:"cache,omitempty"`
	Targets               []Target         `json:"targets"`
}

// Dist is a latency distribution in ms.
type Dist = stats.Dist

// CPU is the machine's CPU use while a tool phase ran, in cores (CPU seconds per second).
type CPU struct {
	Cores   int     `json:"cores"`
	Machine float64 `json:"machine"` // every process
	Self    float64 `json:"self"`    // this process: generator, NATS, sandbox, connectors
	Others  float64 `json:"others"`  // the rest: the audit service's Postgres and anything else on the machine
}

// Baseline is the bare vendor calls of a phase.
type Baseline struct {
	Op           string  `json:"op"`
	Calls        int     `json:"calls"`
	VendorErrors int     `json:"vendor_errors"`
	ErrorShare   float64 `json:"error_share"`
	Latency      *Dist   `json:"latency_ms"`
}

// RouteCalls is what one sandbox route saw during a tool phase.
type RouteCalls struct {
	Route         string `json:"route"`
	Calls         int64  `json:"calls"`
	Injected      int64  `json:"injected_errors"`
	PeakPerSecond int64  `json:"peak_per_second"`
}

// CacheStats are the connector's cache lookups during a phase (omnibus_cache_requests_total).
type CacheStats struct {
	Hit      int64   `json:"hit"`
	Miss     int64   `json:"miss"` // loaded, or joined to a concurrent load of the same key
	Stale    int64   `json:"stale"`
	Error    int64   `json:"error"`
	HitShare float64 `json:"hit_share"`
}

// Target is one of issue 5's targets, checked on a phase.
type Target struct {
	Name string `json:"name"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// targets checks the phase against issue 5: no request lost in any phase; p99 within 50 ms at
// 10 ms vendor latency; failures within 0.1 % at 20 % vendor errors.
func (p *Phase) targets() {
	p.Targets = append(p.Targets, Target{Name: "0 lost", Got: strconv.Itoa(p.Lost) + " lost", Met: p.Lost == 0})
	switch p.Name {
	case PhaseLatency:
		p.Targets = append(p.Targets, Target{Name: fmt.Sprintf("p99 ≤ %.0f ms", TargetP99MS), Got: fmtMS(p.Latency.P99),
			Met: p.Latency.Samples > 0 && p.Latency.P99 <= TargetP99MS})
	case PhaseErrors:
		p.Targets = append(p.Targets, Target{Name: fmt.Sprintf("failures ≤ %.1f%%", 100*TargetFailureRate), Got: pct(p.FailureRate),
			Met: p.FailureRate <= TargetFailureRate})
	}
}

func (rep *Report) finish() {
	rep.Lost = 0
	rep.TargetsMet = len(rep.Tools) > 0
	for _, t := range rep.Tools {
		for _, p := range t.Phases {
			rep.Lost += p.Lost
			if len(p.Targets) == 0 {
				rep.TargetsMet = false
			}
			for _, x := range p.Targets {
				rep.TargetsMet = rep.TargetsMet && x.Met
			}
		}
	}
}

// WriteTable prints the report for people.
func (rep *Report) WriteTable(w io.Writer) {
	s := rep.Setup
	fmt.Fprintf(w, "omnibus bench tools — %d CPUs, %s; NATS JetStream embedded (sync %s); Postgres %s\n", s.CPUs, s.GoVersion, s.NATSSync, s.Postgres)
	fmt.Fprintf(w, "load: %s requests/s for %s per tool and phase (+ as many bare vendor calls for the baseline); %d warm-up requests per tool; answers awaited %s\n",
		num(s.Rate), secs(s.Seconds), s.Warmup, secs(s.WaitSeconds))
	fmt.Fprintf(w, "keys: from %d simulated customers (seed %d), %.0f%% of requests repeat a key of the same phase\n", s.Customers, s.Seed, 100*s.Repeat)
	var codes []string
	for v, c := range s.ErrorCodes {
		codes = append(codes, v+" "+strconv.Quote(c))
	}
	sort.Strings(codes)
	fmt.Fprintf(w, "faults: phase latency = %s ms on every sandbox route the tool calls; phase errors = the same + %.0f%% of calls failed with the vendor's code: %s\n",
		strconv.FormatFloat(s.LatencyMS, 'f', -1, 64), 100*s.ErrorRatio, strings.Join(codes, ", "))
	fmt.Fprintf(w, "caches: %s\n", s.Caches)
	var set []string
	for k, v := range s.Settings {
		set = append(set, k+"="+v)
	}
	sort.Strings(set)
	fmt.Fprintf(w, "ticket provider: %s; service settings of this run: %s\n\n", s.TicketProvider, strings.Join(set, " "))

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TOOL\tPHASE\tREQ\tANSWERED\tLOST\tFAILED\tFAIL %\tp50\tp90\tp99\tmax\tBARE p50\tBARE p99\tBARE ERR\tp99 ×\tp99 +\tVENDOR CALLS/REQ\tCACHE HITS\tTARGETS\t")
	for _, t := range rep.Tools {
		for _, p := range t.Phases {
			bp50, bp99, berr, ratio, diff := "-", "-", "-", "-", "-"
			if b := p.Baseline; b != nil && b.Latency != nil {
				bp50, bp99, berr = fmtMS(b.Latency.P50), fmtMS(b.Latency.P99), pct(b.ErrorShare)
			}
			if p.P99Ratio > 0 {
				ratio = strconv.FormatFloat(p.P99Ratio, 'f', 1, 64) + "×"
				diff = fmtMS(p.P99DiffMS)
			}
			cache := "-"
			if c := p.Cache; c != nil {
				cache = pct(c.HitShare)
			}
			l := p.Latency
			if l == nil {
				l = &Dist{}
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t\n",
				t.Tool, p.Name, p.Requests, p.Answered, p.Lost, p.Failed, pct(p.FailureRate), fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.Max),
				bp50, bp99, berr, ratio, diff, p.VendorCallsPerRequest, cache, targetsText(p.Targets))
		}
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "DETAILS")
	for _, t := range rep.Tools {
		fmt.Fprintf(w, "%s — %s; baseline: %s\n", t.Tool, t.Request, t.BaselineOp)
		for _, p := range t.Phases {
			fmt.Fprintf(w, "  %s: %d requests (%d distinct keys) published at %s/s", p.Name, p.Requests, p.DistinctKeys, strconv.FormatFloat(p.PublishRate, 'f', 1, 64))
			if p.PublishErrors > 0 {
				fmt.Fprintf(w, ", %d publish errors", p.PublishErrors)
			}
			fmt.Fprintf(w, "; last answer %s after the last request", secs(p.DrainSeconds))
			if p.Duplicates > 0 || p.MissedBySubscriber > 0 {
				fmt.Fprintf(w, "; %d duplicate answers, %d answers found only in the stream", p.Duplicates, p.MissedBySubscriber)
			}
			fmt.Fprintln(w)
			if l := p.Latency; l != nil && l.Samples > 0 {
				fmt.Fprintf(w, "    requested→answered: p50 %s  p90 %s  p99 %s  max %s  (mean %s, %d answers)\n", fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.Max), fmtMS(l.Mean), l.Samples)
			}
			if len(p.ByKind) > 1 {
				kinds := make([]string, 0, len(p.ByKind))
				for k := range p.ByKind {
					kinds = append(kinds, k)
				}
				sort.Strings(kinds)
				var parts []string
				for _, k := range kinds {
					l := p.ByKind[k]
					parts = append(parts, fmt.Sprintf("%s p50 %s p99 %s (%d)", k, fmtMS(l.P50), fmtMS(l.P99), l.Samples))
				}
				fmt.Fprintf(w, "      by kind: %s\n", strings.Join(parts, "; "))
			}
			if a := p.PublishAck; a != nil && a.Samples > 0 {
				fmt.Fprintf(w, "    request publish→ack (bus): p50 %s  p99 %s  max %s\n", fmtMS(a.P50), fmtMS(a.P99), fmtMS(a.Max))
			}
			if c := p.CPU; c != nil {
				fmt.Fprintf(w, "    CPU: %.2f of %d cores busy (this process %.2f, others incl. Postgres %.2f)\n", c.Machine, c.Cores, c.Self, c.Others)
			}
			if b := p.Baseline; b != nil && b.Latency != nil {
				fmt.Fprintf(w, "    bare vendor call:   p50 %s  p90 %s  p99 %s  max %s  (%d calls, %d vendor errors = %s)\n",
					fmtMS(b.Latency.P50), fmtMS(b.Latency.P90), fmtMS(b.Latency.P99), fmtMS(b.Latency.Max), b.Calls, b.VendorErrors, pct(b.ErrorShare))
			}
			if len(p.FailedCodes) > 0 {
				fmt.Fprintf(w, "    failed answers by error_code: %s\n", countsText(p.FailedCodes))
			}
			var vs []string
			for _, v := range p.Vendor {
				x := fmt.Sprintf("%s %d calls", v.Route, v.Calls)
				if v.Injected > 0 {
					x += fmt.Sprintf(" (%d injected errors)", v.Injected)
				}
				if v.Calls > 0 {
					x += fmt.Sprintf(", peak %d/s", v.PeakPerSecond)
				}
				vs = append(vs, x)
			}
			fmt.Fprintf(w, "    sandbox saw: %s\n", strings.Join(vs, "; "))
			if len(p.Connector) > 0 {
				m := map[string]int{}
				for k, v := range p.Connector {
					m[k] = int(v)
				}
				fmt.Fprintf(w, "    connector's vendor calls (after retries, by outcome): %s\n", countsText(m))
			}
			if c := p.Cache; c != nil {
				fmt.Fprintf(w, "    cache: %d hits, %d misses (loads and joins), %d stale served, %d errors\n", c.Hit, c.Miss, c.Stale, c.Error)
			}
			var faults []string
			for k, v := range p.Faults {
				faults = append(faults, k+": "+v)
			}
			sort.Strings(faults)
			fmt.Fprintf(w, "    faults: %s\n", strings.Join(faults, "; "))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "TARGETS (issue 5)")
	for _, t := range rep.Tools {
		for _, p := range t.Phases {
			for _, x := range p.Targets {
				fmt.Fprintf(w, "  %-10s %-8s %-18s %-5s %s\n", t.Tool, p.Name, x.Name, metText(x.Met), x.Got)
			}
		}
	}
	verdict := "all met"
	if !rep.TargetsMet {
		verdict = "NOT all met"
	}
	fmt.Fprintf(w, "LOST: %d; targets %s\n", rep.Lost, verdict)
}

func metText(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func targetsText(ts []Target) string {
	var out []string
	for _, t := range ts {
		if t.Name == "0 lost" {
			if !t.Met {
				out = append(out, "LOST")
			}
			continue
		}
		out = append(out, metText(t.Met))
	}
	return strings.Join(out, " ")
}

func countsText(m map[string]int) string {
	type kv struct {
		k string
		v int
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || l[i].v == l[j].v && l[i].k < l[j].k })
	out := make([]string, len(l))
	for i, x := range l {
		out[i] = fmt.Sprintf("%s %d", x.k, x.v)
	}
	return strings.Join(out, ", ")
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func secs(s float64) string { return strconv.FormatFloat(s, 'f', 2, 64) + " s" }

func fmtMS(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case math.Abs(v) >= 10000:
		return strconv.FormatFloat(v/1000, 'f', 1, 64) + " s"
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
	default:
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	}
}

func pct(x float64) string {
	if x > 0 && x < 0.001 {
		return strconv.FormatFloat(100*x, 'f', 3, 64) + "%"
	}
	return strconv.FormatFloat(100*x, 'f', 2, 64) + "%"
}
