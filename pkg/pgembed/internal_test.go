package pgembed

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestFindBinariesIn(t *testing.T) {
	root := t.TempDir()
	// mk creates dir with the given programs; executable says whether they
	// get execute bits.
	mk := func(dir string, executable bool, programs ...string) string {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if executable {
			mode = 0o755
		}
		for _, p := range programs {
			if err := os.WriteFile(filepath.Join(dir, p), []byte("#!/bin/sh\n"), mode); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	versions := filepath.Join(root, "versions")
	mk(filepath.Join(versions, "9.6", "bin"), true, "initdb", "postgres")
	v10 := mk(filepath.Join(versions, "10", "bin"), true, "initdb", "postgres")
	mk(filepath.Join(versions, "15", "bin"), true, "initdb")                  // no postgres
	mk(filepath.Join(versions, "16", "bin"), false, "initdb", "postgres")     // not executable
	mk(filepath.Join(versions, "17beta1", "bin"), true, "initdb", "postgres") // not a version
	onlyInitdb := mk(filepath.Join(root, "path1"), true, "initdb")            // incomplete
	onPath := mk(filepath.Join(root, "path2"), true, "initdb", "postgres")    // complete
	empty := mk(filepath.Join(root, "empty"), true)

	for _, tc := range []struct {
		name string
		path []string
		want string // directory; empty for ErrNoBinaries
	}{
		{"PATH first", []string{"", onlyInitdb, onPath}, onPath},
		{"newest complete version", []string{onlyInitdb}, v10},
		{"nothing", []string{empty}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := versions
			if tc.want == "" {
				root = filepath.Join(root, "missing")
			}
			b, err := findBinariesIn(tc.path, root)
			if tc.want == "" {
				if !errors.Is(err, ErrNoBinaries) {
					t.Fatalf("err = %v, want ErrNoBinaries", err)
				}
				if !strings.Contains(err.Error(), "apt-get install -y postgresql") {
					t.Errorf("error %q does not say what to install", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := binaries{initdb: filepath.Join(tc.want, "initdb"), postgres: filepath.Join(tc.want, "postgres")}
			if b != want {
				t.Errorf("found %+v, want %+v", b, want)
			}
		})
	}
}

func TestVersionDirs(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "15", "10", "9.5", "x", "16.1"} {
		if err := os.Mkdir(filepath.Join(root, v), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, d := range versionDirs(root) {
		got = append(got, filepath.Base(filepath.Dir(d)))
	}
	if want := []string{"16.1", "15", "10", "9.6", "9.5"}; !slices.Equal(got, want) {
		t.Errorf("versionDirs order = %v, want %v", got, want)
	}
}

func TestOutputLog(t *testing.T) {
	o := newOutputLog(slog.New(slog.DiscardHandler), "test")
	if got := o.Tail(); got != "(no output)" {
		t.Errorf("empty Tail = %q", got)
	}
	_, _ = o.Write([]byte("first li"))
	_, _ = o.Write([]byte("ne\r\n\n  \nsecond line\nthird"))
	if got, want := o.Tail(), "first line\nsecond line"; got != want {
		t.Errorf("Tail = %q, want %q", got, want)
	}
	o.flush()
	if got, want := o.Tail(), "first line\nsecond line\nthird"; got != want {
		t.Errorf("Tail after flush = %q, want %q", got, want)
	}
	for i := range 30 {
		fmt.Fprintf(o, "line %d\n", i)
	}
	lines := strings.Split(o.Tail(), "\n")
	if len(lines) != tailLines || lines[0] != "line 10" || lines[tailLines-1] != "line 29" {
		t.Errorf("Tail keeps %d lines from %q to %q, want %d from line 10 to line 29",
			len(lines), lines[0], lines[len(lines)-1], tailLines)
	}
}

func TestServerSettings(t *testing.T) {
	got := serverSettings(5433, "/tmp/x", map[string]string{"fsync": "off", "unix_socket_directories": "", "archive_mode": "off"})
	want := []string{
		"listen_addresses=127.0.0.1",
		"port=5433",
		"unix_socket_directories=/tmp/x",
		"archive_mode=off",
		"fsync=off",
		"unix_socket_directories=", // later settings win
	}
	if !slices.Equal(got, want) {
		t.Errorf("serverSettings = %q, want %q", got, want)
	}
}

func TestFsyncOff(t *testing.T) {
	for _, tc := range []struct {
		settings map[string]string
		want     bool
	}{
		{nil, false},
		{map[string]string{"fsync": "on"}, false},
		{map[string]string{"fsync": "off"}, true},
		{map[string]string{"FSYNC": " False"}, true},
		{map[string]string{"synchronous_commit": "off"}, false},
	} {
		if got := fsyncOff(tc.settings); got != tc.want {
			t.Errorf("fsyncOff(%v) = %v, want %v", tc.settings, got, tc.want)
		}
	}
}
