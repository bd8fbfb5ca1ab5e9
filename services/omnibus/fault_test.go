//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/pgembed"
	"github.com/omnibus-dev/omnibus/services/omnibus/internal/faultload"
)

// The fault suite's settings, read from the environment (durations as "20s", "3m").
const (
	// faultEnvOutage is how long Postgres stays stopped: longer than the consumers' whole retry
	// backoff (bus.DefaultBackoff sums to about 2.6 min), so a consumer that retries instead of
	// pausing dead-letters. 20s while developing, 10m for the long tier.
	faultEnvOutage = "OMNIBUS_FAULT_PG_OUTAGE"
	// faultEnvPause is how long Postgres is frozen with SIGSTOP.
	faultEnvPause = "OMNIBUS_FAULT_PG_PAUSE"
	// faultEnvRate is the SMS uplinks the load pushes per second.
	faultEnvRate = "OMNIBUS_FAULT_RATE"
)

// TestFaultSuite is "nothing lost, nothing stranded": the all-in-one binary runs as a subprocess
// on its own data directory and ports, with a Postgres the test controls, while a load tool
// plays Aliyun and pushes SMS uplinks (the real SmsUp wire format, with the push URL's token) at
// a steady rate, each with a unique sequence_id, keeping a ledger of what the sms connector
// acknowledged. Under that load the suite
//
//  1. stops Postgres for longer than the consumers' whole retry backoff, then starts it again;
//  2. freezes Postgres (SIGSTOP on its process group) for a while, then thaws it (SIGCONT);
//  3. kills the all-in-one with kill -9, twice, restarting it on the same data directory;
//  4. makes SF Express fail on the logistics connector's quiet route until the route's
//     vendor_failure_ratio alert is raised, heals it, and waits for the alert to resolve;
//  5. redrives whatever OMNI_DLQ holds (when the faults left it empty, copies of the dead letters
//     OMNI_IN's consumers would write for a few processed messages);
//
// then stops the load, lets the system settle, and holds the ledger against OMNI_IN (each
// acknowledged id stored once, no event stored twice), the unifier's messages table, OMNI_DESK
// (one omni.desk.message.added per message) and OMNI_DLQ (empty). Nothing is timed: every wait
// polls with a generous deadline. The default run takes about six minutes.
func TestFaultSuite(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("the fault suite runs for minutes; skipped with -short")
	}
	s := newFaultSuite(t)
	s.run()
}

type faultSettings struct {
	outage, pause time.Duration
	rate          float64
	kills         int
}

func faultSettingsFromEnv(t *testing.T) faultSettings {
	t.Helper()
	fs := faultSettings{outage: 3 * time.Minute, pause: 20 * time.Second, rate: 25, kills: 2}
	for name, dst := range map[string]*time.Duration{faultEnvOutage: &fs.outage, faultEnvPause: &fs.pause} {
		if v := os.Getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				t.Fatalf("%s=%q: want a positive duration such as 20s or 3m", name, v)
			}
			*dst = d
		}
	}
	if v := os.Getenv(faultEnvRate); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 || r > 500 {
			t.Fatalf("%s=%q: want messages per second in (0, 500]", faultEnvRate, v)
		}
		fs.rate = r
	}
	return fs
}

// faultStep is one fault, for the report.
type faultStep struct {
	name      string
	start     time.Time
	healed    time.Duration // from start: the fault is over (server back, process ready, route healed)
	recovered time.Duration // from start: caught up (see the step)
	backlog   uint64        // acknowledged messages the desk had not heard of when the fault healed
	ledger    faultload.LedgerStats
	note      string
}

type faultSuite struct {
	t        *testing.T
	ctx      context.Context
	cfg      faultSettings
	dir      string
	base     string
	pg       *faultload.Postgres
	aio      *faultload.AllInOne
	nc       *nats.Conn
	bus      *bus.Client
	db       *pgxpool.Pool
	load     *faultload.Load
	checker  *faultload.Checker
	steps    []faultStep
	runStart time.Time

	// The quiet route's alert (step 4), followed until it resolves.
	alertID    string
	alertStep  int           // index of its step in steps
	trickle    chan struct{} // closed by stopTrickle: no more calls on the healed route
	trickleEnd sync.Once
	trickleWG  sync.WaitGroup
	trickleOK  atomic.Int64
	trickleErr atomic.Int64
}

