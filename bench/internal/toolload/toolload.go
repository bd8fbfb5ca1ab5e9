// Package toolload is the tool connectors' load generator, `go run ./bench tools`. In one process
// it starts an embedded NATS JetStream and the all-in-one (allinone.Run) with the vendor sandbox,
// the crm, oms, logistics and ticket connectors and the audit service (which brings a throwaway
// Postgres), all on loopback, with the sandbox's simulated customers silent. Then, for each tool
// and each phase —
//
//   - latency: every sandbox route the tool calls answers after Latency (10 ms);
//   - errors: the same, and a share ErrorRatio (20 %) of the calls fail with the vendor's own
//     transient error code —
//
// it measures a baseline of bare HTTP calls to the same sandbox routes at the same rate under
// the same faults, then publishes the tool's ...requested events at a paced Rate for Duration
// with realistic, varied keys, matches the .completed / .failed answers by correlation id, and
// reports answered, lost, failed (by error code), requested→answered latency against the
// baseline, the vendor calls the sandbox saw and the connector's cache hit share.
//
// The connectors run with their caches effectively off (CacheTTL 1 ms, no stale-if-error) so
// that vendor calls happen; the ticket routes' 10 calls/s rate limits are raised for the run
// (RESILIENCE_<JIRA|ZENDESK>_<SEARCH|CREATE>_RATE_LIMIT), SF Express's 30 calls/s is kept.
package toolload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/bench/internal/aio"
	"github.com/omnibus-dev/omnibus/bench/internal/cpustat"
	"github.com/omnibus-dev/omnibus/bench/internal/stats"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/natsembed"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/audit"
	"github.com/omnibus-dev/omnibus/services/crm"
	"github.com/omnibus-dev/omnibus/services/logistics"
	"github.com/omnibus-dev/omnibus/services/oms"
	"github.com/omnibus-dev/omnibus/services/sandbox"
	"github.com/omnibus-dev/omnibus/services/ticket"
)

// Phase names.
const (
	PhaseLatency = "latency"
	PhaseErrors  = "errors"
)

// Config is one run.
type Config struct {
	Tools      []string          // which tools, in this order (default Tools)
	Phases     []string          // PhaseLatency and/or PhaseErrors (default both)
	Rate       float64           // requests/s of each tool phase, and calls/s of its baseline
	Duration   time.Duration     // how long each tool phase (and baseline) publishes
	Latency    time.Duration     // added by the sandbox to every call of the tool's routes
	ErrorRatio float64           // share of calls failed by the sandbox in the errors phase
	ErrorCodes map[string]string // vendor → injected error code (default DefaultErrorCodes)
	Baseline   bool              // measure the bare vendor calls too
	Warmup     int               // requests per tool before its first phase (not reported)
	Wait       time.Duration     // how long after a phase's last request answers are waited for
	Repeat     float64           // share of requests asking a key asked before in the phase
	Customers  int               // simulated population (SANDBOX_CUSTOMERS), where keys come from
	Seed       uint64            // workload and sandbox seed; 0 = random

	CacheTTL        time.Duration // the connectors' cache TTL; 0 leaves their defaults (10m, 30s, 60s)
	CacheStale      time.Duration // their stale-if-error window (CRM_CACHE_STALE_IF_ERROR, ...)
	TicketProvider  string        // jira or zendesk
	TicketRateLimit float64       // calls/s of the ticket search and create routes; 0 = 3 × Rate

	NATSSync    string            // embedded JetStream fsync: "always" (the all-in-one's) or a duration
	DatabaseURL string            // Postgres for the audit service; "" = a throwaway one
	Set         map[string]string // extra service variables (win over everything)
	Timeout     time.Duration     // the whole run

	// Env is the process environment: RESILIENCE_* variables set there apply (default os.LookupEnv).
	Env config.Lookup
	// Environ lists the process environment (default os.Environ), to report the overrides in effect.
	Environ  func() []string
	Log      *slog.Logger // the services' log (default: discarded)
	Progress io.Writer    // progress lines (default: discarded)
}

