package loadgen

import (
	"context"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/bench/internal/stats"
	"github.com/omnibus-dev/omnibus/pkg/bus"
)

// Report is everything one run measured. Rates are per second, latencies in milliseconds, CPU
// in cores (CPU seconds per wall second; -1 when unknown).
type Report struct {
	Setup     Setup        `json:"setup"`
	Raw       *RawCeilings `json:"raw,omitempty"`
	Sustained *Phase       `json:"sustained,omitempty"`
	CatchUp   *Phase       `json:"catch_up,omitempty"`
	Ratios    Ratios       `json:"ratios"`
	Verify    Verify       `json:"verify"`
	Store     StoreStats   `json:"store"`
	Postgres  *PGStats     `json:"postgres_statements,omitempty"`
}

// Setup is what the run ran on and with.
type Setup struct {
	CPUs          int               `json:"cpus"`
	GoVersion     string            `json:"go_version"`
	NATSSync      string            `json:"nats_sync"`
	Postgres      string            `json:"postgres"`
	PGSettings    map[string]string `json:"pg_settings,omitempty"`
	Batch         int               `json:"unifier_batch"`
	Workers       int               `json:"unifier_workers"`
	Telemetry     bool              `json:"telemetry"`
	Events        int               `json:"events"`
	Rate          float64           `json:"rate"`
	Backlog       int               `json:"backlog"`
	Customers     int               `json:"customers"`
	CrossChannel  float64           `json:"cross_channel"`
	Duplicates    float64           `json:"duplicates"`
	Statuses      float64           `json:"statuses"`
	StatusUpdates int               `json:"status_updates,omitempty"`
	Publishers    int               `json:"publishers"`
	Chunk         int               `json:"chunk"`
	Seed          uint64            `json:"seed"`
}

// RawCeilings are the same-machine ceilings the unifier is compared with.
type RawCeilings struct {
	JetStream *RawResult `json:"jetstream,omitempty"`
	Postgres  *RawResult `json:"postgres,omitempty"`
	// Store is the batched COPY of every row the unifier stored, per event (after the phases).
	Store *RawResult `json:"store,omitempty"`
}

// RawResult is one ceiling.
type RawResult struct {
	Count          int     `json:"count"`
	Seconds        float64 `json:"seconds"`
	PerSecond      float64 `json:"per_second"`
	GoCores        float64 `json:"go_cores"`
	PGCores        float64 `json:"pg_cores"`
	CommitsPerRow  float64 `json:"commits_per_row,omitempty"`
	WALBytesPerRow float64 `json:"wal_bytes_per_row,omitempty"`
	Rows           int     `json:"rows,omitempty"`           // Store: rows copied (Count is events)
	RowsPerEvent   float64 `json:"rows_per_event,omitempty"` // Store
}

// Phase is the sustained or the catch-up phase.
type Phase struct {
	Events           int      `json:"events"`
	Replays          int      `json:"replays"`
	TargetRate       float64  `json:"target_rate"` // 0 = full speed
	PublishSeconds   float64  `json:"publish_seconds"`
	PublishRate      float64  `json:"publish_rate"`
	Seconds          float64  `json:"seconds"`      // first publish (catch-up: unifier start) → last desk event
	AppliedRate      float64  `json:"applied_rate"` // desk message.added events per second over Seconds
	PeakSecond       float64  `json:"peak_second"`
	MedianSecond     float64  `json:"median_second"`
	DrainSeconds     float64  `json:"drain_seconds"` // last publish → last desk event
	MaxBacklog       int      `json:"max_backlog"`
	KeptUp           *bool    `json:"kept_up,omitempty"`
	Latency          *Latency `json:"latency_ms,omitempty"`
	GoCores          float64  `json:"go_cores"`
	PGCores          float64  `json:"pg_cores"`
	CommitsPerEvent  float64  `json:"commits_per_event"`
	WALBytesPerEvent float64  `json:"wal_bytes_per_event"`
	// CPU per applied event, in microseconds: the bench process (unifier, embedded NATS server,
	// publishers, desk subscriber) and the Postgres server. On a shared machine this moves less
	// than the rates do.
	GoMicrosPerEvent float64 `json:"go_us_per_event,omitempty"`
	PGMicrosPerEvent float64 `json:"pg_us_per_event,omitempty"`
	Rollbacks        int64   `json:"rollbacks"` // transactions rolled back (failed batches, retries)
	Deadlocks        int64   `json:"deadlocks"` // detected by Postgres (each after deadlock_timeout)
}

