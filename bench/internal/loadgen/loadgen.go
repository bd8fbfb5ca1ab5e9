// Package loadgen is the unifier's load generator, `go run ./bench`: in one process it starts an
// embedded NATS JetStream and a throwaway Postgres, runs the unifier as the all-in-one does,
// publishes a realistic omnichannel workload and measures, in one run:
//
//   - raw ceilings on the same machine: JetStream publish+consume doing no work, and a batched
//     Postgres insert pipeline of the same rows;
//   - sustained throughput at a requested rate (desk omni.desk.message.added events per second)
//     and the ingest→desk-event latency of every event;
//   - the catch-up rate over a backlog published while the unifier was stopped;
//   - that every event was applied exactly once, replays included.
//
// Everything is loopback, bounded in time and count, and shut down at the end.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/bench/internal/cpustat"
	"github.com/omnibus-dev/omnibus/bench/internal/stats"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/natsembed"
	"github.com/omnibus-dev/omnibus/pkg/pgembed"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/telemetry"
	"github.com/omnibus-dev/omnibus/services/unifier"
)

// Config is one bench run.
type Config struct {
	Events       int     // events published at Rate while the unifier runs
	Rate         float64 // events/s; 0 = as fast as the publishers go
	Backlog      int     // events published while the unifier is stopped, then caught up
	Customers    int     // distinct customers the events are spread over
	CrossChannel float64 // share of customers writing on wechatkf, sms and webchat with one phone
	Duplicates   float64 // share of events re-published with a fresh Nats-Msg-Id (a replay)
	Statuses     float64 // delivery statuses of agents' replies published per inbound message (0 to 1)
	// StatusUpdates makes every status the first of a new reply ("sent", with its recipient and
	// body), followed by this many later statuses of it (0 to 2: "delivered", "read"), as a
	// channel reports a reply an agent sent.
	StatusUpdates int
	Publishers    int    // publisher goroutines
	Chunk         int    // events per PublishBatch (smaller when Rate paces them)
	Seed          uint64 // workload seed; 0 = random

	Batch   int // UNIFIER_BATCH; 0 = from Env, else the unifier's default
	Workers int // UNIFIER_WORKERS; 0 = from Env, else the unifier's default

	NATSSync    string            // embedded JetStream fsync: "always" or a duration
	DatabaseURL string            // external Postgres; empty = a throwaway one
	PGSettings  map[string]string // extra settings of the throwaway Postgres
	PGStats     bool              // collect pg_stat_statements over the unifier phases
	Telemetry   bool              // install the all-in-one's OTel providers (spans and metrics)
	Raw         bool              // measure the raw ceilings
	// PII seals personal data as the all-in-one does: the publishers' bus seals the identities
	// (pkg/pii), the unifier's opens them and stores blind indexes and ciphertexts.
	PII bool

	Timeout    time.Duration // whole run
	Stall      time.Duration // fail a phase when nothing is applied for this long
	CPUProfile string        // write a CPU profile of the unifier phases here

	Env      config.Lookup // configuration source of the unifier (default os.LookupEnv)
	Progress io.Writer     // progress lines (default: discarded)
}

// Defaults returns the configuration of `go run ./bench` without flags.
func Defaults() Config {
	return Config{
		Events: 100_000, Backlog: 50_000, Customers: 20_000, CrossChannel: 0.3, Duplicates: 0.01,
		Publishers: 4, Chunk: 256, NATSSync: "2m", Telemetry: true, Raw: true,
		Timeout: 30 * time.Minute, Stall: time.Minute,
	}
}

