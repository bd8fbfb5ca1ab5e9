package pgtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/pgembed"
)

func TestWithMigrationsValidates(t *testing.T) {
	noop := func(context.Context, string) error { return nil }
	for _, tc := range []struct {
		name    string
		migrate func(context.Context, string) error
		wantErr string
	}{
		{"orders_v2", noop, ""},
		{"", noop, "invalid migration set name"},
		{"Orders", noop, "invalid migration set name"},
		{"a-b", noop, "invalid migration set name"},
		{strings.Repeat("a", maxNameLen+1), noop, "invalid migration set name"},
		{"orders", nil, "nil migrate function"},
	} {
		var o options
		WithMigrations(tc.name, tc.migrate)(&o)
		switch {
		case tc.wantErr == "" && o.err != nil:
			t.Errorf("WithMigrations(%q): %v", tc.name, o.err)
		case tc.wantErr != "" && (o.err == nil || !strings.Contains(o.err.Error(), tc.wantErr)):
			t.Errorf("WithMigrations(%q) error = %v, want one containing %q", tc.name, o.err, tc.wantErr)
		}
	}
}

// TestFailedMigrationsRunOnce checks that a failing migration set fails
// every test that uses it, without running again.
func TestFailedMigrationsRunOnce(t *testing.T) {
	t.Parallel()
	c := getCluster(t)
	var calls atomic.Int32
	boom := errors.New("boom")
	name := fmt.Sprintf("broken_%d", time.Now().UnixNano()) // unique under -count
	migrate := func(context.Context, string) error {
		calls.Add(1)
		return boom
	}
	for range 3 {
		if _, err := c.template(t, name, migrate); !errors.Is(err, boom) {
			t.Errorf("template error = %v, want %v", err, boom)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("migrations ran %d times, want once", n)
	}
}

// fakeTB records how checkStartError ends a test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Skipf(format string, args ...any)  { f.skipped = fmt.Sprintf(format, args...) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

func TestCheckStartError(t *testing.T) {
	noBinaries := fmt.Errorf("pgembed: %w", pgembed.ErrNoBinaries)
	for _, tc := range []struct {
		ci       string
		err      error
		wantSkip bool
	}{
		{"", noBinaries, true},
		{"false", noBinaries, true},
		{"true", noBinaries, false},
		{"1", noBinaries, false},
		{"", errors.New("initdb failed"), false},
	} {
		t.Run(fmt.Sprintf("CI=%q/%v", tc.ci, tc.err), func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			var f fakeTB
			checkStartError(&f, tc.err)
			if tc.wantSkip {
				if f.skipped == "" || f.failed != "" {
					t.Fatalf("skipped %q, failed %q; want a skip", f.skipped, f.failed)
				}
				if !strings.Contains(f.skipped, "apt-get install -y postgresql") {
					t.Errorf("skip message %q does not say what to install", f.skipped)
				}
				return
			}
			if f.failed == "" || f.skipped != "" {
				t.Fatalf("skipped %q, failed %q; want a failure", f.skipped, f.failed)
			}
			if !strings.Contains(f.failed, tc.err.Error()) {
				t.Errorf("failure %q does not quote %q", f.failed, tc.err)
			}
		})
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"postgres://u:p@h:5432/postgres?sslmode=disable", "postgres://u:p@h:5432/test_1?sslmode=disable"},
		{"postgresql://h/", "postgresql://h/test_1"},
		{"postgres://h/x?dbname=y&sslmode=require", "postgres://h/test_1?sslmode=require"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname='test_1'"},
	} {
		got, err := withDatabase(tc.base, "test_1")
		if err != nil || got != tc.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tc.base, got, err, tc.want)
		}
	}
}
