package pgtest_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omnibus-dev/omnibus/pkg/pgtest"
)

// setNames makes migration set names unique, so that every run of a test
// (go test -count=N) builds its own template.
var setNames atomic.Int32

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s_%d", prefix, setNames.Add(1))
}

// migrateWidgets is a migration set: a table with a seed row. calls counts
// its runs.
func migrateWidgets(calls *atomic.Int32) func(ctx context.Context, url string) error {
	return func(ctx context.Context, url string) error {
		calls.Add(1)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `
			CREATE TABLE widgets (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE);
			INSERT INTO widgets (name) VALUES ('seed');`)
		return err
	}
}

func widgetNames(t testing.TB, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT name FROM widgets ORDER BY id")
	if err != nil {
		t.Fatalf("querying widgets: %v", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("querying widgets: %v", err)
	}
	return names
}

func currentDatabase(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	var name string
	if err := pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestParallelDatabases gives parallel tests each an empty database of
// their own.
func TestParallelDatabases(t *testing.T) {
	t.Parallel()
	var seen sync.Map
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			pool := pgtest.NewDB(t)
			name := currentDatabase(t, pool)
			if !strings.HasPrefix(name, "test_") {
				t.Errorf("database %q lacks the test_ prefix", name)
			}
			if other, dup := seen.LoadOrStore(name, i); dup {
				t.Errorf("database %s given to tests %v and %d", name, other, i)
			}
			var tables int
			if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
				t.Fatal(err)
			}
			if tables != 0 {
				t.Errorf("new database has %d tables, want none", tables)
			}
			// Every test may create the same table: the databases are separate.
			if _, err := pool.Exec(t.Context(), "CREATE TABLE t (i int)"); err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Exec(t.Context(), "INSERT INTO t VALUES ($1)", i); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTemplateMigrations runs parallel tests on copies of one migrated
// template and checks that the migrations ran once.
func TestTemplateMigrations(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	opt := pgtest.WithMigrations(uniqueName("widgets"), migrateWidgets(&calls))
	t.Run("group", func(t *testing.T) {
		for i := range 6 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				pool := pgtest.NewDB(t, opt)
				if got := widgetNames(t, pool); len(got) != 1 || got[0] != "seed" {
					t.Fatalf("new database has widgets %q, want the seed row only", got)
				}
				name := fmt.Sprintf("widget %d", i)
				if _, err := pool.Exec(t.Context(), "INSERT INTO widgets (name) VALUES ($1)", name); err != nil {
					t.Fatal(err)
				}
				// The unique name would clash if the tests shared a table.
				if got := widgetNames(t, pool); len(got) != 2 || got[1] != name {
					t.Errorf("widgets = %q, want seed and %q", got, name)
				}
			})
		}
	})
	if n := calls.Load(); n != 1 {
		t.Errorf("migrations ran %d times, want once", n)
	}
}

// TestIsolation checks that writes to one database are visible neither in
// another copy of its template nor in the template.
func TestIsolation(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	name := uniqueName("isolation")
	opt := pgtest.WithMigrations(name, migrateWidgets(&calls))
	a := pgtest.NewDB(t, opt)
	b := pgtest.NewDB(t, opt)
	if currentDatabase(t, a) == currentDatabase(t, b) {
		t.Fatal("two NewDB calls returned the same database")
	}
	if _, err := a.Exec(t.Context(), "INSERT INTO widgets (name) VALUES ('only in a'); DELETE FROM widgets WHERE name = 'seed'"); err != nil {
		t.Fatal(err)
	}
	if got := widgetNames(t, a); len(got) != 1 || got[0] != "only in a" {
		t.Errorf("widgets in a = %q, want only %q", got, "only in a")
	}
	if got := widgetNames(t, b); len(got) != 1 || got[0] != "seed" {
		t.Errorf("widgets in b = %q, want the seed row only", got)
	}
	c := pgtest.NewDB(t, opt) // copied after a was changed
	if got := widgetNames(t, c); len(got) != 1 || got[0] != "seed" {
		t.Errorf("widgets in a later copy = %q, want the seed row only", got)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("migrations ran %d times, want once", n)
	}

	// The template is marked as one and closed to connections.
	var isTemplate, allowConn bool
	err := a.QueryRow(t.Context(), `SELECT datistemplate, datallowconn FROM pg_database
		 WHERE datname = $1 OR starts_with(datname, $1 || '_')`, "tmpl_"+name).Scan(&isTemplate, &allowConn)
	if err != nil {
		t.Fatal(err)
	}
	if !isTemplate || allowConn {
		t.Errorf("template: datistemplate = %v, datallowconn = %v; want true, false", isTemplate, allowConn)
	}
}

// TestMigrationsLeaveConnectionOpen checks that a connection left open by
// migrations does not keep the template from being copied.
func TestMigrationsLeaveConnectionOpen(t *testing.T) {
	t.Parallel()
	var left *pgx.Conn
	t.Cleanup(func() {
		if left != nil {
			_ = left.Close(context.Background()) // already ended by pgtest
		}
	})
	opt := pgtest.WithMigrations(uniqueName("sloppy"), func(ctx context.Context, url string) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		left = conn
		_, err = conn.Exec(ctx, "CREATE TABLE sloppy (i int)")
		return err
	})
	for range 2 {
		pool := pgtest.NewDB(t, opt)
		if _, err := pool.Exec(t.Context(), "INSERT INTO sloppy VALUES (1)"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNewDBURL checks the URL form and that the database is dropped when the
// test ends, even with a connection left open.
func TestNewDBURL(t *testing.T) {
	t.Parallel()
	var name string
	var leaked *pgx.Conn
	t.Run("sub", func(t *testing.T) {
		url := pgtest.NewDBURL(t)
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		leaked = conn // not closed before the test ends
		if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(url, name) {
			t.Errorf("URL %q does not name database %s", url, name)
		}
	})
	if leaked != nil {
		_ = leaked.Close(context.Background())
	}
	if name == "" { // sub was skipped, or failed
		t.SkipNow()
	}
	pool := pgtest.NewDB(t)
	var exists bool
	if err := pool.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

// BenchmarkNewDB measures creating (and, at the end, dropping) databases.
func BenchmarkNewDB(b *testing.B) {
	b.Run("empty", func(b *testing.B) {
		for b.Loop() {
			pgtest.NewDBURL(b)
		}
	})
	b.Run("template", func(b *testing.B) {
		var calls atomic.Int32
		opt := pgtest.WithMigrations(uniqueName("bench"), migrateWidgets(&calls))
		pgtest.NewDBURL(b, opt) // build the template outside the loop
		for b.Loop() {
			pgtest.NewDBURL(b, opt)
		}
	})
}