func (c *Config) validate() error {
	switch {
	case c.Events < 0 || c.Backlog < 0 || c.Events+c.Backlog == 0:
		return errors.New("--events and --backlog must be >= 0, and not both 0")
	case c.Rate < 0:
		return errors.New("--rate must be >= 0")
	case c.Customers < 1:
		return errors.New("--customers must be >= 1")
	case c.CrossChannel < 0 || c.CrossChannel > 1:
		return errors.New("--cross-channel must be in [0, 1]")
	case c.Statuses < 0 || c.Statuses > 1:
		return fmt.Errorf("statuses must be in [0, 1], got %g", c.Statuses)
	case c.StatusUpdates < 0 || c.StatusUpdates > len(replyStatuses)-1:
		return fmt.Errorf("--status-updates must be in [0, %d], got %d", len(replyStatuses)-1, c.StatusUpdates)
	case c.Duplicates < 0 || c.Duplicates > 1:
		return errors.New("--duplicates must be in [0, 1]")
	case c.Publishers < 1 || c.Chunk < 1:
		return errors.New("--publishers and --chunk must be >= 1")
	case c.Timeout <= 0 || c.Stall <= 0:
		return errors.New("--timeout and --stall must be > 0")
	}
	if _, _, err := natsembed.ParseSync(c.NATSSync); err != nil {
		return fmt.Errorf("--nats-sync: %w", err)
	}
	return nil
}

// runner holds what one run started.
type runner struct {
	cfg      Config
	ucfg     unifier.Config
	keys     *pii.Keys // PII: the run's keys
	env      config.Lookup
	w        *workload
	t        *tracker
	quiet    *slog.Logger
	progress io.Writer

	ns       *natsembed.Server
	dbURL    string
	pubConn  *nats.Conn
	pub      *bus.Client // the "connectors"
	uniConn  *nats.Conn
	uniBus   *bus.Client // the unifier's
	deskConn *nats.Conn
	uni      *unifierRun
	stats    *pgxpool.Pool // the bench's own queries
	ownTx    atomic.Int64  // transactions of the bench's own queries during the phases
	cleanup  []func()
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.progress, "bench: "+format+"\n", args...)
}

// Run runs the bench. The report is returned with what was measured even when err is not nil
// (interrupted, stalled).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Env == nil {
		cfg.Env = os.LookupEnv
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		for _, x := range b {
			cfg.Seed = cfg.Seed<<8 | uint64(x)
		}
		cfg.Seed |= 1
	}
	overlay := map[string]string{}
	if cfg.Batch > 0 {
		overlay["UNIFIER_BATCH"] = strconv.Itoa(cfg.Batch)
	}
	if cfg.Workers > 0 {
		overlay["UNIFIER_WORKERS"] = strconv.Itoa(cfg.Workers)
	}
	base := cfg.Env
	env := func(k string) (string, bool) {
		if v, ok := overlay[k]; ok {
			return v, true
		}
		return base(k)
	}
	var ucfg unifier.Config
	if err := config.Load(&ucfg, env); err != nil {
		return nil, err
	}
	nb := make([]byte, 3)
	_, _ = rand.Read(nb)
	w := newWorkload(cfg.Seed, hex.EncodeToString(nb), cfg.Customers, cfg.CrossChannel, cfg.Duplicates)
	w.statusShare, w.statusUpdates = cfg.Statuses, cfg.StatusUpdates
	r := &runner{cfg: cfg, ucfg: ucfg, env: env, w: w, t: newTracker(w, cfg.Events, cfg.Backlog),
		quiet: slog.New(slog.DiscardHandler), progress: cfg.Progress}
	rep := &Report{Setup: Setup{
		CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), NATSSync: cfg.NATSSync, Batch: ucfg.BatchSize, Workers: ucfg.Workers,
		Telemetry: cfg.Telemetry, Events: cfg.Events, Rate: cfg.Rate, Backlog: cfg.Backlog, Customers: cfg.Customers,
		CrossChannel: cfg.CrossChannel, Duplicates: cfg.Duplicates, Publishers: cfg.Publishers, Chunk: cfg.Chunk, Seed: cfg.Seed,
		PGSettings: cfg.PGSettings, Statuses: cfg.Statuses, StatusUpdates: cfg.StatusUpdates,
	}}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	defer r.close()
	err := r.run(ctx, rep)
	if err != nil && ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("bench timed out after %s (--timeout): %w", cfg.Timeout, err)
		} else {
			err = fmt.Errorf("interrupted: %w", err)
		}
	}
	return rep, err
}

