//go:build linux

package faultload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omnibus-dev/omnibus/pkg/pgembed"
)

// startPostgres starts a Postgres for t, skipping when PostgreSQL is not installed (failing
// under CI=true, as pkg/pgtest does).
func startPostgres(t *testing.T) *Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pg, err := StartPostgres(ctx, filepath.Join(t.TempDir(), "pg"), nil)
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); errors.Is(err, pgembed.ErrNoBinaries) && !ci {
			t.Skipf("needs PostgreSQL (apt-get install -y postgresql): %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pg.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return pg
}

func TestPostgresFaults(t *testing.T) {
	t.Parallel()
	pg := startPostgres(t)
	url := pg.URL()
	ctx := context.Background()
	// An open connection, as a service's pool holds.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	query := func(c *pgx.Conn, within time.Duration) error {
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		var one int
		return c.QueryRow(ctx, "SELECT 1").Scan(&one)
	}
	if err := query(conn, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	// Paused: neither the open connection's backend nor the postmaster answers.
	if err := pg.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := query(conn, 500*time.Millisecond); err == nil {
		t.Fatal("a query on an open connection answered while postgres was paused")
	}
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	if c, err := pgx.Connect(cctx, url); err == nil {
		c.Close(ctx)
		t.Fatal("a new connection was accepted while postgres was paused")
	}
	cancel()
	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	fresh, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting after resume: %v", err)
	}
	defer fresh.Close(ctx)
	if err := query(fresh, 5*time.Second); err != nil {
		t.Fatalf("after resume: %v", err)
	}

	// Stopped and started again: same URL, same data.
	if _, err := fresh.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pg.Pause(); err == nil {
		t.Fatal("Pause of a stopped server succeeded")
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if pg.URL() != url {
		t.Fatalf("URL changed across a restart: %s, then %s", url, pg.URL())
	}
	again, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close(ctx)
	var v int
	if err := again.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 7 {
		t.Fatalf("after a restart: %d, %v", v, err)
	}

	// Close resumes a paused server before stopping it.
	if err := pg.Pause(); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
	defer scancel()
	if err := pg.Close(sctx); err != nil {
		t.Fatalf("closing a paused server: %v", err)
	}
}
