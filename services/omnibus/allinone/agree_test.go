package allinone

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestDecide: the rule that says whether the log and the database belong together, and what the
// all-in-one does about it, case by case.
func TestDecide(t *testing.T) {
	t.Parallel()
	const logID = "OMNI_IN@2026-12-01T08:00:00.123456789Z"
	acked := []progress{
		{Service: "desk", Stream: "OMNI_DESK", Consumer: "desk", AckFloor: 1200},
		{Service: "unifier", Stream: "OMNI_IN", Consumer: "unifier-live-0-2", AckFloor: 597},
		{Service: "unifier", Stream: "OMNI_TOOL", Consumer: "unifier-tool", AckFloor: 12},
	}
	bound := &binding{LogID: logID, At: time.Date(2026, 12, 1, 8, 0, 1, 0, time.UTC)}
	rebuilding := &binding{LogID: logID, Rebuilding: true, At: bound.At}
	other := &binding{LogID: "OMNI_IN@2026-11-01T08:00:00Z", At: bound.At}
	newLog := logState{ID: logID, Where: ".omnibus/nats", Reset: "rm -rf .omnibus (the whole data dir)"}
	usedLog := newLog
	usedLog.Progress = acked
	store := func(b *binding, empty bool) storeState {
		return storeState{Where: ".omnibus/postgres", Reset: "rm -rf .omnibus/postgres", Binding: b, Empty: empty}
	}
	for _, tc := range []struct {
		name    string
		log     logState
		store   storeState
		rebuild bool
		want    action
		wantErr []string // substrings of the refusal; nil: no error
	}{
		{name: "first start", log: newLog, store: store(nil, true), want: actBind},
		{name: "first start, rebuild asked", log: newLog, store: store(nil, true), rebuild: true, want: actRebuild},
		{name: "restart", log: usedLog, store: store(bound, false), want: actStart},
		{name: "restart, rebuild asked", log: usedLog, store: store(bound, false), rebuild: true, want: actStart},
		{name: "restart before any ack", log: newLog, store: store(bound, true), want: actStart},
		{name: "database from before the binding", log: usedLog, store: store(nil, false), want: actBind},
		{name: "database wiped", log: usedLog, store: store(nil, true), wantErr: []string{
			"refusing to start", "NATS (.omnibus/nats): services that keep their state in the database have acked messages",
			"unifier (2 consumers, up to OMNI_IN #597, OMNI_TOOL #12); desk (1 consumer, up to OMNI_DESK #1200)",
			"Postgres (.omnibus/postgres): empty", "start with --rebuild (or OMNIBUS_REBUILD=true), which rebuilds unifier; desk has no rebuild and starts on an empty store",
			"nats consumer rm -f <stream> <consumer>", "rm -rf .omnibus (the whole data dir)"}},
		{name: "database wiped, rebuild asked", log: usedLog, store: store(nil, true), rebuild: true, want: actRebuild},
		{name: "tables dropped, binding kept", log: usedLog, store: store(bound, true), wantErr: []string{"Postgres (.omnibus/postgres): empty"}},
		{name: "another log", log: usedLog, store: store(other, false), wantErr: []string{
			"holds stores built from the log OMNI_IN@2026-11-01T08:00:00Z", "holds the log " + logID,
			"rm -rf .omnibus/postgres, then start with --rebuild"}},
		{name: "another log, rebuild asked", log: usedLog, store: store(other, false), rebuild: true, wantErr: []string{"holds the log " + logID}},
		{name: "another log, database empty", log: usedLog, store: store(other, true), wantErr: []string{"holds the log " + logID}},
		{name: "another log, database empty, rebuild asked", log: usedLog, store: store(other, true), rebuild: true, want: actRebuild},
		{name: "rebuild interrupted", log: usedLog, store: store(rebuilding, false), wantErr: []string{"did not finish", "rm -rf .omnibus/postgres"}},
		{name: "rebuild interrupted, rebuild asked", log: usedLog, store: store(rebuilding, false), rebuild: true, wantErr: []string{"did not finish"}},
		{name: "rebuild interrupted before it wrote, rebuild asked", log: usedLog, store: store(rebuilding, true), rebuild: true, want: actRebuild},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := decide(tc.log, tc.store, tc.rebuild, []string{"unifier"})
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("decide = %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrDisagree) {
				t.Fatalf("decide = %v, %v; want ErrDisagree", got, err)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the refusal lacks %q:\n%s", want, err)
				}
			}
		})
	}
}

func TestOwnerOf(t *testing.T) {
	t.Parallel()
	names := []string{"unifier", "desk", "audit"}
	for consumer, want := range map[string]string{
		"unifier": "unifier", "unifier-live-0-2-4": "unifier", "unifier-tool": "unifier", "desk": "desk", "desk-in": "desk",
		"audit": "audit", "unifierx": "", "deskbot": "", "demo": "", "sms-out": "",
	} {
		if got := ownerOf(consumer, names); got != want {
			t.Errorf("ownerOf(%q) = %q, want %q", consumer, got, want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://omnibus:s3cret@db:5432/omnibus?sslmode=disable": "postgres://omnibus:xxxxx@db:5432/omnibus?sslmode=disable",
		"nats://127.0.0.1:4222":           "nats://127.0.0.1:4222",
		"host=db user=omnibus password=x": "(a connection string that is not a URL)",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOpenDBFailureCleansUp: a database that cannot be opened is an error, not a panic in the
// cleanup (a failing return used to leave the deferred cleanup calling a nil closeDB).
func TestOpenDBFailureCleansUp(t *testing.T) {
	t.Parallel()
	pool, closeDB, err := openDB(t.Context(), Config{DatabaseURL: "postgres://omnibus@127.0.0.1:1/x?pool_max_conns=not-a-number"}, slog.New(slog.DiscardHandler))
	if err == nil || pool != nil || closeDB != nil {
		t.Fatalf("openDB = %v, %v, %v: want an error", pool, closeDB != nil, err)
	}
}