// Defaults returns the configuration of `go run ./bench tools` without flags.
func Defaults() Config {
	return Config{
		Tools: slices.Clone(Tools), Phases: []string{PhaseLatency, PhaseErrors},
		Rate: 100, Duration: 30 * time.Second, Latency: 10 * time.Millisecond, ErrorRatio: 0.2,
		Baseline: true, Warmup: 20, Wait: 30 * time.Second, Repeat: 0.2, Customers: 2000,
		CacheTTL: time.Millisecond, TicketProvider: "jira", NATSSync: "always", Timeout: 20 * time.Minute,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	for _, t := range c.Tools {
		if !slices.Contains(Tools, t) {
			errs = append(errs, fmt.Errorf("unknown tool %q (tools: %s)", t, strings.Join(Tools, ", ")))
		}
	}
	for _, p := range c.Phases {
		if p != PhaseLatency && p != PhaseErrors {
			errs = append(errs, fmt.Errorf("unknown phase %q (phases: latency, errors)", p))
		}
	}
	if len(c.Tools) == 0 || len(c.Phases) == 0 {
		errs = append(errs, errors.New("at least one tool and one phase"))
	}
	if c.Rate <= 0 || c.Duration <= 0 || c.Wait <= 0 || c.Timeout <= 0 {
		errs = append(errs, errors.New("rate, duration, wait and timeout must be > 0"))
	}
	if c.Latency < 0 || c.ErrorRatio < 0 || c.ErrorRatio > 1 || c.Repeat < 0 || c.Repeat >= 1 || c.Warmup < 0 {
		errs = append(errs, errors.New("latency and warmup must be >= 0, error ratio within 0..1, repeat within 0..1 (exclusive)"))
	}
	if c.Customers < 10 {
		errs = append(errs, errors.New("customers must be >= 10"))
	}
	if c.CacheTTL < 0 || c.CacheStale < 0 {
		errs = append(errs, errors.New("cache TTL and stale window must be >= 0"))
	}
	if c.TicketProvider != "jira" && c.TicketProvider != "zendesk" {
		errs = append(errs, fmt.Errorf("ticket provider %q: want jira or zendesk", c.TicketProvider))
	}
	if c.TicketRateLimit < 0 {
		errs = append(errs, errors.New("ticket rate limit must be >= 0"))
	}
	if _, _, err := natsembed.ParseSync(c.NATSSync); err != nil {
		errs = append(errs, fmt.Errorf("nats sync: %w", err))
	}
	return errors.Join(errs...)
}

// runner is one run's state.
type runner struct {
	cfg   Config
	defs  map[string]*toolDef
	w     *workload
	base  string
	adm   *admin
	dir   *direct
	bus   *bus.Client
	nc    *nats.Conn
	track sync.Map // request event id → *slot
	seen  atomic.Int64
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// Run runs the generator. The report is returned with what was measured even when err is not
// nil.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(rand.Int64N(1<<31)) + 1
	}
	codes := map[string]string{}
	for v, c := range DefaultErrorCodes {
		codes[v] = c
	}
	for v, c := range cfg.ErrorCodes {
		codes[v] = c
	}
	cfg.ErrorCodes = codes
	if cfg.TicketRateLimit == 0 {
		cfg.TicketRateLimit = 3 * cfg.Rate
	}
	if cfg.Env == nil {
		cfg.Env = os.LookupEnv
	}
	if cfg.Environ == nil {
		cfg.Environ = os.Environ
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	r := &runner{cfg: cfg, defs: toolDefs(cfg.TicketProvider)}
	rep := &Report{Setup: r.setup()}
	var err error
	if r.w, err = newWorkload(cfg.Customers, cfg.Seed, cfg.Repeat); err != nil {
		return rep, err
	}

	// The all-in-one with the chosen services on loopback.
	in, err := aio.Start(ctx, aio.Options{Name: "tools", NATSSync: cfg.NATSSync, DatabaseURL: cfg.DatabaseURL, Log: cfg.Log,
		Env: r.env(rep), Fallback: cfg.Env, Services: r.services})
	if err != nil {
		return rep, err
	}
	defer func() {
		if err := in.Close(); err != nil {
			r.logf("all-in-one stopped with %v", err)
		}
	}()
	r.base = in.Base
	r.logf("embedded NATS JetStream on %s (%s)", in.NATSURL, natsembed.SyncDescription(cfg.NATSSync))
	if cfg.DatabaseURL == "" {
		rep.Setup.Postgres = "throwaway (for the audit service)"
	}
	r.logf("all-in-one up on %s: sandbox, %s, audit", r.base, strings.Join(cfg.Tools, ", "))
	r.adm = &admin{base: r.base, hc: &http.Client{Timeout: 10 * time.Second}}
	r.dir = newDirect(r.base, cfg.TicketProvider)

	if r.nc, r.bus, err = bus.Dial(ctx, in.NATSURL, "omnibus-bench-tools", bus.WithLogger(cfg.Log)); err != nil {
		return rep, err
	}
	defer r.nc.Close()
	if err := r.subscribe(); err != nil {
		return rep, err
	}
	if err := r.waitConsumers(ctx, in.Done()); err != nil {
		return rep, err
	}

	for _, name := range cfg.Tools {
		tr := &ToolReport{Tool: name, Request: r.defs[name].requested, BaselineOp: r.defs[name].baselineOp}
		rep.Tools = append(rep.Tools, tr)
		if err := r.runTool(ctx, r.defs[name], tr); err != nil {
			rep.finish()
			return rep, fmt.Errorf("%s: %w", name, err)
		}
	}
	rep.finish()
	return rep, nil
}

func (r *runner) setup() Setup {
	c := r.cfg
	s := Setup{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), NATSSync: c.NATSSync, Postgres: "external (--database-url)",
		Rate: c.Rate, Seconds: c.Duration.Seconds(), LatencyMS: ms(c.Latency), ErrorRatio: c.ErrorRatio, ErrorCodes: map[string]string{},
		Repeat: c.Repeat, Customers: c.Customers, Seed: c.Seed, Warmup: c.Warmup, WaitSeconds: c.Wait.Seconds(),
		TicketProvider: c.TicketProvider, Baseline: c.Baseline, Settings: map[string]string{}}
	if c.CacheTTL > 0 {
		s.Caches = fmt.Sprintf("TTL %s, stale-if-error %s", c.CacheTTL, c.CacheStale)
		if c.CacheTTL <= 10*time.Millisecond && c.CacheStale == 0 {
			s.Caches = "off (" + s.Caches + "): every request that is not joined to a concurrent one for the same key calls the vendor"
		}
	} else {
		s.Caches = "the connectors' defaults"
	}
	for _, t := range c.Tools {
		for _, rt := range toolDefs(c.TicketProvider)[t].routes {
			s.ErrorCodes[rt.Vendor] = c.ErrorCodes[rt.Vendor]
		}
	}
	return s
}