// newFaultSuite starts Postgres, builds and starts the all-in-one, connects to its NATS and
// starts the load.
func newFaultSuite(t *testing.T) *faultSuite {
	t.Helper()
	cfg := faultSettingsFromEnv(t)
	// The run takes the outage, the pause and a couple of minutes besides, and at least the quiet
	// route's five-minute window; need adds some slack.
	need := max(cfg.outage+cfg.pause+2*time.Minute, 6*time.Minute)
	budget := need + 10*time.Minute
	if dl, ok := t.Deadline(); ok {
		left := time.Until(dl) - 20*time.Second
		if left < need {
			t.Fatalf("the fault suite needs about %s (%s=%s) but the test binary's -timeout leaves %s: run go test with -timeout 20m, or shorten %s",
				need.Round(time.Second), faultEnvOutage, cfg.outage, left.Round(time.Second), faultEnvOutage)
		}
		budget = min(budget, left)
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	t.Cleanup(cancel)
	s := &faultSuite{t: t, ctx: ctx, cfg: cfg, dir: t.TempDir(), trickle: make(chan struct{})}
	t.Logf("fault suite: Postgres outage %s, pause %s, %g messages/s, %d kills (settings %s, %s, %s)",
		cfg.outage, cfg.pause, cfg.rate, cfg.kills, faultEnvOutage, faultEnvPause, faultEnvRate)

	// Postgres, which the test stops, starts, pauses and resumes.
	pgctx, pgcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer pgcancel()
	pg, err := faultload.StartPostgres(pgctx, filepath.Join(s.dir, "pg"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); errors.Is(err, pgembed.ErrNoBinaries) && !ci {
			t.Skipf("the fault suite needs PostgreSQL (apt-get install -y postgresql): %v", err)
		}
		t.Fatalf("postgres: %v", err)
	}
	s.pg = pg
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pg.Close(ctx); err != nil {
			t.Logf("stopping postgres: %v", err)
		}
	})

	// The all-in-one, built as an operator would and run as a subprocess.
	bin := filepath.Join(s.dir, "omnibus")
	goBin, err := exec.LookPath("go") // go test puts its GOROOT/bin first on PATH
	if err != nil {
		t.Fatalf("the fault suite builds the all-in-one: %v", err)
	}
	bctx, bcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer bcancel()
	began := time.Now()
	if out, err := exec.CommandContext(bctx, goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -o %s ./services/omnibus: %v\n%s", bin, err, out)
	}
	t.Logf("built the all-in-one in %s", time.Since(began).Round(time.Millisecond))
	httpAddr, natsAddr := faultFreeAddr(t), faultFreeAddr(t)
	s.base = "http://" + httpAddr
	s.aio = &faultload.AllInOne{Bin: bin, HTTPAddr: httpAddr, LogDir: s.dir, Env: faultEnv(map[string]string{
		"OMNIBUS_DATA_DIR":  filepath.Join(s.dir, "data"),
		"OMNIBUS_HTTP_ADDR": httpAddr,
		"OMNIBUS_NATS_ADDR": natsAddr,
		"DATABASE_URL":      pg.URL(),
		// The sandbox stays on: it is the vendors (Aliyun, SF Express, Salesforce for the
		// unifier's CRM lookups). Its customers and the demo's stay quiet: only the load writes.
		"OMNIBUS_SIMULATE":           "true",
		"OMNIBUS_SIM_INTERVAL":       "1h",
		"SANDBOX_SCENARIO_INTERVAL":  "0",
		"SANDBOX_TCCC_CALL_INTERVAL": "0",
		"EXAMPLE_SECRET":             "fault-suite",
		// The load pushes with the sandbox's fixed token (the demo would generate one per data
		// dir), from one address at OMNIBUS_FAULT_RATE: the webhook rate limit is off for it.
		"SMS_WEBHOOK_TOKEN": faultload.SandboxSMSToken,
		"RATE_WEBHOOK":      "off",
		"VOICE_SIP_LISTEN":  "127.0.0.1:0", // beside the other all-in-one tests: no fixed SIP port
		"LOG_LEVEL":         "info",
	})}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.aio.Stop(ctx); err != nil {
			t.Logf("stopping the all-in-one: %v", err)
		}
		if t.Failed() {
			s.keepLogs()
		}
	})
	began = time.Now()
	if err := s.aio.Start(); err != nil {
		t.Fatal(err)
	}
	s.waitReady("the all-in-one")
	t.Logf("all-in-one ready in %s (http %s, nats %s, postgres %s)", time.Since(began).Round(time.Millisecond), httpAddr, natsAddr, pg.URL())

	// The test's own view: NATS (reconnecting through the restarts) and Postgres.
	s.nc, err = nats.Connect("nats://"+natsAddr, adminNkey(t, filepath.Join(s.dir, "data")), nats.Name("fault-suite"), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	t.Cleanup(s.nc.Close)
	if s.bus, err = bus.Connect(s.nc); err != nil {
		t.Fatal(err)
	}
	pcfg, err := pgxpool.ParseConfig(pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MaxConns, pcfg.ConnConfig.ConnectTimeout = 2, 3*time.Second
	pcfg.ConnConfig.RuntimeParams["application_name"] = "fault-suite"
	if s.db, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.db.Close)

	// The load.
	if s.load, err = faultload.StartLoad(faultload.LoadConfig{Base: s.base, Rate: cfg.rate}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.load.Stop(ctx)
	})
	t.Cleanup(s.stopTrickle)
	s.checker = &faultload.Checker{JS: s.bus.JetStream(), DB: s.db, DeadLetters: s.bus, Prefix: s.load.Prefix()}
	return s
}

