package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/pgtest"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/engine"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

// Upgrading from one outbox row per event (migration 5) to batches (6) keeps the rows still
// waiting, in order: the relay publishes them as they were (the invalid one dead-lettered), and
// rolling back restores them.
func TestOutboxBatchesMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewDB(t)
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = db.Close() })
	if err := store.MigrateDBTo(ctx, db, 5); err != nil {
		t.Fatal(err)
	}
	const closed = `{"conversation":{"id":"c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f","customer_id":"3f6c1b8e-2d4a-5e7f-9a1b-6c2d8e4f0a13","status":"closed","channels":["wechatkf"],"opened_at":"2026-11-27T08:00:00Z","closed_at":"2026-11-27T08:20:00Z","close_reason":"客户问题已解决","last_event_at":"2026-11-27T08:15:00Z"},"reason":"客户问题已解决"}`
	if _, err := pool.Exec(ctx, `INSERT INTO outbox (id, subject, type, ce_subject, partitionkey, correlationid, time, data) VALUES
		('old-1', 'omni.desk.conversation.closed', 'omni.desk.conversation.closed', 'c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f', 'phone:+8613800138000', 'in-1', '2026-11-27T08:20:00.123456Z', $1),
		('old-2', 'omni.desk.message.added', 'omni.desk.message.added', NULL, NULL, NULL, '2026-11-27T08:21:00Z', '{"nonsense": true}'),
		('old-3', 'omni.desk.conversation.closed', 'omni.desk.conversation.closed', 'c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f', NULL, 'in-3', '2026-11-27T08:22:00Z', $1)`,
		closed); err != nil {
		t.Fatal(err)
	}
	const list = `SELECT id, subject, type, coalesce(ce_subject, '-'), coalesce(partitionkey, '-'), coalesce(correlationid, '-'),
		time::text, data::jsonb::text FROM outbox ORDER BY seq`
	before := rowsOf(t, pool, list)
	if len(before) != 3 {
		t.Fatalf("outbox before the migration: %q", before)
	}
	if err := store.MigrateDB(ctx, db); err != nil {
		t.Fatal(err)
	}
	if after := rowsOf(t, pool, list); !slices.Equal(after, before) {
		t.Fatalf("outbox after the migration:\n%q\nbefore:\n%q", after, before)
	}
	if err := store.MigrateDBTo(ctx, db, 5); err != nil {
		t.Fatal(err)
	}
	if down := rowsOf(t, pool, list); !slices.Equal(down, before) {
		t.Fatalf("outbox after rolling back:\n%q\nbefore:\n%q", down, before)
	}
	if err := store.MigrateDB(ctx, db); err != nil {
		t.Fatal(err)
	}

	nb := bustest.New(t, bus.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	relay := engine.NewRelay(pool, nb.Client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if n, err := relay.Flush(ctx); err != nil || n != 3 {
		t.Fatalf("flush: %d events, %v (want 3)", n, err)
	}
	got := nb.Events(t, bus.StreamDesk, ">")
	if len(got) != 2 || got[0].ID() != "old-1" || got[1].ID() != "old-3" {
		t.Fatalf("published %v, want old-1 and old-3", got)
	}
	e := got[0]
	if e.Subject() != "c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f" || e.Time().UTC().Format("15:04:05.000000") != "08:20:00.123456" ||
		e.Extensions()["partitionkey"] != "phone:+8613800138000" || e.Extensions()["correlationid"] != "in-1" {
		t.Fatalf("old-1 published as %v", e)
	}
	if dl := nb.StoredCount(t, bus.StreamDLQ, "omni.dlq.unifier"); dl != 1 {
		t.Fatalf("dead letters: %d, want old-2", dl)
	}
}

// Version 2 batches (migration 9: each event with the traceparent it continues) read in SQL as
// version 1 did; rolling back rewrites them as version 1 without it; the relay publishes both,
// the version 2 event in its trace.
func TestOutboxTraceparentMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewDB(t)
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = db.Close() })
	if err := store.MigrateDBTo(ctx, db, 8); err != nil {
		t.Fatal(err)
	}
	const closed = `{"conversation":{"id":"c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f","customer_id":"3f6c1b8e-2d4a-5e7f-9a1b-6c2d8e4f0a13","status":"closed","channels":["wechatkf"],"opened_at":"2026-11-27T08:00:00Z","closed_at":"2026-11-27T08:20:00Z","close_reason":"客户问题已解决","last_event_at":"2026-11-27T08:15:00Z"},"reason":"客户问题已解决"}`
	// A version 1 batch, as the engine wrote before migration 9 (what 00006 moved over).
	if _, err := pool.Exec(ctx, `INSERT INTO outbox_batches (n, events) SELECT 1, '\x01'::bytea
		|| int4send(2) || convert_to('v1', 'UTF8') || int4send(29) || convert_to('omni.desk.conversation.closed', 'UTF8')
		|| int4send(29) || convert_to('omni.desk.conversation.closed', 'UTF8') || int4send(0) || int4send(0) || int4send(0)
		|| int8send(1764231600000000) || int4send(octet_length(convert_to($1, 'UTF8'))) || convert_to($1, 'UTF8')`, closed); err != nil {
		t.Fatal(err)
	}
	if err := store.MigrateDB(ctx, db); err != nil {
		t.Fatal(err)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if err := engine.InsertOutbox(ctx, pool, engine.OutboxEvent{ID: "v2", Subject: "omni.desk.conversation.closed",
		Type: "omni.desk.conversation.closed", Data: closed, Trace: tp}); err != nil {
		t.Fatal(err)
	}
	const list = `SELECT id, type, coalesce(correlationid, '-'), data::jsonb::text FROM outbox ORDER BY seq`
	before := rowsOf(t, pool, list)
	if len(before) != 2 || !strings.HasPrefix(before[0], "v1 | ") || !strings.HasPrefix(before[1], "v2 | omni.desk.conversation.closed | cause-v2") {
		t.Fatalf("outbox at version 9: %q", before)
	}
	if err := store.MigrateDBTo(ctx, db, 8); err != nil {
		t.Fatal(err)
	}
	if down := rowsOf(t, pool, list); !slices.Equal(down, before) {
		t.Fatalf("outbox after rolling back:\n%q\nbefore:\n%q", down, before)
	}
	if err := store.MigrateDB(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := engine.InsertOutbox(ctx, pool, engine.OutboxEvent{ID: "v2b", Subject: "omni.desk.conversation.closed",
		Type: "omni.desk.conversation.closed", Data: closed, Trace: tp}); err != nil {
		t.Fatal(err)
	}
	nb := bustest.New(t, bus.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	relay := engine.NewRelay(pool, nb.Client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if n, err := relay.Flush(ctx); err != nil || n != 3 {
		t.Fatalf("flush: %d events, %v (want 3)", n, err)
	}
	got := nb.Events(t, bus.StreamDesk, ">")
	if len(got) != 3 || got[2].ID() != "v2b" {
		t.Fatalf("published %v", got)
	}
	if tr := got[2].Extensions()["traceparent"]; tr != tp {
		t.Fatalf("v2b's traceparent %v, want %s", tr, tp)
	}
	if tr, ok := got[0].Extensions()["traceparent"]; ok && tr == tp {
		t.Fatalf("the version 1 event got a trace context it never had: %v", tr)
	}
}

// rowsOf returns the rows of a query whose columns are all text, each joined by " | ".
func rowsOf(t *testing.T, pool *pgxpool.Pool, sql string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		vals, err := r.Values()
		if err != nil {
			return "", err
		}
		cols := make([]string, len(vals))
		for i, v := range vals {
			cols[i] = fmt.Sprint(v)
		}
		return strings.Join(cols, " | "), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