func (r *runner) close() {
	if r.uni != nil {
		_ = r.uni.stop()
		r.uni = nil
	}
	for i := len(r.cleanup) - 1; i >= 0; i-- {
		r.cleanup[i]()
	}
}

func (r *runner) defer_(f func()) { r.cleanup = append(r.cleanup, f) }

func (r *runner) run(ctx context.Context, rep *Report) error {
	if err := r.setup(ctx, rep); err != nil {
		return err
	}
	if r.cfg.Raw {
		raw := &RawCeilings{}
		rep.Raw = raw
		n := r.cfg.Events
		if n == 0 {
			n = r.cfg.Backlog
		}
		r.logf("raw JetStream publish+consume of %d events...", n)
		js, err := r.rawJetStream(ctx, n)
		if err != nil {
			return fmt.Errorf("raw JetStream ceiling: %w", err)
		}
		raw.JetStream = js
		r.logf("raw JetStream: %.0f events/s", js.PerSecond)
		r.logf("raw Postgres batched insert of %d rows (%d per transaction, %d connections)...", n, r.ucfg.BatchSize, r.ucfg.Workers)
		pg, err := r.rawPostgres(ctx, n)
		if err != nil {
			return fmt.Errorf("raw Postgres ceiling: %w", err)
		}
		raw.Postgres = pg
		r.logf("raw Postgres: %.0f rows/s", pg.PerSecond)
	}
	if r.cfg.CPUProfile != "" {
		f, err := os.Create(r.cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		r.defer_(func() { pprof.StopCPUProfile(); f.Close() })
	}
	pgs := r.pgStatsBegin(ctx, rep)
	if r.cfg.Events > 0 {
		r.logf("sustained: %d events at %s to the unifier...", r.cfg.Events, rateText(r.cfg.Rate))
		ph, err := r.sustained(ctx)
		if err != nil {
			return fmt.Errorf("sustained phase: %w", err)
		}
		rep.Sustained = ph
		r.logf("sustained: %.0f events/s applied, latency p50 %.1f ms p99 %.1f ms", ph.AppliedRate, ph.Latency.P50, ph.Latency.P99)
	}
	if r.cfg.Backlog > 0 {
		ph, err := r.catchUp(ctx)
		if err != nil {
			return fmt.Errorf("catch-up phase: %w", err)
		}
		rep.CatchUp = ph
		r.logf("catch-up: %.0f events/s applied", ph.AppliedRate)
	}
	if r.uni != nil {
		if err := r.uni.stop(); err != nil {
			return err
		}
		r.uni = nil
	}
	if r.cfg.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	pgs(rep)
	r.verify(ctx, rep)
	if r.cfg.Raw {
		events := 0
		for _, p := range []*Phase{rep.Sustained, rep.CatchUp} {
			if p != nil {
				events += p.Events
			}
		}
		r.logf("raw Postgres batched insert of the rows the unifier stored for %d events...", events)
		st, err := r.rawStore(ctx, events)
		if err != nil {
			return fmt.Errorf("raw Postgres ceiling of the stored rows: %w", err)
		}
		rep.Raw.Store = st
		r.logf("raw Postgres, stored rows: %.0f events/s", st.PerSecond)
	}
	rep.computeRatios()
	return nil
}

// setup starts the servers, connects and provisions.
func (r *runner) setup(ctx context.Context, rep *Report) error {
	if r.cfg.Telemetry {
		tel, err := telemetry.Setup(ctx, "omnibus")
		if err != nil {
			return err
		}
		r.defer_(func() { _ = tel.Shutdown(context.WithoutCancel(ctx)) })
	}
	ns, err := natsembed.Start(natsembed.Options{Sync: r.cfg.NATSSync})
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	r.ns = ns
	r.defer_(ns.Shutdown)
	r.logf("embedded NATS JetStream on %s (%s)", ns.URL(), natsembed.SyncDescription(r.cfg.NATSSync))

	if r.dbURL = r.cfg.DatabaseURL; r.dbURL == "" {
		settings := map[string]string{}
		for k, v := range r.cfg.PGSettings {
			settings[k] = v
		}
		if r.cfg.PGStats {
			settings["shared_preload_libraries"] = "pg_stat_statements"
		}
		pg, err := pgembed.Start(ctx, pgembed.Options{Settings: settings})
		if err != nil && r.cfg.PGStats && !errors.Is(err, pgembed.ErrNoBinaries) {
			// pg_stat_statements may not be installed: run without it (the report says so).
			delete(settings, "shared_preload_libraries")
			r.logf("Postgres did not start with pg_stat_statements (%v); starting without it", err)
			pg, err = pgembed.Start(ctx, pgembed.Options{Settings: settings})
		}
		if err != nil {
			return fmt.Errorf("throwaway postgres: %w (or set --database-url)", err)
		}
		r.defer_(func() { _ = pg.Stop(context.WithoutCancel(ctx)) })
		r.dbURL = pg.URL("postgres")
		rep.Setup.Postgres = "throwaway (pgembed)"
	} else {
		rep.Setup.Postgres = "external (--database-url)"
	}
	pcfg, err := pgxpool.ParseConfig(r.dbURL)
	if err != nil {
		return fmt.Errorf("--database-url: %w", err)
	}
	pcfg.ConnConfig.RuntimeParams["application_name"] = benchAppName
	if r.stats, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	r.defer_(r.stats.Close)
	var ver, fsync, syncCommit string
	if err := r.stats.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')`).
		Scan(&ver, &fsync, &syncCommit); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	rep.Setup.Postgres += fmt.Sprintf(" %s, fsync=%s, synchronous_commit=%s", ver, fsync, syncCommit)
	r.logf("Postgres %s", rep.Setup.Postgres)

	connect := func(name string) (*nats.Conn, error) {
		nc, err := ns.Connect(name, nats.MaxReconnects(-1))
		if err != nil {
			return nil, err
		}
		r.defer_(nc.Close)
		return nc, nil
	}
	if r.pubConn, err = connect("omnibus-bench-publisher"); err != nil {
		return err
	}
	if r.uniConn, err = connect("omnibus-bench-unifier"); err != nil {
		return err
	}
	if r.deskConn, err = connect("omnibus-bench-desk"); err != nil {
		return err
	}
	var pubOpts, uniOpts []bus.Option
	if r.cfg.PII {
		if r.keys, err = pii.NewKeys(); err != nil {
			return err
		}
		pubOpts = append(pubOpts, bus.WithDataProtector(pii.NewEvents(r.keys)))
		uniOpts = append(uniOpts, bus.WithDataProtector(pii.NewEvents(r.keys)))
	}
	if r.pub, err = bus.Connect(r.pubConn, append(pubOpts, bus.WithLogger(r.quiet))...); err != nil {
		return err
	}
	// The unifier publishes its batches (the outbox relay's desk events) as the all-in-one does:
	// atomic batches when every write is fsynced. The load's own publishers stand for connectors
	// publishing one webhook's events at a time, so they do not.
	if r.uniBus, err = bus.Connect(r.uniConn, append(uniOpts, bus.WithLogger(r.quiet), bus.WithAtomicBatches(r.cfg.NATSSync == "always"))...); err != nil {
		return err
	}
	if err := r.pub.Provision(ctx); err != nil {
		return err
	}
	// The desk: a core NATS subscription sees each desk event as the relay publishes it.
	sub, err := r.deskConn.Subscribe(subjectDeskAdd, r.t.onDesk)
	if err != nil {
		return err
	}
	_ = sub.SetPendingLimits(-1, -1)
	return r.deskConn.Flush()
}

// --- the unifier -------------------------------------------------------------------------------

type unifierRun struct {
	cancel context.CancelFunc
	done   chan error
	pool   *pgxpool.Pool
	once   sync.Once
	err    error
}

// startUnifier runs unifier.Run as the all-in-one does: its own pool, the service deps, quiet.
func (r *runner) startUnifier(ctx context.Context) error {
	pool, err := pgxpool.New(ctx, r.dbURL)
	if err != nil {
		return err
	}
	uctx, cancel := context.WithCancel(ctx)
	u := &unifierRun{cancel: cancel, done: make(chan error, 1), pool: pool}
	deps := service.Deps{Bus: r.uniBus, DB: pool, Mux: http.NewServeMux(), Log: r.quiet, Health: service.NewHealth(), Env: r.env, PII: r.keys}
	go func() { u.done <- unifier.Run(uctx, deps) }()
	r.uni = u
	return nil
}

// waitReady waits until the unifier's last lane (the tool consumer) exists.
func (r *runner) waitReady(ctx context.Context) error {
	js := r.pub.JetStream()
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case err := <-r.uni.done:
			r.uni.done <- err
			return fmt.Errorf("unifier stopped at start: %w", err)
		default:
		}
		if _, err := js.Consumer(ctx, bus.StreamTool, "unifier-tool"); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("unifier not ready after 30s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (u *unifierRun) stop() error {
	u.once.Do(func() {
		u.cancel()
		select {
		case err := <-u.done:
			u.err = err
		case <-time.After(45 * time.Second):
			u.err = errors.New("unifier did not stop within 45s")
		}
		u.pool.Close()
	})
	return u.err
}

// --- desk observation ----------------------------------------------------------------------------

// tracker records, per event index, when it was published and when its message.added desk event
// arrived. Indexes [0, split) are the sustained phase, [split, n) the backlog.
type tracker struct {
	w        *workload
	split    int
	sent     []atomic.Int64
	got      []atomic.Int64
	sentN    [2]atomic.Int64
	applied  [2]atomic.Int64
	dupDesk  atomic.Int64
	foreign  atomic.Int64
	badDesk  atomic.Int64
	lastDesk atomic.Int64
}

func newTracker(w *workload, events, backlog int) *tracker {
	n := events + backlog
	return &tracker{w: w, split: events, sent: make([]atomic.Int64, n), got: make([]atomic.Int64, n)}
}

func (t *tracker) phase(i int) int {
	if i < t.split {
		return 0
	}
	return 1
}

func (t *tracker) onDesk(m *nats.Msg) {
	now := time.Now().UnixNano()
	var d struct {
		Message struct {
			EventID string `json:"event_id"`
		} `json:"message"`
	}
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.badDesk.Add(1)
		return
	}
	i := t.w.eventIndex(d.Message.EventID)
	if i < 0 || i >= len(t.got) {
		t.foreign.Add(1)
		return
	}
	t.lastDesk.Store(now)
	if t.got[i].CompareAndSwap(0, now) {
		t.applied[t.phase(i)].Add(1)
	} else {
		t.dupDesk.Add(1)
	}
}