// env is the services' settings, the bench's own (under the sandbox's connector settings and
// the process environment, which aio consults after it): the --set variables, then RESILIENCE_*
// variables of the process environment, then the bench's settings. It records them in the report.
func (r *runner) env(rep *Report) func(string) (string, bool) {
	c := r.cfg
	bench := map[string]string{
		"SANDBOX_SCENARIO_INTERVAL":  "0", // no simulated customers: the load is the generator's
		"SANDBOX_TCCC_CALL_INTERVAL": "0",
		"SANDBOX_CUSTOMERS":          strconv.Itoa(c.Customers),
		"SANDBOX_SEED":               strconv.FormatUint(c.Seed, 10),
		// Keep every call record: once the sandbox's record buffer is full, each call copies the
		// whole buffer under its lock (sim.Env.Record), which would slow the sandbox down mid-run.
		"SANDBOX_RECORDS": "1000000",
		"TICKET_PROVIDER": c.TicketProvider,
	}
	if c.CacheTTL > 0 {
		for _, k := range []string{"CRM_CACHE_TTL", "OMS_CACHE_TTL", "LOGISTICS_CACHE_TTL"} {
			bench[k] = c.CacheTTL.String()
		}
		for _, k := range []string{"CRM_CACHE_STALE_IF_ERROR", "OMS_CACHE_STALE_IF_ERROR", "LOGISTICS_CACHE_STALE"} {
			bench[k] = c.CacheStale.String()
		}
	}
	vendor := strings.ToUpper(c.TicketProvider)
	for _, op := range []string{"SEARCH", "CREATE"} {
		bench["RESILIENCE_"+vendor+"_"+op+"_RATE_LIMIT"] = strconv.FormatFloat(c.TicketRateLimit, 'f', -1, 64)
	}
	for k, v := range bench {
		rep.Setup.Settings[k] = v
	}
	for _, kv := range c.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "RESILIENCE_") {
			rep.Setup.Settings[k] = v + " (process environment)"
		}
	}
	for k, v := range c.Set {
		rep.Setup.Settings[k] = v + " (--set)"
	}
	return func(k string) (string, bool) {
		if v, ok := c.Set[k]; ok {
			return v, true
		}
		if strings.HasPrefix(k, "RESILIENCE_") {
			if v, ok := c.Env(k); ok {
				return v, true
			}
		}
		v, ok := bench[k]
		return v, ok
	}
}

