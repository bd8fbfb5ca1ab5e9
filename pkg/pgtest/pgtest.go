package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omnibus-dev/omnibus/pkg/pgembed"
)

// EnvDatabaseURL names the environment variable that points pgtest at an
// existing server instead of starting one, e.g.
// postgres://postgres@localhost:5432/postgres?sslmode=disable.
const EnvDatabaseURL = "TEST_DATABASE_URL"

const (
	// startTimeout bounds starting (or connecting to) the cluster.
	startTimeout = 2 * time.Minute
	// migrateTimeout bounds building a template, migrations included.
	migrateTimeout = 5 * time.Minute
	// dbTimeout bounds creating, connecting to and dropping a test database.
	dbTimeout = time.Minute
	// stopTimeout bounds shutting the cluster down.
	stopTimeout = 30 * time.Second
	// createAttempts is how often CREATE DATABASE is tried while the
	// template is in use.
	createAttempts = 20
	// maxNameLen bounds migration set names, so that template names stay
	// within PostgreSQL's 63-byte identifiers.
	maxNameLen = 40
	// sqlstateObjectInUse is what CREATE DATABASE reports when someone is
	// connected to its template.
	sqlstateObjectInUse = "55006"
)

// clusterSettings trade durability, which tests don't need, for speed, and
// leave room for many parallel tests with a pool each.
var clusterSettings = map[string]string{
	"fsync":              "off",
	"synchronous_commit": "off",
	"full_page_writes":   "off",
	"max_connections":    "300",
}

// Option configures [NewDB] and [NewDBURL].
type Option func(*options)

type options struct {
	name    string // migration set; empty for an empty database
	migrate func(ctx context.Context, url string) error
	err     error
}

// WithMigrations makes the new database a copy of a template database that
// migrate has migrated. name identifies the migration set: migrate runs once
// per test binary for each name, on the first use of that name, and later
// uses of the name reuse the template whatever function they pass. name may
// contain lowercase letters, digits and underscores, up to 40 of them.
//
// migrate gets a context and the URL of the template database. It should
// close its connections before it returns; pgtest ends any it leaves open.
func WithMigrations(name string, migrate func(ctx context.Context, url string) error) Option {
	return func(o *options) {
		switch {
		case !validName(name):
			o.err = fmt.Errorf("pgtest: invalid migration set name %q: use 1 to %d lowercase letters, digits and underscores", name, maxNameLen)
		case migrate == nil:
			o.err = fmt.Errorf("pgtest: migration set %q has a nil migrate function", name)
		}
		o.name, o.migrate = name, migrate
	}
}

// NewDB creates a database for t, as [NewDBURL] does, and returns a pool of
// connections to it. The pool is closed, and the database dropped, when t
// ends.
func NewDB(t testing.TB, opts ...Option) *pgxpool.Pool {
	t.Helper()
	dbURL := NewDBURL(t, opts...)
	ctx, cancel := context.WithTimeout(t.Context(), dbTimeout)
	defer cancel()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatalf("pgtest: creating pool: %v", err)
	}
	// Registered after the drop in NewDBURL, so it runs before it.
	t.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("pgtest: connecting to test database: %v", err)
	}
	return pool
}

// NewDBURL creates a database for t and returns a URL to connect to it. The
// database is empty, or a copy of a migrated template with
// [WithMigrations]. It is dropped when t ends, even if connections to it are
// still open.
//
// NewDBURL starts the cluster of the test binary on first use. If
// PostgreSQL is not installed it skips t, or fails it when the environment
// variable CI is true.
func NewDBURL(t testing.TB, opts ...Option) string {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	c := getCluster(t)

	var tmpl string
	if o.migrate != nil {
		var err error
		if tmpl, err = c.template(t, o.name, o.migrate); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), dbTimeout)
	defer cancel()
	begin := time.Now()
	name := "test_" + randomHex(8)
	if err := c.createDB(ctx, name, tmpl); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
		defer cancel()
		if err := c.dropDB(ctx, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	if tmpl != "" {
		t.Logf("pgtest: created database %s from %s in %s", name, tmpl, time.Since(begin).Round(time.Microsecond))
	} else {
		t.Logf("pgtest: created database %s in %s", name, time.Since(begin).Round(time.Microsecond))
	}
	return c.url(name)
}

// TestingM is what a TestMain runs: *testing.M, or a wrapper of it. It
// matches goleak.TestingM.
type TestingM interface {
	Run() int
}

// Wrap returns a TestingM whose Run runs m and then shuts the cluster down,
// if it was started, for use with helpers that take a TestingM:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Wrap(m)) }
//
// A failure to shut down makes Run return a failing code.
func Wrap(m TestingM) TestingM { return wrapped{m} }