// Latency is ingest→desk-event latency in milliseconds.
type Latency = stats.Dist

// Ratios compare the unifier with the ceilings.
type Ratios struct {
	SustainedVsJetStream float64 `json:"sustained_vs_raw_jetstream,omitempty"`
	CatchUpVsPostgres    float64 `json:"catch_up_vs_batched_insert,omitempty"`
	CatchUpVsStore       float64 `json:"catch_up_vs_batched_insert_of_stored_rows,omitempty"`
	// Floor is the events/s of the machine doing only the unifier's unavoidable part, from the two
	// ceilings sharing its CPUs: JetStream carrying each inbound event and its desk events
	// (published and consumed), and COPY writing its stored rows: 1 / (m/jetstream + 1/store),
	// m = 1 + desk events per message.
	Floor            float64 `json:"floor_events_per_second,omitempty"`
	SustainedVsFloor float64 `json:"sustained_vs_floor,omitempty"`
	CatchUpVsFloor   float64 `json:"catch_up_vs_floor,omitempty"`
}

// Verify is the exactly-once check.
type Verify struct {
	Checked         bool     `json:"checked"`
	Distinct        int      `json:"distinct_events"`
	Replays         int      `json:"replays_published"`
	DeskAdded       int      `json:"desk_message_added"` // distinct event ids seen on the core subscription
	DeskDuplicates  int      `json:"desk_duplicates"`    // message.added seen again for an id
	DeskForeign     int      `json:"desk_foreign"`
	StoredAdded     int      `json:"stored_message_added"` // in OMNI_DESK
	ReplyRows       int      `json:"reply_rows"`           // agents' replies first seen through a status (--statuses)
	MessageRows     int      `json:"message_rows"`         // in the session store
	ExactlyOnce     bool     `json:"exactly_once"`
	Problems        []string `json:"problems,omitempty"`
	StoredDeskTotal int      `json:"stored_desk_events"`
	CRMLookups      int      `json:"crm_lookups_requested"`
}

// StoreStats describe what the workload made of the session store.
type StoreStats struct {
	Customers     int `json:"customers_created"`
	LiveCustomers int `json:"customers_live"`
	Merges        int `json:"merges"`
	Conversations int `json:"conversations"`
	CrossChannel  int `json:"conversations_cross_channel"`
}

// PGStats is pg_stat_statements over the unifier phases.
type PGStats struct {
	Calls    int64       `json:"calls"`
	PerEvent float64     `json:"calls_per_event"`
	Note     string      `json:"note,omitempty"`
	Top      []Statement `json:"top,omitempty"`
	// Waits: what the unifier's backends were doing, sampled from pg_stat_activity every 25 ms.
	Waits []WaitShare `json:"backend_states,omitempty"`
	// Tables: pg_stat_user_tables over the unifier phases.
	Tables []TableStat `json:"tables,omitempty"`
}

// TableStat is one table's access counters over the unifier phases.
type TableStat struct {
	Table    string `json:"table"`
	SeqScans int64  `json:"seq_scans"`
	SeqRows  int64  `json:"seq_rows_read"`
	IdxScans int64  `json:"index_scans"`
	Inserts  int64  `json:"inserts"`
	Updates  int64  `json:"updates"`
	Deletes  int64  `json:"deletes"`
	DeadRows int64  `json:"dead_rows_at_end"`
	LiveRows int64  `json:"live_rows_at_end"`
	Analyzes int64  `json:"autoanalyzes"`
}

const tableStatsQuery = `SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0), n_tup_ins, n_tup_upd, n_tup_del,
	n_dead_tup, n_live_tup, autoanalyze_count FROM pg_stat_user_tables WHERE schemaname = 'public'`

func (r *runner) tableStats(ctx context.Context) (map[string]TableStat, error) {
	rows, err := r.stats.Query(ctx, tableStatsQuery)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]TableStat{}
	for rows.Next() {
		var t TableStat
		if err := rows.Scan(&t.Table, &t.SeqScans, &t.SeqRows, &t.IdxScans, &t.Inserts, &t.Updates, &t.Deletes, &t.DeadRows, &t.LiveRows, &t.Analyzes); err != nil {
			return nil, err
		}
		out[t.Table] = t
	}
	return out, rows.Err()
}