// services are the sandbox, the chosen tools and the audit service.
func (r *runner) services() []service.Service {
	out := []service.Service{sandbox.Service()}
	for _, t := range r.cfg.Tools {
		switch t {
		case "crm":
			out = append(out, crm.Service())
		case "oms":
			out = append(out, oms.Service())
		case "logistics":
			out = append(out, logistics.Service())
		case "ticket":
			out = append(out, ticket.Service())
		}
	}
	return append(out, audit.Service())
}

// waitConsumers waits until every chosen connector consumes its requests.
func (r *runner) waitConsumers(ctx context.Context, done chan error) error {
	js := r.bus.JetStream()
	deadline := time.Now().Add(60 * time.Second)
	for _, t := range r.cfg.Tools {
		for {
			if _, err := js.Consumer(ctx, bus.StreamTool, r.defs[t].durable); err == nil {
				break
			}
			select {
			case err := <-done:
				done <- err // for Run's deferred shutdown
				return fmt.Errorf("all-in-one stopped: %w", err)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the %s connector did not start consuming within 60s", t)
			}
		}
	}
	return nil
}

// --- answers -------------------------------------------------------------------------------------

// slot is one request: when it was sent and what came back.
type slot struct {
	ph   *phaseRun
	i    int
	sent atomic.Int64 // unix ns before the publish
	ack  atomic.Int64 // ns from sent to JetStream's ack of the request
	got  atomic.Int64 // unix ns the first answer arrived on the subscription
}

// phaseRun is one tool phase's requests.
type phaseRun struct {
	tool     *toolDef
	slots    []*slot
	answered atomic.Int64
	dups     atomic.Int64
	pubErrs  atomic.Int64
	lastGot  atomic.Int64
	keys     []key
	variants []string // variant of each request
	mu       sync.Mutex
	failed   map[int]string // request index → error_code
}

// subscribe listens to every tool's answers on core NATS (each answer is seen as it is published
// to JetStream; a miss is caught by the stream scan of checkLost).
func (r *runner) subscribe() error {
	for _, t := range r.cfg.Tools {
		d := r.defs[t]
		for _, subj := range []string{d.completed, d.failed} {
			failed := subj == d.failed
			sub, err := r.nc.Subscribe(subj, func(m *nats.Msg) { r.onAnswer(m, failed) })
			if err != nil {
				return err
			}
			_ = sub.SetPendingLimits(-1, -1)
		}
	}
	return r.nc.Flush()
}