// WrapMain runs the tests, shuts the cluster down, if it was started, and
// exits with the result. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.WrapMain(m) }
func WrapMain(m *testing.M) { os.Exit(Wrap(m).Run()) }

type wrapped struct{ m TestingM }

func (w wrapped) Run() int {
	code := w.m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// shared is the cluster of this test binary, the package's only global
// state.
var shared struct {
	once sync.Once
	c    *cluster
	err  error
}

var errShutDown = errors.New("pgtest: the cluster has been shut down")

// getCluster returns the cluster, starting it on first use. It skips or
// fails t if there is none.
func getCluster(t testing.TB) *cluster {
	t.Helper()
	var took time.Duration // set if this call started the cluster
	shared.once.Do(func() {
		begin := time.Now()
		shared.c, shared.err = startCluster()
		took = time.Since(begin)
	})
	if shared.err != nil {
		checkStartError(t, shared.err)
	}
	if took > 0 {
		t.Logf("pgtest: %s ready in %s", shared.c, took.Round(time.Millisecond))
	}
	return shared.c
}

// checkStartError skips t when PostgreSQL is not installed, unless on CI,
// and fails it otherwise.
func checkStartError(t testing.TB, err error) {
	t.Helper()
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); errors.Is(err, pgembed.ErrNoBinaries) && !ci {
		t.Skipf("pgtest: skipping test that needs PostgreSQL: %v", err)
		return
	}
	t.Fatalf("pgtest: no PostgreSQL for tests: %v", err)
}

// shutdown shuts the cluster down if it was started. Later uses fail.
func shutdown() error {
	// This orders shutdown after a start in progress, and prevents one.
	shared.once.Do(func() { shared.err = errShutDown })
	if shared.c == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	return shared.c.close(ctx)
}

// cluster is a server that pgtest creates databases on.
type cluster struct {
	server *pgembed.Server // nil for TEST_DATABASE_URL
	base   string          // connection string of the maintenance database
	admin  *pgxpool.Pool   // connections to base, to create and drop databases
	suffix string          // of template names, on a server other binaries may share
	// strategy is appended to CREATE DATABASE. On our own cluster, which
	// does not fsync, copying the files of a small database was as fast as
	// writing it to the WAL (the default of PostgreSQL 15 and later), and up
	// to twice as fast, in our measurements; on a shared server, the
	// checkpoints that file copies cause would slow everyone down.
	strategy string

	// createMu serialises CREATE DATABASE. Copying a template fails while
	// any session is connected to it; serialising keeps our copies from
	// getting in each other's way, and concurrent copies would gain little
	// anyway, since each one checkpoints or writes the whole database to
	// the WAL. createDB retries when an outside session is in the way.
	createMu sync.Mutex

	mu        sync.Mutex
	templates map[string]*template // by migration set name
}

// template is the template database of a migration set.
type template struct {
	once sync.Once
	db   string
	err  error // set once migrated, or not
}

func startCluster() (_ *cluster, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c := &cluster{templates: make(map[string]*template)}
	defer func() {
		if err != nil {
			_ = c.close(ctx)
		}
	}()
	if base := os.Getenv(EnvDatabaseURL); base != "" {
		c.base, c.suffix = base, "_"+randomHex(4)
		if _, err := withDatabase(base, "postgres"); err != nil {
			return nil, fmt.Errorf("pgtest: parsing %s: %w", EnvDatabaseURL, err)
		}
	} else {
		if c.server, err = pgembed.Start(ctx, pgembed.Options{Settings: clusterSettings}); err != nil {
			return nil, err
		}
		c.base = c.server.URL("postgres")
	}
	if c.admin, err = pgxpool.New(ctx, c.base); err != nil {
		return nil, fmt.Errorf("pgtest: connecting to %s: %w", c, err)
	}
	var version int
	if err := c.admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return nil, fmt.Errorf("pgtest: connecting to %s: %w", c, err)
	}
	if c.server != nil && version >= 150000 {
		c.strategy = " STRATEGY FILE_COPY"
	}
	return c, nil
}

// String describes the cluster without credentials.
func (c *cluster) String() string {
	if c.server != nil {
		return fmt.Sprintf("PostgreSQL on port %d", c.server.Port())
	}
	return "PostgreSQL server from " + EnvDatabaseURL
}

// url returns a connection URL for database db.
func (c *cluster) url(db string) string {
	u, err := withDatabase(c.base, db)
	if err != nil {
		panic(err) // base was checked when the cluster started
	}
	return u
}