// Statement is one normalised statement.
type Statement struct {
	Calls    int64   `json:"calls"`
	PerEvent float64 `json:"calls_per_event"`
	TotalMS  float64 `json:"total_ms"`
	MeanMS   float64 `json:"mean_ms"`
	Rows     int64   `json:"rows"`
	Query    string  `json:"query"`
}

func (rep *Report) computeRatios() {
	if rep.Raw != nil && rep.Raw.JetStream != nil && rep.Sustained != nil && rep.Raw.JetStream.PerSecond > 0 {
		rep.Ratios.SustainedVsJetStream = rep.Sustained.AppliedRate / rep.Raw.JetStream.PerSecond
	}
	if rep.Raw != nil && rep.Raw.Postgres != nil && rep.CatchUp != nil && rep.Raw.Postgres.PerSecond > 0 {
		rep.Ratios.CatchUpVsPostgres = rep.CatchUp.AppliedRate / rep.Raw.Postgres.PerSecond
	}
	if rep.Raw != nil && rep.Raw.Store != nil && rep.CatchUp != nil && rep.Raw.Store.PerSecond > 0 {
		rep.Ratios.CatchUpVsStore = rep.CatchUp.AppliedRate / rep.Raw.Store.PerSecond
	}
	if raw := rep.Raw; raw != nil && raw.JetStream != nil && raw.Store != nil && raw.JetStream.PerSecond > 0 &&
		raw.Store.PerSecond > 0 && rep.Verify.Distinct > 0 {
		m := 1 + float64(rep.Verify.StoredDeskTotal)/float64(rep.Verify.Distinct)
		rep.Ratios.Floor = 1 / (m/raw.JetStream.PerSecond + 1/raw.Store.PerSecond)
		if rep.Sustained != nil {
			rep.Ratios.SustainedVsFloor = rep.Sustained.AppliedRate / rep.Ratios.Floor
		}
		if rep.CatchUp != nil {
			rep.Ratios.CatchUpVsFloor = rep.CatchUp.AppliedRate / rep.Ratios.Floor
		}
	}
}

// pgStatsBegin resets pg_stat_statements and returns the function that collects it.
func (r *runner) pgStatsBegin(ctx context.Context, rep *Report) func(*Report) {
	if !r.cfg.PGStats {
		return func(*Report) {}
	}
	note := func(err error) func(*Report) {
		return func(rep *Report) { rep.Postgres = &PGStats{Note: "pg_stat_statements unavailable: " + err.Error()} }
	}
	if _, err := r.stats.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		return note(err)
	}
	if _, err := r.stats.Exec(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
		return note(err)
	}
	tables0, _ := r.tableStats(ctx)
	waits := r.startWaitSampler(ctx)
	r.defer_(func() { waits.finish() }) // on an early return; finishing twice is harmless
	return func(rep *Report) {
		defer func() {
			if rep.Postgres == nil {
				return
			}
			time.Sleep(600 * time.Millisecond) // backends flush their table counters at most every second
			tables1, err := r.tableStats(context.WithoutCancel(ctx))
			if err != nil {
				return
			}
			for name, b := range tables1 {
				a := tables0[name]
				d := TableStat{Table: name, SeqScans: b.SeqScans - a.SeqScans, SeqRows: b.SeqRows - a.SeqRows, IdxScans: b.IdxScans - a.IdxScans,
					Inserts: b.Inserts - a.Inserts, Updates: b.Updates - a.Updates, Deletes: b.Deletes - a.Deletes,
					DeadRows: b.DeadRows, LiveRows: b.LiveRows, Analyzes: b.Analyzes - a.Analyzes}
				if d.SeqScans+d.IdxScans+d.Inserts+d.Updates+d.Deletes > 0 && !strings.HasPrefix(name, "loadgen_") && name != "goose_db_version" {
					rep.Postgres.Tables = append(rep.Postgres.Tables, d)
				}
			}
			sort.Slice(rep.Postgres.Tables, func(i, j int) bool { return rep.Postgres.Tables[i].SeqRows > rep.Postgres.Tables[j].SeqRows })
		}()
		defer func() {
			if w := waits.finish(); rep.Postgres != nil {
				rep.Postgres.Waits = w
			}
		}()
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		rows, err := r.stats.Query(qctx, `SELECT calls, total_exec_time, rows, query FROM pg_stat_statements
			WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
			  AND query NOT LIKE '%pg_stat%' AND query NOT LIKE '%pg_wal_lsn_diff%'`)
		if err != nil {
			note(err)(rep)
			return
		}
		defer rows.Close()
		events := float64(max(1, r.cfg.Events+r.cfg.Backlog))
		st := &PGStats{}
		for rows.Next() {
			var s Statement
			if err := rows.Scan(&s.Calls, &s.TotalMS, &s.Rows, &s.Query); err != nil {
				note(err)(rep)
				return
			}
			s.PerEvent = float64(s.Calls) / events
			if s.Calls > 0 {
				s.MeanMS = s.TotalMS / float64(s.Calls)
			}
			s.Query = compact(s.Query)
			st.Calls += s.Calls
			st.Top = append(st.Top, s)
		}
		sort.Slice(st.Top, func(i, j int) bool { return st.Top[i].TotalMS > st.Top[j].TotalMS })
		st.Top = st.Top[:min(len(st.Top), 20)]
		st.PerEvent = float64(st.Calls) / events
		rep.Postgres = st
	}
}