func (r *runner) onAnswer(m *nats.Msg, failed bool) {
	now := time.Now().UnixNano()
	e, err := event.Decode(m.Header, m.Data)
	if err != nil {
		return
	}
	v, ok := r.track.Load(event.CorrelationID(e))
	if !ok {
		return
	}
	s := v.(*slot)
	if !s.got.CompareAndSwap(0, now) {
		s.ph.dups.Add(1)
		return
	}
	s.ph.lastGot.Store(now)
	if failed {
		var d struct {
			ErrorCode string `json:"error_code"`
		}
		_ = event.DecodeData(e, &d)
		if d.ErrorCode == "" {
			d.ErrorCode = "(none)"
		}
		s.ph.mu.Lock()
		s.ph.failed[s.i] = d.ErrorCode
		s.ph.mu.Unlock()
	}
	s.ph.answered.Add(1)
	r.seen.Add(1)
}

// --- one tool ------------------------------------------------------------------------------------

func (r *runner) runTool(ctx context.Context, d *toolDef, tr *ToolReport) error {
	if err := r.setFaults(ctx, d, false); err != nil {
		return err
	}
	if r.cfg.Warmup > 0 {
		rate := min(r.cfg.Rate, 20)
		r.logf("%s: warm-up, %d requests at %.0f/s (not reported)", d.name, r.cfg.Warmup, rate)
		keys, repeat := r.w.keys(d.name, r.cfg.Warmup)
		ph := r.newPhase(d, keys, repeat)
		if _, err := r.publish(ctx, ph, rate); err != nil {
			return err
		}
		r.wait(ctx, ph, "warm-up")
	}
	for _, name := range r.cfg.Phases {
		p, err := r.runPhase(ctx, d, name)
		tr.Phases = append(tr.Phases, p)
		if err != nil {
			return err
		}
	}
	return r.adm.clearFaults(ctx)
}