// waitApplied waits until phase p has want events applied, failing after stall without progress.
func (r *runner) waitApplied(ctx context.Context, p int, want int64, what string) error {
	last, lastAt, lastLog := int64(-1), time.Now(), time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		n := r.t.applied[p].Load()
		if n >= want {
			return nil
		}
		now := time.Now()
		if n != last {
			last, lastAt = n, now
		} else if now.Sub(lastAt) > r.cfg.Stall {
			return fmt.Errorf("%s: stalled at %d of %d events applied for %s (--stall)", what, n, want, r.cfg.Stall)
		}
		if r.uni != nil {
			select {
			case err := <-r.uni.done:
				r.uni.done <- err
				return fmt.Errorf("%s: unifier stopped: %w", what, err)
			default:
			}
		}
		if now.Sub(lastLog) >= 5*time.Second {
			lastLog = now
			r.logf("%s: %d/%d applied, %d published", what, n, want, r.t.sentN[p].Load())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %d of %d applied: %w", what, n, want, ctx.Err())
		case <-tick.C:
		}
	}
}

// --- publishing ----------------------------------------------------------------------------------

type published struct {
	start, end time.Time
	replays    int
}

// publish publishes events [lo, hi) at rate (0 = as fast as possible) with cfg.Publishers
// goroutines, each calling PublishBatch per chunk, then re-publishing the chunk's chosen
// duplicates with a fresh Nats-Msg-Id.
func (r *runner) publish(ctx context.Context, lo, hi int, rate float64) (published, error) {
	chunk := r.cfg.Chunk
	if rate > 0 { // pace in steps of about 10 ms
		chunk = max(1, min(chunk, int(rate/100)))
	}
	type job struct {
		lo, hi int
		due    time.Time
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan job, r.cfg.Publishers)
	start := time.Now()
	go func() {
		defer close(jobs)
		for a := lo; a < hi; a += chunk {
			j := job{lo: a, hi: min(a+chunk, hi), due: start}
			if rate > 0 {
				j.due = start.Add(time.Duration(float64(a-lo) / rate * float64(time.Second)))
			}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	var replays atomic.Int64
	var wg sync.WaitGroup
	for range r.cfg.Publishers {
		wg.Go(func() {
			batch := make([]bus.Outgoing, 0, chunk)
			var dups []int
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if d := time.Until(j.due); d > 0 {
					select {
					case <-ctx.Done():
						continue
					case <-time.After(d):
					}
				}
				now := time.Now()
				batch, dups = batch[:0], dups[:0]
				for i := j.lo; i < j.hi; i++ {
					s := r.w.spec(i)
					o, err := r.w.event(s, now)
					if err != nil {
						cancel(err)
						break
					}
					if s.dup {
						dups = append(dups, len(batch))
					}
					batch = append(batch, o)
					if s.status {
						so, err := r.w.statusEvents(s, now)
						if err != nil {
							cancel(err)
							break
						}
						batch = append(batch, so...)
					}
				}
				if ctx.Err() != nil {
					continue
				}
				sent := time.Now().UnixNano()
				for i := j.lo; i < j.hi; i++ {
					r.t.sent[i].Store(sent)
				}
				r.t.sentN[r.t.phase(j.lo)].Add(int64(j.hi - j.lo))
				if err := r.pub.PublishBatch(ctx, batch); err != nil {
					cancel(err)
					continue
				}
				if len(dups) > 0 {
					n, err := r.replay(ctx, batch, dups)
					replays.Add(int64(n))
					if err != nil {
						cancel(err)
					}
				}
			}
		})
	}
	wg.Wait()
	p := published{start: start, end: time.Now(), replays: int(replays.Load())}
	return p, context.Cause(ctx)
}

// replay re-publishes already published events of batch unchanged (same CloudEvent id), with a
// fresh Nats-Msg-Id so that JetStream stores them again: what a replay or a connector's resend
// after the duplicate window looks like. The unifier must change nothing.
func (r *runner) replay(ctx context.Context, batch []bus.Outgoing, idx []int) (int, error) {
	js := r.pub.JetStream()
	reg := r.pub.Schemas()
	futs := make([]jetstream.PubAckFuture, 0, len(idx))
	for _, k := range idx {
		e := batch[k].Event.Clone()
		e.SetDataSchema(reg.SchemaURL(e.Type())) // as the bus published it
		h, body, err := event.Encode(e)
		if err != nil {
			return 0, err
		}
		h.Set(bus.HeaderSchema, reg.Fingerprint())
		h.Set(jetstream.MsgIDHeader, "replay:"+e.ID())
		f, err := js.PublishMsgAsync(&nats.Msg{Subject: bus.PartitionedSubject(batch[k].Subject, event.PartitionKey(e)), Header: h, Data: body})
		if err != nil {
			return 0, err
		}
		futs = append(futs, f)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Stall)
	defer cancel()
	n := 0
	for _, f := range futs {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				return n, errors.New("replay was dropped as a duplicate by JetStream")
			}
			n++
		case err := <-f.Err():
			return n, err
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
	return n, nil
}

// --- phases --------------------------------------------------------------------------------------

type cpuMark struct {
	at        time.Time
	self, pg  time.Duration
	commits   int64
	rollbacks int64
	deadlocks int64
	ownTx     int64
	walBytes  float64
	statsOK   bool
}

func (r *runner) mark(ctx context.Context) cpuMark {
	m := cpuMark{at: time.Now(), self: cpustat.Self(), pg: cpustat.Postgres(), ownTx: r.ownTx.Add(1)}
	if r.cfg.DatabaseURL != "" {
		m.pg = -1 // another server's processes are not ours to count
	}
	err := r.stats.QueryRow(ctx, `SELECT xact_commit, xact_rollback, deadlocks, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8
		FROM pg_stat_database WHERE datname = current_database()`).Scan(&m.commits, &m.rollbacks, &m.deadlocks, &m.walBytes)
	m.statsOK = err == nil
	return m
}

// usage fills the CPU and Postgres figures of a phase between two marks, per applied event.
func usage(ph *Phase, a, b cpuMark, events int) {
	wall := b.at.Sub(a.at).Seconds()
	ph.GoCores, ph.PGCores = -1, -1
	if wall > 0 && a.self >= 0 && b.self >= 0 {
		ph.GoCores = (b.self - a.self).Seconds() / wall
	}
	if wall > 0 && a.pg >= 0 && b.pg >= 0 {
		ph.PGCores = (b.pg - a.pg).Seconds() / wall
	}
	if events > 0 {
		if ph.GoCores >= 0 {
			ph.GoMicrosPerEvent = (b.self - a.self).Seconds() * 1e6 / float64(events)
		}
		if ph.PGCores >= 0 {
			ph.PGMicrosPerEvent = (b.pg - a.pg).Seconds() * 1e6 / float64(events)
		}
	}
	if a.statsOK && b.statsOK && events > 0 {
		ph.CommitsPerEvent = float64(b.commits-a.commits-(b.ownTx-a.ownTx)) / float64(events)
		ph.WALBytesPerEvent = (b.walBytes - a.walBytes) / float64(events)
		ph.Rollbacks = b.rollbacks - a.rollbacks
		ph.Deadlocks = b.deadlocks - a.deadlocks
	}
}

func (r *runner) sustained(ctx context.Context) (*Phase, error) {
	lo, hi := 0, r.cfg.Events
	ph := &Phase{Events: hi - lo, TargetRate: r.cfg.Rate}
	if err := r.startUnifier(ctx); err != nil {
		return ph, err
	}
	if err := r.waitReady(ctx); err != nil {
		return ph, err
	}
	a := r.mark(ctx)
	// Backlog (published, not yet on the desk), sampled while publishing.
	var maxBacklog atomic.Int64
	sctx, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if b := r.t.sentN[0].Load() - r.t.applied[0].Load(); b > maxBacklog.Load() {
				maxBacklog.Store(b)
			}
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	pub, err := r.publish(ctx, lo, hi, r.cfg.Rate)
	ph.Replays = pub.replays
	if err == nil {
		err = r.waitApplied(ctx, 0, int64(hi-lo), "sustained")
	}
	stopSampling()
	sampler.Wait()
	if err != nil {
		return ph, err
	}
	b := r.mark(ctx)
	time.Sleep(300 * time.Millisecond) // let a wrongly doubled desk event show up
	ph.MaxBacklog = int(maxBacklog.Load())
	first := pub.start
	last := r.t.maxGot(lo, hi)
	ph.PublishSeconds = pub.end.Sub(pub.start).Seconds()
	ph.PublishRate = rate(hi-lo, pub.end.Sub(pub.start))
	ph.Seconds = last.Sub(first).Seconds()
	ph.AppliedRate = rate(hi-lo, last.Sub(first))
	ph.DrainSeconds = max(0, last.Sub(pub.end).Seconds())
	ph.PeakSecond, ph.MedianSecond = r.t.perSecond(lo, hi, first, last)
	if r.cfg.Rate > 0 {
		kept := ph.AppliedRate >= 0.95*r.cfg.Rate
		ph.KeptUp = &kept
	}
	ph.Latency = r.t.latency(lo, hi)
	usage(ph, a, b, hi-lo)
	return ph, nil
}

func (r *runner) catchUp(ctx context.Context) (*Phase, error) {
	lo, hi := r.cfg.Events, r.cfg.Events+r.cfg.Backlog
	ph := &Phase{Events: hi - lo}
	if r.uni != nil {
		r.logf("catch-up: stopping the unifier")
		if err := r.uni.stop(); err != nil {
			return ph, err
		}
		r.uni = nil
	}
	r.logf("catch-up: publishing a backlog of %d events with the unifier stopped...", hi-lo)
	pub, err := r.publish(ctx, lo, hi, 0)
	ph.Replays = pub.replays
	if err != nil {
		return ph, err
	}
	ph.PublishSeconds = pub.end.Sub(pub.start).Seconds()
	ph.PublishRate = rate(hi-lo, pub.end.Sub(pub.start))
	ph.MaxBacklog = hi - lo
	r.logf("catch-up: backlog stored at %.0f events/s; starting the unifier", ph.PublishRate)
	a := r.mark(ctx)
	start := time.Now()
	if err := r.startUnifier(ctx); err != nil {
		return ph, err
	}
	if err := r.waitApplied(ctx, 1, int64(hi-lo), "catch-up"); err != nil {
		return ph, err
	}
	b := r.mark(ctx)
	time.Sleep(300 * time.Millisecond)
	last := r.t.maxGot(lo, hi)
	ph.Seconds = last.Sub(start).Seconds()
	ph.AppliedRate = rate(hi-lo, last.Sub(start))
	ph.DrainSeconds = ph.Seconds
	ph.PeakSecond, ph.MedianSecond = r.t.perSecond(lo, hi, start, last)
	usage(ph, a, b, hi-lo)
	return ph, nil
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func (t *tracker) maxGot(lo, hi int) time.Time {
	var m int64
	for i := lo; i < hi; i++ {
		m = max(m, t.got[i].Load())
	}
	return time.Unix(0, m)
}

// perSecond returns the highest and the median number of events applied per whole second
// between from and to.
func (t *tracker) perSecond(lo, hi int, from, to time.Time) (peak, median float64) {
	full := int(to.Sub(from) / time.Second)
	if full < 1 {
		r := rate(hi-lo, to.Sub(from))
		return r, r
	}
	buckets := make([]float64, full)
	for i := lo; i < hi; i++ {
		k := int(time.Duration(t.got[i].Load()-from.UnixNano()) / time.Second)
		if k >= 0 && k < full {
			buckets[k]++
		}
	}
	slices.Sort(buckets)
	return buckets[full-1], buckets[full/2]
}

// latency is the ingest→desk-event latency of events [lo, hi): from the PublishBatch call to
// the arrival of the message.added desk event.
func (t *tracker) latency(lo, hi int) *Latency {
	d := make([]float64, 0, hi-lo)
	for i := lo; i < hi; i++ {
		s, g := t.sent[i].Load(), t.got[i].Load()
		if s == 0 || g == 0 {
			continue
		}
		d = append(d, float64(g-s)/1e6)
	}
	return stats.Of(d)
}

func rateText(r float64) string {
	if r <= 0 {
		return "full speed"
	}
	return strconv.FormatFloat(r, 'f', -1, 64) + " events/s"
}
