//go:build unix

package pgembed_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/pgembed"
)

// TestRestartAfterParentKilled kills the parent of a server on a kept data
// directory, as `kill -9` of the all-in-one does, twice, while a backend is
// busy: the server dies with its parent and leaves postmaster.pid behind
// (its PID a zombie where nothing reaps orphans), and each next Start must
// still start, with the data.
func TestRestartAfterParentKilled(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parent-death signal is Linux-only")
	}
	t.Parallel()
	parent, err := os.MkdirTemp("", "pgembed-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(parent, "data")
	for range 2 {
		helper, _ := runHelper(t, helperDataDirEnv+"="+dataDir, helperBusyEnv+"=1")
		if err := helper.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = helper.Wait()
		if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); err != nil {
			t.Fatalf("the killed server left no postmaster.pid (nothing tested): %v", err)
		}
	}
	s := start(t, pgembed.Options{DataDir: dataDir})
	conn := connect(t, s.URL(""))
	var rounds int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM rounds").Scan(&rounds); err != nil || rounds != 2 {
		t.Fatalf("rounds after two kills: %d, %v; want 2", rounds, err)
	}

	// A running server is not stale: a second one on the same directory is refused.
	if s2, err := pgembed.Start(t.Context(), pgembed.Options{DataDir: dataDir}); !errors.Is(err, pgembed.ErrDataDirInUse) {
		if err == nil {
			_ = s2.Stop(t.Context())
		}
		t.Fatalf("second server on a data directory in use: %v, want ErrDataDirInUse", err)
	}
}

// TestGrantParentSearch: run as root, the server runs as the postgres OS
// user, which must reach the data directory. A parent closed to it is an
// error naming it, or, with GrantParentSearch, gets the search bit. It also
// checks that the half-made cluster of an interrupted initdb is made again
// rather than started.
func TestGrantParentSearch(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another user")
	}
	t.Parallel()
	parent, err := os.MkdirTemp("", "pgembed-test-") // 0700, closed to postgres
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	// What an initdb killed half-way leaves: a data directory with PG_VERSION, and the marker.
	dataDir := filepath.Join(parent, "data")
	if err := os.MkdirAll(filepath.Join(dataDir, "base"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(parent, ".data.initdb")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	_, err = pgembed.Start(t.Context(), pgembed.Options{DataDir: dataDir})
	skipIfNoBinaries(t, err)
	if err == nil || !strings.Contains(err.Error(), "cannot enter "+parent) {
		t.Fatalf("Start under a closed parent: %v, want an error naming %s", err, parent)
	}
	s := start(t, pgembed.Options{DataDir: dataDir, GrantParentSearch: true})
	fi, err := os.Stat(parent)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o701 {
		t.Errorf("parent mode %s, want 0701 (search for others added, nothing else)", fi.Mode().Perm())
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the initdb marker is still there: %v", err)
	}
	checkOwnedByPostgres(t, s.DataDir())
}