// template returns the template database of migration set name, building
// it on first use.
func (c *cluster) template(t testing.TB, name string, migrate func(ctx context.Context, url string) error) (string, error) {
	t.Helper()
	c.mu.Lock()
	tp := c.templates[name]
	if tp == nil {
		tp = &template{db: "tmpl_" + name + c.suffix}
		c.templates[name] = tp
	}
	c.mu.Unlock()
	var took time.Duration // set if this call built the template
	tp.once.Do(func() {
		// Not bound to t: other tests wait for this template too.
		ctx, cancel := context.WithTimeout(context.Background(), migrateTimeout)
		defer cancel()
		begin := time.Now()
		tp.err = c.buildTemplate(ctx, tp.db, name, migrate)
		took = time.Since(begin)
	})
	if tp.err == nil && took > 0 {
		t.Logf("pgtest: migrated template %s in %s", tp.db, took.Round(time.Millisecond))
	}
	return tp.db, tp.err
}

// buildTemplate creates database db, migrates it and makes it a template.
func (c *cluster) buildTemplate(ctx context.Context, db, name string, migrate func(ctx context.Context, url string) error) error {
	if err := c.dropTemplate(ctx, db); err != nil {
		return err
	}
	if err := c.createDB(ctx, db, ""); err != nil {
		return err
	}
	if err := migrate(ctx, c.url(db)); err != nil {
		return fmt.Errorf("pgtest: migration set %q: %w", name, err)
	}
	// Nobody may be connected to a template while it is copied: refuse new
	// connections, then end those that migrate left open.
	steps := []struct {
		sql  string
		args []any
	}{
		{"ALTER DATABASE " + quote(db) + " WITH ALLOW_CONNECTIONS false", nil},
		{"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", []any{db}},
		{"ALTER DATABASE " + quote(db) + " WITH IS_TEMPLATE true", nil},
	}
	for _, step := range steps {
		if _, err := c.admin.Exec(ctx, step.sql, step.args...); err != nil {
			return fmt.Errorf("pgtest: making %s a template: %w", db, err)
		}
	}
	return nil
}

// createDB creates database name, a copy of template tmpl if not empty.
func (c *cluster) createDB(ctx context.Context, name, tmpl string) error {
	stmt := "CREATE DATABASE " + quote(name)
	if tmpl != "" {
		stmt += " TEMPLATE " + quote(tmpl)
	}
	stmt += c.strategy
	c.createMu.Lock()
	defer c.createMu.Unlock()
	for attempt := 1; ; attempt++ {
		_, err := c.admin.Exec(ctx, stmt)
		if err == nil {
			return nil
		}
		// "source database is being accessed by other users": another
		// process, or a session that has not finished ending, is connected
		// to the template. Wait for it to go.
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != sqlstateObjectInUse || attempt == createAttempts {
			return fmt.Errorf("pgtest: %s: %w", stmt, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgtest: %s: %w (after %w)", stmt, ctx.Err(), err)
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		}
	}
}

// dropDB drops database name, disconnecting its sessions.
func (c *cluster) dropDB(ctx context.Context, name string) error {
	if _, err := c.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+quote(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	return nil
}

// dropTemplate drops template database name if it exists.
func (c *cluster) dropTemplate(ctx context.Context, name string) error {
	var isTemplate bool
	err := c.admin.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&isTemplate)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("pgtest: looking up database %s: %w", name, err)
	}
	if isTemplate {
		if _, err := c.admin.Exec(ctx, "ALTER DATABASE "+quote(name)+" WITH IS_TEMPLATE false"); err != nil {
			return fmt.Errorf("pgtest: unmarking template %s: %w", name, err)
		}
	}
	if err := c.dropDB(ctx, name); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// close drops the templates from a shared server and stops an embedded one.
// Test databases are dropped by their tests.
func (c *cluster) close(ctx context.Context) error {
	var errs []error
	if c.server == nil && c.admin != nil {
		c.mu.Lock()
		for _, tp := range c.templates {
			if err := c.dropTemplate(ctx, tp.db); err != nil {
				errs = append(errs, err)
			}
		}
		c.mu.Unlock()
	}
	if c.admin != nil {
		c.admin.Close()
	}
	if c.server != nil {
		if err := c.server.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("pgtest: stopping PostgreSQL: %w", err))
		}
	}
	return errors.Join(errs...)
}

// withDatabase returns connection string base with its database replaced by
// db. base is a postgres:// URL or a keyword/value connection string.
func withDatabase(base, db string) (string, error) {
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		// In keyword/value strings, the last value of a keyword wins.
		return base + " dbname=" + quoteKeywordValue(db), nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path, u.RawPath = "/"+db, ""
	if q := u.Query(); q.Has("dbname") { // it would override the path
		q.Del("dbname")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

func validName(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

func quote(ident string) string { return pgx.Identifier{ident}.Sanitize() }

func quoteKeywordValue(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}