func (s *faultSuite) run() {
	t := s.t
	s.runStart = time.Now()

	// Flowing: the connector acknowledges, the unifier stores, the desk hears of it.
	s.waitFor("the load flowing to the desk", 3*time.Minute, func() bool {
		c, err := s.counts()
		return err == nil && s.load.Ledger().Stats().Acked >= int(2*s.cfg.rate) && c.Desk >= 1
	})
	t.Logf("load flowing after %s: %s; %s", s.since(), s.load.Ledger().Stats(), s.mustCounts())

	// 4a first: the route's alert needs its five-minute window to empty before it resolves, so
	// it fails and heals now and resolves while the other faults run.
	s.failQuietRoute()
	// Each fault starts after a spell of steady load.
	s.steady()
	s.stepPGOutage()
	s.steady()
	s.stepPGPause()
	for i := range s.cfg.kills {
		s.steady()
		s.stepKill(i + 1)
	}
	s.stepRedrive()
	s.waitRouteResolved()
	s.settle()
	s.report()
}

// ---- 4. a vendor fails and recovers on a quiet route ----

// failQuietRoute fails SF Express on the logistics connector's route query until the route's
// alert is raised, then heals it and keeps a trickle of successful calls going.
//
// It waits for pkg/alert's rules (package doc): a raise needs at least MinCalls (100) calls in
// the window (5 min) with ≥ 1 % failures — so 100 successful lookups come first and a handful of
// failing ones raise it; the quiet-route resolve needs fewer than MinCalls calls in the window
// (the 100 have aged out), at least RecoveryCalls (3) successes since the last failure and a
// QuietPeriod (1 min) without one. The resolve is awaited by waitRouteResolved.
func (s *faultSuite) failQuietRoute() {
	t := s.t
	step := faultStep{name: "SF Express fails on a quiet route", start: time.Now()}
	before := s.load.Ledger().Stats()
	var conv, customer string
	s.waitFor("a conversation to track parcels for", time.Minute, func() bool {
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		defer cancel()
		return s.db.QueryRow(ctx, `SELECT id::text, customer_id::text FROM conversations ORDER BY opened_at LIMIT 1`).Scan(&conv, &customer) == nil
	})
	n := 0
	request := func() (string, error) {
		n++
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		defer cancel()
		return faultload.RequestRoute(ctx, s.bus, conv, customer, fmt.Sprintf("SF9%s%06d", s.load.Prefix()[len(s.load.Prefix())-6:], n))
	}
	// 100 successful lookups, one at a time so that the connector makes one call each.
	warm := map[string]bool{}
	for range 100 {
		id, err := request()
		if err != nil {
			t.Fatalf("tracking request: %v", err)
		}
		warm[id] = true
		time.Sleep(100 * time.Millisecond)
	}
	var outcomes map[string]string
	s.waitFor("100 lookups answered", 3*time.Minute, func() bool {
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		var err error
		outcomes, err = faultload.RouteOutcomes(ctx, s.bus.JetStream(), warm)
		return err == nil && len(outcomes) == len(warm)
	})
	completed := 0
	for _, o := range outcomes {
		if o == "completed" {
			completed++
		}
	}
	if completed < len(warm) {
		t.Logf("warm-up: %d of %d lookups completed before the fault", completed, len(warm))
	}

	// Fail the route and send a handful of lookups until the alert is raised.
	fault := map[string]any{"error_ratio": 1, "code": faultload.RouteFailCode}
	if err := faultload.SetFault(s.ctx, s.base, faultload.RouteFaultKey, fault); err != nil {
		t.Fatal(err)
	}
	failAt := time.Now()
	failing := 0
	var raised faultload.Alert
	s.waitFor("omni.ops.alert.raised for logistics sfexpress route_query", 3*time.Minute, func() bool {
		if a, ok := s.routeAlert(true, ""); ok {
			raised = a
			return true
		}
		if _, err := request(); err == nil {
			failing++
		}
		time.Sleep(time.Second)
		return false
	})
	s.alertID = raised.AlertID
	step.note = fmt.Sprintf("raised %s after %d failing lookups (%s); ", time.Since(failAt).Round(time.Millisecond), failing, raised.Summary)

	// Heal it, and keep a few successful calls going (one every 10 s) until it resolves.
	if err := faultload.SetFault(s.ctx, s.base, faultload.RouteFaultKey, nil); err != nil {
		t.Fatal(err)
	}
	step.healed = time.Since(step.start)
	step.ledger = s.load.Ledger().Stats().Sub(before)
	s.trickleWG.Add(1)
	go func() {
		defer s.trickleWG.Done()
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			if _, err := request(); err != nil {
				s.trickleErr.Add(1) // NATS down while the all-in-one restarts
			} else {
				s.trickleOK.Add(1)
			}
			select {
			case <-s.trickle:
				return
			case <-s.ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	s.steps = append(s.steps, step)
	s.alertStep = len(s.steps) - 1
	t.Logf("route alert raised (%s) and the route healed after %s", raised.AlertID, step.healed.Round(time.Millisecond))
}

// waitRouteResolved waits for omni.ops.alert.resolved of the route's alert.
func (s *faultSuite) waitRouteResolved() {
	t := s.t
	defer s.stopTrickle()
	step := &s.steps[s.alertStep]
	var resolved faultload.Alert
	// The window is 5 minutes; the resolve needs the 100 warm-up calls out of it.
	s.waitFor("omni.ops.alert.resolved for the route's alert "+s.alertID, 9*time.Minute, func() bool {
		a, ok := s.routeAlert(false, s.alertID)
		resolved = a
		if !ok {
			time.Sleep(2 * time.Second)
		}
		return ok
	})
	step.recovered = resolved.Stored.Sub(step.start)
	step.note += fmt.Sprintf("resolved %s after the heal, %d successful lookups since (%s)",
		(step.recovered - step.healed).Round(time.Second), s.trickleOK.Load(), resolved.Summary)
	t.Logf("route alert resolved: %s", resolved.Summary)
}

// stopTrickle stops the calls on the healed route and waits for the last one.
func (s *faultSuite) stopTrickle() {
	s.trickleEnd.Do(func() { close(s.trickle) })
	s.trickleWG.Wait()
}

// routeAlert returns the route's latest raise (raised) or the resolve of alert id.
func (s *faultSuite) routeAlert(raised bool, id string) (faultload.Alert, bool) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	alerts, err := faultload.Alerts(ctx, s.bus.JetStream())
	if err != nil {
		return faultload.Alert{}, false
	}
	for i := len(alerts) - 1; i >= 0; i-- {
		a := alerts[i]
		if a.OnRoute() && a.Raised() == raised && (id == "" || a.AlertID == id) {
			return a, true
		}
	}
	return faultload.Alert{}, false
}

// ---- 1. Postgres outage ----

func (s *faultSuite) stepPGOutage() {
	t := s.t
	step := faultStep{name: fmt.Sprintf("Postgres stopped %s", s.cfg.outage), start: time.Now()}
	before := s.load.Ledger().Stats()
	dlqBefore := s.mustCounts().DeadLetters
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	if err := s.pg.Stop(ctx); err != nil {
		t.Logf("stopping postgres: %v", err)
	}
	cancel()
	s.sleep(s.cfg.outage)
	ctx, cancel = context.WithTimeout(s.ctx, 2*time.Minute)
	if err := s.pg.Start(ctx); err != nil {
		t.Fatalf("starting postgres again: %v", err)
	}
	cancel()
	step.healed = time.Since(step.start)
	s.catchUp(&step, before)
	// A consumer with Postgres as a dependency pauses through the outage; one that retries
	// exhausts its backoff (bus.DefaultBackoff, about 2.6 min) and dead-letters.
	if c := s.mustCounts(); c.DeadLetters > dlqBefore {
		s.reportDeadLetters(&step, "the Postgres outage", c.DeadLetters-dlqBefore)
	}
	s.steps = append(s.steps, step)
}

// ---- 2. Postgres frozen ----

func (s *faultSuite) stepPGPause() {
	t := s.t
	step := faultStep{name: fmt.Sprintf("Postgres frozen (SIGSTOP) %s", s.cfg.pause), start: time.Now()}
	before := s.load.Ledger().Stats()
	dlqBefore := s.mustCounts().DeadLetters
	if err := s.pg.Pause(); err != nil {
		t.Fatalf("SIGSTOP postgres: %v", err)
	}
	s.sleep(s.cfg.pause)
	if err := s.pg.Resume(); err != nil {
		t.Fatalf("SIGCONT postgres: %v", err)
	}
	step.healed = time.Since(step.start)
	s.catchUp(&step, before)
	if c := s.mustCounts(); c.DeadLetters > dlqBefore {
		s.reportDeadLetters(&step, "freezing Postgres", c.DeadLetters-dlqBefore)
	}
	s.steps = append(s.steps, step)
}

// ---- 3. kill -9 ----

func (s *faultSuite) stepKill(n int) {
	t := s.t
	step := faultStep{name: fmt.Sprintf("kill -9 of the all-in-one (%d)", n), start: time.Now()}
	before := s.load.Ledger().Stats()
	if err := s.aio.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.aio.Start(); err != nil {
		t.Fatal(err)
	}
	s.waitReady("the all-in-one after kill -9")
	step.healed = time.Since(step.start)
	s.catchUp(&step, before)
	s.steps = append(s.steps, step)
}

// ---- 5. redrive ----

func (s *faultSuite) stepRedrive() {
	t := s.t
	step := faultStep{name: "redrive OMNI_DLQ", start: time.Now()}
	before := s.load.Ledger().Stats()
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	letters, err := s.bus.ListDeadLetters(ctx, bus.DeadLetterFilter{})
	if err != nil {
		t.Fatalf("listing dead letters: %v", err)
	}
	injected := ""
	if len(letters) == 0 {
		// The faults dead-lettered nothing: what every consumer of OMNI_IN would write for a few
		// messages it gave up on is redriven instead — the case where `dlq redrive --all` once
		// put an event into OMNI_IN once per dead letter.
		nl, nm, err := faultload.DeadLetterCopies(ctx, s.bus.JetStream(), s.load.Prefix(), 5)
		if err != nil {
			t.Fatalf("writing dead letters: %v", err)
		}
		if nm == 0 {
			t.Fatalf("no message of the load in OMNI_IN to dead-letter")
		}
		injected = fmt.Sprintf(" (none from the faults; %d written as OMNI_IN's consumers would for %d processed messages)", nl, nm)
		if letters, err = s.bus.ListDeadLetters(ctx, bus.DeadLetterFilter{}); err != nil {
			t.Fatalf("listing dead letters: %v", err)
		}
	}
	n, err := s.bus.Redrive(ctx, bus.DeadLetterFilter{})
	if err != nil {
		t.Errorf("redrive: %v", err)
	}
	if n != len(letters) {
		t.Errorf("redrive handed back %d of %d dead letters", n, len(letters))
	}
	step.note = fmt.Sprintf("%d dead letters%s, %d redriven", len(letters), injected, n)
	step.healed = time.Since(step.start)
	if len(letters) > 0 {
		// Redriven messages go back to the consumer that failed them (OMNI_REDRIVE), not to
		// OMNI_IN: the final check counts every OMNI_IN id once.
		s.waitFor("OMNI_DLQ and OMNI_REDRIVE empty after the redrive", 3*time.Minute, func() bool {
			c, err := s.counts()
			if err != nil || c.DeadLetters != 0 {
				return false
			}
			left, err := faultload.StoredCount(s.ctx, s.bus.JetStream(), bus.StreamRedrive, ">")
			return err == nil && left == 0
		})
	}
	s.catchUp(&step, before)
	s.steps = append(s.steps, step)
}

// ---- settle and check ----

// settle stops the load, waits until every message sent was acknowledged, then until the
// system holds every acknowledged message.
func (s *faultSuite) settle() {
	t := s.t
	step := faultStep{name: "stop the load and settle", start: time.Now()}
	before := s.load.Ledger().Stats()
	ctx, cancel := context.WithTimeout(s.ctx, 3*time.Minute)
	if err := s.load.Stop(ctx); err != nil {
		t.Error(err)
	}
	cancel()
	step.healed = time.Since(step.start)
	acked := s.load.Ledger().Stats().Acked
	s.waitFor("the system to hold every acknowledged message", 5*time.Minute, func() bool {
		c, err := s.counts()
		return err == nil && c.Inbound >= uint64(acked) && c.Store >= uint64(acked) && c.Desk >= uint64(acked) && c.DeadLetters == 0
	})
	step.recovered = time.Since(step.start)
	step.ledger = s.load.Ledger().Stats().Sub(before)
	s.steps = append(s.steps, step)
}

// report runs the checker (again, until it passes or a deadline: counts can lead ids) and logs
// the ledger's figures and the steps' timings.
func (s *faultSuite) report() {
	t := s.t
	var rep faultload.Report
	checked := false
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(s.ctx, 2*time.Minute)
		r, err := s.checker.Check(ctx, s.load.Ledger())
		cancel()
		if err != nil {
			t.Logf("check: %v", err)
		} else {
			rep, checked = r, true
			if r.OK() {
				break
			}
		}
		if time.Now().After(deadline) || s.ctx.Err() != nil {
			break
		}
		time.Sleep(5 * time.Second)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "fault suite ledger after %s:\n%s\n", s.since(), rep)
	fmt.Fprintf(&b, "steps (healed / caught up, from the step's start):")
	for _, st := range s.steps {
		fmt.Fprintf(&b, "\n  %-36s healed %7s  caught up %8s  backlog %5d  pushes %5d, not acknowledged %4d (%s)", st.name,
			st.healed.Round(100*time.Millisecond), st.recovered.Round(100*time.Millisecond), st.backlog, st.ledger.Pushes, st.ledger.Retries(), faultAnswers(st.ledger))
		if st.note != "" {
			fmt.Fprintf(&b, "\n      %s", st.note)
		}
	}
	if lines, n := s.aio.Grep("consumer paused", 3); n > 0 {
		fmt.Fprintf(&b, "\nthe all-in-one logged %d consumer pauses, e.g.:\n  %s", n, strings.Join(lines, "\n  "))
	}
	t.Log(b.String())
	if !checked {
		t.Fatal("the checker could not read the system")
	}
	if !rep.OK() {
		t.Errorf("the system does not hold the ledger:\n%s", rep)
	}
}

