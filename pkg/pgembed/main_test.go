//go:build unix

package pgembed_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/pgembed"
)

// helperEnv makes the test binary act as a parent process that starts a
// server and then waits to be killed; see TestParentDeathKillsServer.
const helperEnv = "PGEMBED_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		helperMain()
		return
	}
	goleak.VerifyTestMain(m)
}

// helperDataDirEnv, if set, is the data directory of the helper's server
// (a temporary one otherwise).
const helperDataDirEnv = "PGEMBED_TEST_HELPER_DATADIR"

// helperBusyEnv, if set, makes the helper write a row to table rounds and
// keep a backend busy in a query before it reports ready.
const helperBusyEnv = "PGEMBED_TEST_HELPER_BUSY"

// helperMain starts a server, prints its data directory and sleeps until it
// is killed.
func helperMain() {
	os.Exit(helper())
}

// helper is helperMain's body; it returns the exit code, so that its deferred calls run.
func helper() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := pgembed.Start(ctx, pgembed.Options{DataDir: os.Getenv(helperDataDirEnv), Settings: map[string]string{"fsync": "off"}})
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	if os.Getenv(helperBusyEnv) != "" {
		if err := busy(ctx, s.URL("")); err != nil {
			fmt.Println("ERROR", err)
			return 1
		}
	}
	fmt.Println("READY", s.DataDir())
	time.Sleep(time.Hour)
	return 2
}

// busy records a round in table rounds and leaves a backend running a long
// query, as a killed process would.
func busy(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS rounds (at timestamptz); INSERT INTO rounds VALUES (now())"); err != nil {
		return err
	}
	sleeper, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	go func() { _, _ = sleeper.Exec(context.WithoutCancel(ctx), "SELECT pg_sleep(3600)") }()
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(3600)' AND state = 'active'").Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}