// setFaults puts the phase's fault on every route the tool uses.
func (r *runner) setFaults(ctx context.Context, d *toolDef, errs bool) error {
	if err := r.adm.clearFaults(ctx); err != nil {
		return err
	}
	for _, rt := range d.routes {
		f := fault{}
		if r.cfg.Latency > 0 {
			f.Latency = r.cfg.Latency.String()
		}
		if errs && r.cfg.ErrorRatio > 0 {
			f.ErrorRatio, f.Code = r.cfg.ErrorRatio, r.cfg.ErrorCodes[rt.Vendor]
		}
		if f == (fault{}) {
			continue
		}
		if err := r.adm.setFault(ctx, rt.key(), f); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) faultText(d *toolDef, errs bool) map[string]string {
	out := map[string]string{}
	for _, rt := range d.routes {
		s := "latency " + r.cfg.Latency.String()
		if errs && r.cfg.ErrorRatio > 0 {
			s += fmt.Sprintf(", %.0f%% errors code %q", 100*r.cfg.ErrorRatio, r.cfg.ErrorCodes[rt.Vendor])
		}
		out[rt.key()] = s
	}
	return out
}

func (r *runner) n() int { return max(1, int(r.cfg.Rate*r.cfg.Duration.Seconds()+0.5)) }

func (r *runner) runPhase(ctx context.Context, d *toolDef, name string) (*Phase, error) {
	errs := name == PhaseErrors
	p := &Phase{Name: name, Faults: r.faultText(d, errs), FailedCodes: map[string]int{}, Connector: map[string]int64{}}
	if err := r.setFaults(ctx, d, errs); err != nil {
		return p, err
	}
	if r.cfg.Baseline {
		b, err := r.baseline(ctx, d, name)
		if err != nil {
			return p, err
		}
		p.Baseline = b
	}

	keys, repeat := r.w.keys(d.name, r.n())
	distinct := map[key]bool{}
	for _, k := range keys {
		distinct[k] = true
	}
	p.DistinctKeys = len(distinct)
	ph := r.newPhase(d, keys, repeat)
	routeKeys := make([]string, len(d.routes))
	for i, rt := range d.routes {
		routeKeys[i] = rt.key()
	}
	before, err := r.adm.routes(ctx)
	if err != nil {
		return p, err
	}
	mBefore, err := r.adm.metrics(ctx, metricCache, metricVendor)
	if err != nil {
		return p, err
	}
	peaks := r.adm.startPeaks(ctx, routeKeys)
	self0, machine0 := cpustat.Self(), cpustat.Machine()
	r.logf("%s %s: publishing %d requests at %.0f/s for %s", d.name, name, len(keys), r.cfg.Rate, r.cfg.Duration)
	start := time.Now()
	pubSecs, err := r.publish(ctx, ph, r.cfg.Rate)
	if err != nil {
		peaks.finish()
		return p, err
	}
	if len(keys) > 1 && pubSecs > 0 {
		p.PublishRate = float64(len(keys)-1) / pubSecs // n requests span n-1 intervals
	}
	lastPub := start.Add(time.Duration(pubSecs * float64(time.Second)))
	r.wait(ctx, ph, d.name+" "+name)
	self1, machine1 := cpustat.Self(), cpustat.Machine()
	if wall := time.Since(start).Seconds(); self0 >= 0 && machine0 >= 0 && self1 >= 0 && machine1 >= 0 && wall > 0 {
		p.CPU = &CPU{Cores: runtime.NumCPU(), Machine: (machine1 - machine0).Seconds() / wall, Self: (self1 - self0).Seconds() / wall}
		p.CPU.Others = max(0, p.CPU.Machine-p.CPU.Self)
	}
	peak := peaks.finish()
	after, err := r.adm.routes(ctx)
	if err != nil {
		return p, err
	}
	mAfter, err := r.adm.metrics(ctx, metricCache, metricVendor)
	if err != nil {
		return p, err
	}
	missed := r.checkLost(ctx, ph, start)

	p.Requests, p.MissedBySubscriber = len(keys), missed
	p.answers(ph, lastPub)
	p.vendorFigures(d, routeKeys, before, after, peak, mBefore, mAfter)
	if p.Baseline != nil && p.Latency != nil && p.Baseline.Latency != nil && p.Baseline.Latency.P99 > 0 {
		p.P99Ratio = p.Latency.P99 / p.Baseline.Latency.P99
		p.P99DiffMS = p.Latency.P99 - p.Baseline.Latency.P99
	}
	p.targets()
	r.logf("%s %s: %d answered (%d failed), %d lost; p50 %.1f ms p99 %.1f ms; %.2f vendor calls/request",
		d.name, name, p.Answered, p.Failed, p.Lost, p.Latency.P50, p.Latency.P99, p.VendorCallsPerRequest)
	return p, nil
}

// answers fills the phase's answer figures from its requests.
func (p *Phase) answers(ph *phaseRun, lastPub time.Time) {
	p.PublishErrors = int(ph.pubErrs.Load())
	p.Duplicates = int(ph.dups.Load())
	var lat, acks []float64
	byKind := map[string][]float64{}
	for i, s := range ph.slots {
		if a := s.ack.Load(); a > 0 {
			acks = append(acks, float64(a)/1e6)
		}
		got, sent := s.got.Load(), s.sent.Load()
		switch {
		case got > 0:
			p.Answered++
			lat = append(lat, float64(got-sent)/1e6)
			byKind[ph.variants[i]] = append(byKind[ph.variants[i]], float64(got-sent)/1e6)
		case got < 0: // found in the stream only
			p.Answered++
		default:
			p.Lost++
		}
	}
	ph.mu.Lock()
	for i, code := range ph.failed {
		if ph.slots[i].got.Load() != 0 {
			p.Failed++
			p.FailedCodes[code]++
		}
	}
	ph.mu.Unlock()
	p.Completed = p.Answered - p.Failed
	p.FailureRate = float64(p.Failed+p.Lost) / float64(max(1, p.Requests))
	p.Latency = stats.Of(lat)
	p.PublishAck = stats.Of(acks)
	p.ByKind = map[string]*Dist{}
	for k, v := range byKind {
		p.ByKind[k] = stats.Of(v)
	}
	if lg := ph.lastGot.Load(); lg > 0 {
		p.DrainSeconds = max(0, time.Unix(0, lg).Sub(lastPub).Seconds())
	}
}

// vendorFigures fills what the sandbox saw (route counters and peaks) and what the connector did
// (its vendor calls by outcome, its cache) from the snapshots taken around the phase.
func (p *Phase) vendorFigures(d *toolDef, routeKeys []string, before, after map[string]routeStats, peak map[string]int64, mBefore, mAfter []sample) {
	var calls int64
	for _, k := range routeKeys {
		rc := RouteCalls{Route: k, Calls: after[k].Stats.Calls - before[k].Stats.Calls,
			Injected: after[k].Stats.Injected - before[k].Stats.Injected, PeakPerSecond: peak[k]}
		calls += rc.Calls
		p.Vendor = append(p.Vendor, rc)
	}
	p.VendorCallsPerRequest = float64(calls) / float64(max(1, p.Requests))
	if d.cache != "" {
		c := &CacheStats{}
		for res, dst := range map[string]*int64{"hit": &c.Hit, "miss": &c.Miss, "stale": &c.Stale, "error": &c.Error} {
			m := map[string]string{"cache": d.cache, "result": res}
			*dst = int64(sum(mAfter, metricCache, m) - sum(mBefore, metricCache, m))
		}
		if t := c.Hit + c.Miss + c.Stale + c.Error; t > 0 {
			c.HitShare = float64(c.Hit) / float64(t)
		}
		p.Cache = c
	}
	vendors := map[string]bool{}
	for _, rt := range d.routes {
		vendors[rt.Vendor] = true
	}
	prev := map[string]float64{}
	for _, s := range mBefore {
		if s.name == metricVendor {
			prev[labelKey(s.labels)] += s.value
		}
	}
	for _, s := range mAfter {
		if s.name != metricVendor || !vendors[s.labels["vendor"]] {
			continue
		}
		k := s.labels["vendor"] + "." + s.labels["op"] + " " + s.labels["outcome"]
		if c := s.labels["code"]; c != "" && s.labels["outcome"] != "ok" {
			k += " " + c
		}
		if v := int64(s.value - prev[labelKey(s.labels)]); v > 0 {
			p.Connector[k] += v
		}
	}
}

const (
	metricCache  = "omnibus_cache_requests_total"
	metricVendor = "omnibus_vendor_calls_total"
)

func (r *runner) newPhase(d *toolDef, keys []key, repeat []bool) *phaseRun {
	ph := &phaseRun{tool: d, keys: keys, slots: make([]*slot, len(keys)), variants: make([]string, len(keys)), failed: map[int]string{}}
	for i, k := range keys {
		ph.slots[i] = &slot{ph: ph, i: i}
		ph.variants[i] = variant(d.name, k, repeat[i])
	}
	return ph
}

// publish sends the phase's requests at rate, each from its own goroutine so that a slow publish
// does not delay the next one. It returns the seconds from the first to the last send.
func (r *runner) publish(ctx context.Context, ph *phaseRun, rate float64) (float64, error) {
	type job struct {
		i int
		e event.Event
	}
	jobs := make([]job, len(ph.keys))
	for i, k := range ph.keys {
		id, err := uuid.NewV7()
		if err != nil {
			return 0, err
		}
		conv := r.w.uuid()
		e, err := event.New(ph.tool.requested, "/bench/tools", requestData(ph.tool.name, k, conv), event.WithID(id.String()),
			event.WithSubject(k.CustomerID))
		if err != nil {
			return 0, err
		}
		jobs[i] = job{i, e}
		r.track.Store(e.ID(), ph.slots[i])
	}
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	start := time.Now()
	var last time.Time
	for i, j := range jobs {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
				wg.Wait()
				return 0, ctx.Err()
			case <-time.After(wait):
			}
		}
		sem <- struct{}{}
		wg.Add(1)
		last = time.Now()
		go func() {
			defer func() { <-sem; wg.Done() }()
			s := ph.slots[j.i]
			s.sent.Store(time.Now().UnixNano())
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := r.bus.Publish(pctx, ph.tool.requested, j.e); err != nil {
				ph.pubErrs.Add(1)
				r.logf("publish %s: %v", j.e.ID(), err)
			} else {
				s.ack.Store(time.Now().UnixNano() - s.sent.Load())
			}
		}()
	}
	wg.Wait()
	return last.Sub(start).Seconds(), nil
}