// ---- helpers ----

// catchUp waits until the desk has an omni.desk.message.added (or OMNI_DLQ a dead letter) for
// every message acknowledged when the step healed, and records the step's figures.
func (s *faultSuite) catchUp(step *faultStep, before faultload.LedgerStats) {
	target := uint64(s.load.Ledger().Stats().Acked)
	if c, err := s.counts(); err == nil && c.Desk+c.DeadLetters < target {
		step.backlog = target - c.Desk - c.DeadLetters
	}
	s.waitFor(fmt.Sprintf("%s: the desk to catch up with %d acknowledged messages", step.name, target), 5*time.Minute+s.cfg.outage, func() bool {
		c, err := s.counts()
		return err == nil && c.Desk+c.DeadLetters >= target
	})
	step.recovered = time.Since(step.start)
	step.ledger = s.load.Ledger().Stats().Sub(before)
	s.t.Logf("%s: healed after %s (the desk %d behind), caught up after %s; %s", step.name, step.healed.Round(time.Millisecond),
		step.backlog, step.recovered.Round(time.Millisecond), s.mustCounts())
}

// reportDeadLetters fails the test for messages dead-lettered during a Postgres fault: consumers
// whose dependency is down must pause and hold them instead.
func (s *faultSuite) reportDeadLetters(step *faultStep, what string, n uint64) {
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	letters, _ := s.bus.ListDeadLetters(ctx, bus.DeadLetterFilter{})
	byConsumer := map[string]int{}
	var reason string
	for _, d := range letters {
		byConsumer[d.Consumer]++
		if reason == "" {
			reason = d.Reason
		}
	}
	step.note = fmt.Sprintf("%d dead-lettered (by consumer %v; e.g. %q)", n, byConsumer, reason)
	s.t.Errorf("%s dead-lettered %d messages (by consumer %v), e.g. %q: a consumer whose Postgres is down must pause, not dead-letter",
		what, n, byConsumer, reason)
}