var spaces = regexp.MustCompile(`\s+`)

func compact(q string) string { return strings.TrimSpace(spaces.ReplaceAllString(q, " ")) }

// verify checks that every event was applied exactly once and describes the store.
func (r *runner) verify(ctx context.Context, rep *Report) {
	v := &rep.Verify
	v.Checked = true
	for i := range r.t.sent {
		if r.t.sent[i].Load() != 0 {
			v.Distinct++
		}
	}
	if rep.Sustained != nil {
		v.Replays += rep.Sustained.Replays
	}
	if rep.CatchUp != nil {
		v.Replays += rep.CatchUp.Replays
	}
	v.DeskAdded = int(r.t.applied[0].Load() + r.t.applied[1].Load())
	v.DeskDuplicates = int(r.t.dupDesk.Load())
	v.DeskForeign = int(r.t.foreign.Load() + r.t.badDesk.Load())
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	count := func(stream, filter string) (map[string]uint64, error) {
		st, err := r.pub.JetStream().Stream(ctx, stream)
		if err != nil {
			return nil, err
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return nil, err
		}
		return info.State.Subjects, nil
	}
	problem := func(format string, args ...any) { v.Problems = append(v.Problems, fmt.Sprintf(format, args...)) }
	if desk, err := count(bus.StreamDesk, "omni.desk.>"); err != nil {
		problem("OMNI_DESK: %v", err)
	} else {
		for subj, n := range desk {
			v.StoredDeskTotal += int(n)
			if subj == subjectDeskAdd {
				v.StoredAdded = int(n)
			}
		}
	}
	if tool, err := count(bus.StreamTool, "omni.tool.crm.lookup.requested"); err == nil {
		for _, n := range tool {
			v.CRMLookups += int(n)
		}
	}
	like := "%:lg" + r.w.nonce + "-%"
	if err := r.stats.QueryRow(ctx, `SELECT count(*) FROM messages WHERE event_id LIKE $1`, like).Scan(&v.MessageRows); err != nil {
		problem("messages: %v", err)
	}
	s := &rep.Store
	if err := r.stats.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM customers WHERE created_by_event LIKE $1),
			(SELECT count(*) FROM customers WHERE created_by_event LIKE $1 AND merged_into IS NULL),
			(SELECT count(*) FROM customer_merges WHERE event_id LIKE $1),
			(SELECT count(*) FROM conversations WHERE opened_by_event LIKE $1 AND status <> 'merged'),
			(SELECT count(*) FROM conversations WHERE opened_by_event LIKE $1 AND status <> 'merged' AND cardinality(channels) > 1)`, like).
		Scan(&s.Customers, &s.LiveCustomers, &s.Merges, &s.Conversations, &s.CrossChannel); err != nil {
		problem("store: %v", err)
	}
	want := r.cfg.Events + r.cfg.Backlog
	if v.Distinct != want {
		problem("%d of %d events were published", v.Distinct, want)
	}
	if v.DeskAdded != v.Distinct {
		problem("%d distinct message.added desk events for %d events", v.DeskAdded, v.Distinct)
	}
	if v.DeskDuplicates != 0 {
		problem("%d message.added desk events repeated an event id", v.DeskDuplicates)
	}
	if err := r.stats.QueryRow(ctx, `SELECT count(*) FROM messages WHERE event_id LIKE $1`, "reply"+r.w.nonce+"-%").Scan(&v.ReplyRows); err != nil {
		problem("messages: %v", err)
	}
	// Each reply first seen through a status is one message.added too.
	if v.StoredAdded != v.Distinct+v.ReplyRows {
		problem("OMNI_DESK holds %d message.added for %d events and %d replies", v.StoredAdded, v.Distinct, v.ReplyRows)
	}
	if v.MessageRows != v.Distinct {
		problem("the session store holds %d messages for %d events", v.MessageRows, v.Distinct)
	}
	if r.cfg.Duplicates > 0 && v.Distinct >= 1000 && v.Replays == 0 {
		problem("no replay was published")
	}
	v.ExactlyOnce = len(v.Problems) == 0
}

// --- the table -----------------------------------------------------------------------------------

// WriteTable prints the report for people.
func (rep *Report) WriteTable(w io.Writer) {
	s := rep.Setup
	fmt.Fprintf(w, "omnibus bench — %d CPUs, %s; NATS JetStream embedded (sync %s); Postgres %s\n", s.CPUs, s.GoVersion, s.NATSSync, s.Postgres)
	if len(s.PGSettings) > 0 {
		var kv []string
		for k, v := range s.PGSettings {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		fmt.Fprintf(w, "  postgres settings: %s\n", strings.Join(kv, " "))
	}
	tel := "off"
	if s.Telemetry {
		tel = "on (OTel SDK spans + Prometheus metrics, as the all-in-one)"
	}
	fmt.Fprintf(w, "unifier: UNIFIER_BATCH=%d UNIFIER_WORKERS=%d, telemetry %s\n", s.Batch, s.Workers, tel)
	statuses := ""
	switch {
	case s.Statuses > 0 && s.StatusUpdates > 0:
		statuses = fmt.Sprintf(", %.0f%% followed by a new reply's %d statuses (sent, then updates; extra events, not counted)", 100*s.Statuses, 1+s.StatusUpdates)
	case s.Statuses > 0:
		statuses = fmt.Sprintf(", %.0f%% followed by a status of a reply (extra events, not counted)", 100*s.Statuses)
	}
	fmt.Fprintf(w, "workload: %d events at %s + backlog %d; %d customers, %.0f%% cross-channel, %.1f%% replays%s; %d publishers × chunks of %d; seed %d\n\n",
		s.Events, rateText(s.Rate), s.Backlog, s.Customers, 100*s.CrossChannel, 100*s.Duplicates, statuses, s.Publishers, s.Chunk, s.Seed)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(cols ...string) { fmt.Fprintln(tw, strings.Join(cols, "\t")) }
	row("MEASUREMENT", "RATE", "TIME", "GO CPU", "PG CPU", "NOTES")
	if raw := rep.Raw; raw != nil {
		if j := raw.JetStream; j != nil {
			row("raw JetStream publish+consume (no work)", num(j.PerSecond)+" ev/s", secs(j.Seconds), cores(j.GoCores), cores(j.PGCores),
				fmt.Sprintf("%d events; async publish in chunks, 1 pull consumer acking each", j.Count))
		}
		if p := raw.Postgres; p != nil {
			row(fmt.Sprintf("raw Postgres COPY, %d rows/tx × %d conns", s.Batch, s.Workers), num(p.PerSecond)+" rows/s", secs(p.Seconds),
				cores(p.GoCores), cores(p.PGCores), fmt.Sprintf("%d rows like messages; %.3f commits/row, %s WAL/row", p.Count, p.CommitsPerRow, bytes(p.WALBytesPerRow)))
		}
	}
	if p := rep.Sustained; p != nil {
		target := "full speed"
		if p.TargetRate > 0 {
			target = "target " + num(p.TargetRate) + " ev/s"
		}
		row("sustained: published", num(p.PublishRate)+" ev/s", secs(p.PublishSeconds), "", "",
			fmt.Sprintf("%s; %d events + %d replays", target, p.Events, p.Replays))
		kept := ""
		if p.KeptUp != nil {
			kept = "kept up: no; "
			if *p.KeptUp {
				kept = "kept up: yes; "
			}
		}
		row("sustained: applied (desk message.added)", num(p.AppliedRate)+" ev/s", secs(p.Seconds), cores(p.GoCores), cores(p.PGCores),
			fmt.Sprintf("%s1-s windows median %s peak %s; max backlog %d; drained %s after the last publish", kept, num(p.MedianSecond), num(p.PeakSecond), p.MaxBacklog, secs(p.DrainSeconds)))
		if l := p.Latency; l != nil {
			row("sustained: ingest→desk latency", "", "", "", "",
				fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  (mean %s, %d events)", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), ms(l.Mean), l.Samples))
		}
		row("sustained: Postgres", "", "", "", "", pgLine(p))
	}
	if p := rep.CatchUp; p != nil {
		row("catch-up: backlog published (unifier stopped)", num(p.PublishRate)+" ev/s", secs(p.PublishSeconds), "", "",
			fmt.Sprintf("%d events + %d replays", p.Events, p.Replays))
		row("catch-up: applied (desk message.added)", num(p.AppliedRate)+" ev/s", secs(p.Seconds), cores(p.GoCores), cores(p.PGCores),
			fmt.Sprintf("from unifier start; 1-s windows median %s peak %s", num(p.MedianSecond), num(p.PeakSecond)))
		row("catch-up: Postgres", "", "", "", "", pgLine(p))
	}
	if raw := rep.Raw; raw != nil && raw.Store != nil {
		p := raw.Store
		row(fmt.Sprintf("raw Postgres COPY of the stored rows, %d events/tx × %d conns", s.Batch, s.Workers), num(p.PerSecond)+" ev/s", secs(p.Seconds),
			cores(p.GoCores), cores(p.PGCores), fmt.Sprintf("%d rows of %d events (%.2f per event: %s); %.3f commits/row, %s WAL/row",
				p.Rows, p.Count, p.RowsPerEvent, strings.Join(storeTables, ", "), p.CommitsPerRow, bytes(p.WALBytesPerRow)))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	if rep.Ratios.SustainedVsJetStream > 0 || rep.Ratios.CatchUpVsPostgres > 0 || rep.Ratios.CatchUpVsStore > 0 {
		fmt.Fprintln(w, "RATIOS")
		if x := rep.Ratios.SustainedVsJetStream; x > 0 {
			fmt.Fprintf(w, "  unifier sustained / raw JetStream:    %s  (%.4f)\n", pct(x), x)
		}
		if x := rep.Ratios.CatchUpVsPostgres; x > 0 {
			fmt.Fprintf(w, "  unifier catch-up / batched insert:    %s  (%.4f)\n", pct(x), x)
		}
		if x := rep.Ratios.CatchUpVsStore; x > 0 {
			fmt.Fprintf(w, "  unifier catch-up / batched insert of the stored rows:  %s  (%.4f)\n", pct(x), x)
		}
		if f := rep.Ratios.Floor; f > 0 {
			fmt.Fprintf(w, "  floor: %s ev/s = 1 / (m / raw JetStream + 1 / stored-rows COPY), m = 1 + desk events per message\n", num(f))
			fmt.Fprintf(w, "    (this machine doing nothing but carrying each event and its desk events through JetStream and writing its rows)\n")
			if rep.Setup.NATSSync == "always" {
				fmt.Fprintf(w, "    (not a bound with every write fsynced: the raw ceiling takes an fsync per message, the unifier's atomic batches one per batch)\n")
			}
			fmt.Fprintf(w, "  unifier sustained / floor:            %s  (%.4f)\n", pct(rep.Ratios.SustainedVsFloor), rep.Ratios.SustainedVsFloor)
			fmt.Fprintf(w, "  unifier catch-up / floor:             %s  (%.4f)\n", pct(rep.Ratios.CatchUpVsFloor), rep.Ratios.CatchUpVsFloor)
		}
		fmt.Fprintln(w)
	}
	v := rep.Verify
	if !v.Checked {
		return
	}
	ok := "yes"
	if !v.ExactlyOnce {
		ok = "NO"
	}
	replies := ""
	if v.ReplyRows > 0 {
		replies = fmt.Sprintf(" (+ %d replies first seen through a status)", v.ReplyRows)
	}
	fmt.Fprintf(w, "EXACTLY ONCE: %s — %d distinct events, %d replays published; message.added: %d seen on the desk (%d repeats), %d stored in OMNI_DESK%s; %d rows in messages\n",
		ok, v.Distinct, v.Replays, v.DeskAdded, v.DeskDuplicates, v.StoredAdded, replies, v.MessageRows)
	for _, p := range v.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
	st := rep.Store
	perMsg := 0.0
	if v.Distinct > 0 {
		perMsg = float64(v.StoredDeskTotal) / float64(v.Distinct)
	}
	fmt.Fprintf(w, "store: %d customers created, %d live after %d merges; %d conversations (%d cross-channel); %d desk events stored (%.2f per message); %d CRM lookups requested\n",
		st.Customers, st.LiveCustomers, st.Merges, st.Conversations, st.CrossChannel, v.StoredDeskTotal, perMsg, v.CRMLookups)
	if pg := rep.Postgres; pg != nil {
		fmt.Fprintln(w)
		if pg.Note != "" {
			fmt.Fprintf(w, "POSTGRES STATEMENTS: %s\n", pg.Note)
			return
		}
		fmt.Fprintf(w, "POSTGRES STATEMENTS over the unifier phases (pg_stat_statements): %s calls = %.1f per event (server time only, by total time)\n", num(float64(pg.Calls)), pg.PerEvent)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PER EVENT\tCALLS\tTOTAL\tMEAN\tQUERY")
		for _, q := range pg.Top {
			fmt.Fprintf(tw, "%.2f\t%d\t%s\t%.3f ms\t%s\n", q.PerEvent, q.Calls, secs(q.TotalMS/1000), q.MeanMS, trunc(q.Query, 110))
		}
		_ = tw.Flush()
		if len(pg.Tables) > 0 {
			ev := float64(max(1, rep.Setup.Events+rep.Setup.Backlog))
			fmt.Fprintln(w, "\nTABLES over the unifier phases (pg_stat_user_tables), per event:")
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TABLE\tSEQ SCANS\tROWS READ BY SEQ SCANS\tINDEX SCANS\tINS\tUPD\tDEL\tLIVE/DEAD ROWS AT END\tAUTOANALYZES")
			for _, t := range pg.Tables {
				fmt.Fprintf(tw, "%s\t%.3f\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%d/%d\t%d\n", t.Table, float64(t.SeqScans)/ev, num(float64(t.SeqRows)/ev),
					float64(t.IdxScans)/ev, float64(t.Inserts)/ev, float64(t.Updates)/ev, float64(t.Deletes)/ev, t.LiveRows, t.DeadRows, t.Analyzes)
			}
			_ = tw.Flush()
		}
		if len(pg.Waits) > 0 {
			fmt.Fprintln(w, "\nUNIFIER BACKENDS over the unifier phases (pg_stat_activity every 25 ms, share of connection-samples):")
			for _, x := range pg.Waits {
				if x.Share >= 0.001 {
					fmt.Fprintf(w, "  %5.1f%%  %s\n", 100*x.Share, x.State)
				}
			}
		}
	}
}

func pgLine(p *Phase) string {
	cpu := ""
	if p.GoMicrosPerEvent > 0 && p.PGMicrosPerEvent > 0 {
		cpu = fmt.Sprintf(", CPU %.0f µs (bench process %.0f + Postgres %.0f)", p.GoMicrosPerEvent+p.PGMicrosPerEvent, p.GoMicrosPerEvent, p.PGMicrosPerEvent)
	}
	return fmt.Sprintf("per event: %.3f commits, %s WAL%s; %d rollbacks, %d deadlocks", p.CommitsPerEvent, bytes(p.WALBytesPerEvent), cpu, p.Rollbacks, p.Deadlocks)
}

func num(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "-"
	}
	s := strconv.FormatInt(int64(math.Round(f)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func secs(s float64) string {
	if s < 10 {
		return strconv.FormatFloat(s, 'f', 2, 64) + " s"
	}
	return strconv.FormatFloat(s, 'f', 1, 64) + " s"
}

func ms(v float64) string {
	switch {
	case v >= 10000:
		return strconv.FormatFloat(v/1000, 'f', 1, 64) + " s"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
	default:
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	}
}

func cores(c float64) string {
	if c < 0 {
		return "-"
	}
	return strconv.FormatFloat(c, 'f', 2, 64)
}

func bytes(b float64) string {
	if b >= 1024 {
		return strconv.FormatFloat(b/1024, 'f', 1, 64) + " KiB"
	}
	return strconv.FormatFloat(b, 'f', 0, 64) + " B"
}

func pct(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) + "%" }

func trunc(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
