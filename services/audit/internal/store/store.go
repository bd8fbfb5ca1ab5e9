// Package store owns the audit service's Postgres schema: the day-partitioned audit_records table
// (embedded goose migrations), its partitions, batched idempotent inserts and the queries behind
// the API.
package store

import (
	"context"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"

	auditrec "github.com/omnibus-dev/omnibus/pkg/audit"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies every pending migration to the database at url (safe from several replicas:
// goose takes an advisory lock).
func Migrate(ctx context.Context, url string) error {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	defer db.Close()
	return MigrateDB(ctx, db)
}

// MigrateDB applies every pending migration through db.
func MigrateDB(ctx context.Context, db *sql.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	// Its own version table and lock: the audit service may share a database with the unifier
	// and the desk, whose migrations are versioned independently.
	st, err := database.NewStore(database.DialectPostgres, "audit_goose_db_version")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(4_710_901_177))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider("", db, sub, goose.WithStore(st), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Row is one stored record.
type Row struct {
	ID string `json:"id"` // the event id
	auditrec.Record
}

// Store reads and writes audit_records.
type Store struct {
	db    *pgxpool.Pool
	mu    sync.Mutex
	known map[string]bool // partitions known to exist, by name
}

// New returns a store on db.
func New(db *pgxpool.Pool) *Store { return &Store{db: db, known: map[string]bool{}} }

const partitionPrefix = "audit_records_p"

// Day returns the UTC day holding t.
func Day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// PartitionName is the partition of day: audit_records_pYYYYMMDD.
func PartitionName(day time.Time) string { return partitionPrefix + Day(day).Format("20060102") }

// EnsurePartitions creates the daily partitions of every day from..to (inclusive) that does not
// exist yet.
func (s *Store) EnsurePartitions(ctx context.Context, from, to time.Time) error {
	var days []time.Time
	for d := Day(from); !d.After(Day(to)); d = d.AddDate(0, 0, 1) {
		days = append(days, d)
	}
	return s.ensureDays(ctx, days)
}

func (s *Store) ensureDays(ctx context.Context, days []time.Time) error {
	var missing []time.Time
	s.mu.Lock()
	for _, d := range days {
		if !s.known[PartitionName(d)] {
			missing = append(missing, d)
		}
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		// Replicas create partitions one at a time.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('omnibus.audit_records.partitions'))`); err != nil {
			return err
		}
		for _, d := range missing {
			name := PartitionName(d)
			q := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF audit_records FOR VALUES FROM ('%s') TO ('%s')`,
				pgx.Identifier{name}.Sanitize(), d.Format(time.RFC3339), d.AddDate(0, 0, 1).Format(time.RFC3339))
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("create partition %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, d := range missing {
		s.known[PartitionName(d)] = true
	}
	s.mu.Unlock()
	return nil
}

// Partitions lists the existing partitions' days, oldest first.
func (s *Store) Partitions(ctx context.Context) ([]time.Time, error) {
	rows, err := s.db.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit_records'::regclass`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var days []time.Time
	for _, n := range names {
		if d, err := time.Parse("20060102", strings.TrimPrefix(n, partitionPrefix)); err == nil && strings.HasPrefix(n, partitionPrefix) {
			days = append(days, d)
		}
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
	return days, nil
}

// DropBefore drops every partition whose whole day is before cutoff and returns their names.
func (s *Store) DropBefore(ctx context.Context, cutoff time.Time) ([]string, error) {
	days, err := s.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	var dropped []string
	for _, d := range days {
		if d.AddDate(0, 0, 1).After(cutoff) {
			break
		}
		name := PartitionName(d)
		if _, err := s.db.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
			return dropped, fmt.Errorf("drop partition %s: %w", name, err)
		}
		s.mu.Lock()
		delete(s.known, name)
		s.mu.Unlock()
		dropped = append(dropped, name)
	}
	return dropped, nil
}

// Insert stores rows in one statement, creating their days' partitions first. A row whose event
// id and time are already stored is skipped. It returns how many rows were new.
func (s *Store) Insert(ctx context.Context, rows []Row) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	seen := map[time.Time]bool{}
	var days []time.Time
	for _, r := range rows {
		if d := Day(r.At); !seen[d] {
			seen[d] = true
			days = append(days, d)
		}
	}
	if err := s.ensureDays(ctx, days); err != nil {
		return 0, err
	}
	n := len(rows)
	var (
		ids, services, vendors, ops, outcomes     = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		codes, errs, fallbacks, traces, customers = make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		correlations, requests, responses         = make([]*string, n), make([]*string, n), make([]*string, n)
		ats                                       = make([]time.Time, n)
		statuses, attempts                        = make([]*int32, n), make([]int32, n)
		latencies                                 = make([]float64, n)
		idempotent                                = make([]bool, n)
	)
	for i, r := range rows {
		ids[i], ats[i], services[i], vendors[i], ops[i], outcomes[i] = r.ID, r.At, r.Service, r.Vendor, r.Op, r.Outcome
		if r.Status != 0 {
			st := int32(r.Status)
			statuses[i] = &st
		}
		codes[i], errs[i], fallbacks[i] = opt(r.Code), opt(r.Error), opt(r.Fallback)
		traces[i], customers[i], correlations[i] = opt(r.TraceID), opt(r.CustomerID), opt(r.CorrelationID)
		latencies[i], attempts[i], idempotent[i] = r.LatencyMS, int32(r.Attempts), r.Idempotent
		requests[i], responses[i] = body(r.Request), body(r.Response)
	}
	tag, err := s.db.Exec(ctx, `INSERT INTO audit_records (event_id, at, service, vendor, op, outcome, status, code, error,
			latency_ms, attempts, idempotent, fallback, trace_id, customer_id, correlation_id, request, response)
		SELECT u.event_id, u.at, u.service, u.vendor, u.op, u.outcome, u.status, u.code, u.error, u.latency_ms, u.attempts,
			u.idempotent, u.fallback, u.trace_id, u.customer_id, u.correlation_id, u.request::jsonb, u.response::jsonb
		FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[],
			$9::text[], $10::float8[], $11::int[], $12::bool[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[])
			AS u(event_id, at, service, vendor, op, outcome, status, code, error, latency_ms, attempts, idempotent, fallback,
				trace_id, customer_id, correlation_id, request, response)
		ON CONFLICT (at, event_id) DO NOTHING`,
		ids, ats, services, vendors, ops, outcomes, statuses, codes, errs, latencies, attempts, idempotent, fallbacks,
		traces, customers, correlations, requests, responses)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23514" { // no partition for a row: our cache was stale
			s.mu.Lock()
			s.known = map[string]bool{}
			s.mu.Unlock()
		}
		return 0, fmt.Errorf("insert audit records: %w", err)
	}
	return tag.RowsAffected(), nil
}

func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func body(b *auditrec.Body) *string {
	if b == nil {
		return nil
	}
	j, err := json.Marshal(b)
	if err != nil {
		return nil
	}
	s := string(j)
	return &s
}

// Filter selects records. Zero fields do not filter. Records come newest first.
type Filter struct {
	From, To   time.Time // at >= From, at < To
	Service    string
	Vendor     string
	Op         string
	Outcome    string
	CustomerID string
	TraceID    string
	Limit      int    // default 100, at most 1000
	Cursor     string // NextCursor of the previous page
}

// Page is one page of records.
type Page struct {
	Records    []Row  `json:"records"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// MaxLimit bounds Filter.Limit.
const MaxLimit = 1000

// ErrBadCursor is returned for a cursor this store did not make.
var ErrBadCursor = errors.New("invalid cursor")

func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	at, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", ErrBadCursor
	}
	return at, id, nil
}

// Query returns the page of records f selects, newest first, with a cursor to the next page when
// there may be more.
func (s *Store) Query(ctx context.Context, f Filter) (Page, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, MaxLimit)
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if !f.From.IsZero() {
		add("at >= $%d", f.From)
	}
	if !f.To.IsZero() {
		add("at < $%d", f.To)
	}
	for col, v := range map[string]string{"service": f.Service, "vendor": f.Vendor, "op": f.Op, "outcome": f.Outcome,
		"customer_id": f.CustomerID, "trace_id": f.TraceID} {
		if v != "" {
			add(col+" = $%d", v)
		}
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return Page{}, err
		}
		args = append(args, at, id)
		where = append(where, fmt.Sprintf("(at, event_id) < ($%d, $%d)", len(args)-1, len(args)))
	}
	q := `SELECT event_id, at, service, vendor, op, outcome, coalesce(status, 0), coalesce(code, ''), coalesce(error, ''),
		latency_ms, attempts, idempotent, coalesce(fallback, ''), coalesce(trace_id, ''), coalesce(customer_id, ''),
		coalesce(correlation_id, ''), request, response FROM audit_records`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit+1)
	q += fmt.Sprintf(" ORDER BY at DESC, event_id DESC LIMIT $%d", len(args))
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return Page{}, fmt.Errorf("query audit records: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Row, error) {
		var r Row
		var req, resp []byte
		err := row.Scan(&r.ID, &r.At, &r.Service, &r.Vendor, &r.Op, &r.Outcome, &r.Status, &r.Code, &r.Error,
			&r.LatencyMS, &r.Attempts, &r.Idempotent, &r.Fallback, &r.TraceID, &r.CustomerID, &r.CorrelationID, &req, &resp)
		if err != nil {
			return r, err
		}
		r.At = r.At.UTC()
		if req != nil {
			r.Request = &auditrec.Body{}
			_ = json.Unmarshal(req, r.Request)
		}
		if resp != nil {
			r.Response = &auditrec.Body{}
			_ = json.Unmarshal(resp, r.Response)
		}
		return r, nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("query audit records: %w", err)
	}
	p := Page{Records: out}
	if len(out) > f.Limit {
		p.Records = out[:f.Limit]
		last := p.Records[f.Limit-1]
		p.NextCursor = encodeCursor(last.At, last.ID)
	}
	if p.Records == nil {
		p.Records = []Row{}
	}
	return p, nil
}