func (s *faultSuite) counts() (faultload.Counts, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	return s.checker.Counts(ctx)
}

func (s *faultSuite) mustCounts() faultload.Counts {
	var c faultload.Counts
	s.waitFor("the counts (NATS and Postgres answering)", 2*time.Minute, func() bool {
		var err error
		c, err = s.counts()
		return err == nil
	})
	return c
}

// waitFor polls cond every second until it holds; past the deadline, or when the suite's time
// is up, the test fails.
func (s *faultSuite) waitFor(what string, within time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) || s.ctx.Err() != nil {
			s.t.Fatalf("gave up after %s waiting for %s; counts: %s; ledger: %s; all-in-one log %s, last lines:\n%s",
				within, what, s.countsText(), s.load.Ledger().Stats(), s.aio.LastLog(), s.aio.Tail(30))
		}
		time.Sleep(time.Second)
	}
}

func (s *faultSuite) countsText() string {
	c, err := s.counts()
	if err != nil {
		return err.Error()
	}
	return c.String()
}

func (s *faultSuite) waitReady(what string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 3*time.Minute)
	defer cancel()
	if err := s.aio.WaitReady(ctx); err != nil {
		s.t.Fatalf("%s: %v; last lines of %s:\n%s", what, err, s.aio.LastLog(), s.aio.Tail(40))
	}
}