// wait waits until every request of the phase was answered (or could not be published), at
// most Wait.
func (r *runner) wait(ctx context.Context, ph *phaseRun, what string) {
	deadline := time.Now().Add(r.cfg.Wait)
	lastLog := time.Now()
	n := int64(len(ph.slots))
	for ph.answered.Load()+ph.pubErrs.Load() < n {
		if time.Now().After(deadline) {
			r.logf("%s: %d of %d requests unanswered after %s", what, n-ph.answered.Load(), n, r.cfg.Wait)
			return
		}
		if time.Since(lastLog) > 3*time.Second {
			r.logf("%s: waiting for answers, %d of %d", what, ph.answered.Load(), n)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// checkLost looks in OMNI_TOOL for the answers of requests the subscription did not see: an
// answer stored but missed counts as answered (without a latency sample, got = -1); the rest are
// lost. It returns how many the subscription missed.
func (r *runner) checkLost(ctx context.Context, ph *phaseRun, since time.Time) int {
	missing := map[string]*slot{}
	r.track.Range(func(k, v any) bool {
		if s := v.(*slot); s.ph == ph && s.got.Load() == 0 {
			missing[k.(string)] = s
		}
		return true
	})
	if len(missing) == 0 {
		return 0
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := since.Add(-time.Second)
	c, err := r.bus.JetStream().OrderedConsumer(sctx, bus.StreamTool, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{ph.tool.completed, ph.tool.failed}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start})
	if err != nil {
		r.logf("stream scan: %v", err)
		return 0
	}
	found := 0
	for {
		batch, err := c.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			r.logf("stream scan: %v", err)
			return found
		}
		more := false
		for m := range batch.Messages() {
			more = true
			if e, err := event.Decode(m.Headers(), m.Data()); err == nil {
				if s, ok := missing[event.CorrelationID(e)]; ok && s.got.CompareAndSwap(0, -1) {
					found++
					if m.Subject() == ph.tool.failed {
						var d struct {
							ErrorCode string `json:"error_code"`
						}
						_ = event.DecodeData(e, &d)
						ph.mu.Lock()
						ph.failed[s.i] = d.ErrorCode
						ph.mu.Unlock()
					}
				}
			}
			if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
				more = false
			}
		}
		if !more || sctx.Err() != nil {
			return found
		}
	}
}

// baseline makes the phase's bare vendor calls: as many as the tool phase's requests, at the
// same rate, with keys of the same kinds.
func (r *runner) baseline(ctx context.Context, d *toolDef, phase string) (*Baseline, error) {
	if err := r.dir.prepare(ctx, d.name); err != nil {
		return nil, err
	}
	keys, _ := r.w.keys(d.name, r.n())
	r.logf("%s %s: baseline, %d bare vendor calls at %.0f/s", d.name, phase, len(keys), r.cfg.Rate)
	lat := make([]float64, len(keys))
	var failed atomic.Int64
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	start := time.Now()
	for i, k := range keys {
		due := start.Add(time.Duration(float64(i) / r.cfg.Rate * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
				wg.Wait()
				return nil, ctx.Err()
			case <-time.After(wait):
			}
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			t0 := time.Now()
			err := r.dir.call(cctx, d.name, k)
			lat[i] = float64(time.Since(t0).Microseconds()) / 1000
			if err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	b := &Baseline{Calls: len(keys), VendorErrors: int(failed.Load()), Latency: stats.Of(lat), Op: d.baselineOp}
	b.ErrorShare = float64(b.VendorErrors) / float64(max(1, b.Calls))
	return b, nil
}

// labelKey is a canonical form of a label set.
func labelKey(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + l[k] + "\x00")
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