func (s *faultSuite) sleep(d time.Duration) {
	select {
	case <-time.After(d):
	case <-s.ctx.Done():
		s.t.Fatalf("the suite's time ran out: %v", s.ctx.Err())
	}
}

// steady lets the load run undisturbed for a while.
func (s *faultSuite) steady() { s.sleep(10 * time.Second) }

func (s *faultSuite) since() time.Duration { return time.Since(s.runStart).Round(time.Second) }

// keepLogs copies the all-in-one's logs to $OMNIBUS_ARTIFACTS/omnibus-faults (default
// <repository>/artifacts/omnibus-faults), since the test's temporary directory goes away.
func (s *faultSuite) keepLogs() {
	dir := os.Getenv("OMNIBUS_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts")
	}
	dir = filepath.Join(dir, "omnibus-faults")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Logf("keeping the logs: %v", err)
		return
	}
	for _, p := range s.aio.Logs() {
		if b, err := os.ReadFile(p); err == nil {
			_ = os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644)
		}
	}
	s.t.Logf("the all-in-one's logs are in %s", dir)
}

func faultAnswers(l faultload.LedgerStats) string {
	var parts []string
	for a, n := range l.Answers {
		parts = append(parts, fmt.Sprintf("%s×%d", a, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// faultEnv is this process's environment without the all-in-one's own settings, plus set.
func faultEnv(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OMNIBUS_") || strings.HasPrefix(k, "SANDBOX_") || k == "NATS_URL" || k == "DATABASE_URL" ||
			k == "LOG_LEVEL" || k == "LOG_FORMAT" {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// faultFreeAddr returns a loopback address with a port that is free now.
func faultFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
