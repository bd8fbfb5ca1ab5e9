package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/engine"
)

// A row the bus refuses is dead-lettered and removed; the valid rows around it are published.
func TestRelayDeadLettersInvalidRows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	nb := bustest.New(t, bus.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	b.apply(t, msg(t, "sms:1", "sms", t0, phone))
	valid := b.count(t, `SELECT count(*) FROM outbox`)
	if err := engine.InsertOutbox(context.Background(), b.pool, engine.OutboxEvent{ID: "bad-1", Subject: "omni.desk.message.added",
		Type: "omni.desk.message.added", Data: `{"nonsense": true}`}); err != nil {
		t.Fatal(err)
	}
	relay := engine.NewRelay(b.pool, nb.Client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	n, err := relay.Flush(context.Background())
	if err != nil || n != valid+1 {
		t.Fatalf("flush: %d rows, %v (want %d)", n, err, valid+1)
	}
	if left := b.count(t, `SELECT count(*) FROM outbox`); left != 0 {
		t.Fatalf("%d rows left in the outbox", left)
	}
	if got := nb.StoredCount(t, bus.StreamDLQ, "omni.dlq.unifier"); got != 1 {
		t.Fatalf("dead letters: %d", got)
	}
	if got := nb.StoredCount(t, bus.StreamDesk, ">") + nb.StoredCount(t, bus.StreamTool, ">"); got != uint64(valid) {
		t.Fatalf("events published: %d, want %d", got, valid)
	}
}

// Batches whose transaction took its seq before, and committed after, batches already relayed:
// within LateWindow seqs, the next flush after a commit relays them; further behind, the periodic full
// flush does. Late rows are late, never lost.
func TestRelayPicksUpLateCommittedRows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	nb := bustest.New(t, bus.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	ctx := context.Background()
	relay := engine.NewRelay(b.pool, nb.Client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	const closedJSON = `{"conversation":{"id":"c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f","customer_id":"3f6c1b8e-2d4a-5e7f-9a1b-6c2d8e4f0a13","status":"closed","channels":["wechatkf"],"opened_at":"2026-11-27T08:00:00Z","closed_at":"2026-11-27T08:20:00Z","close_reason":"客户问题已解决","last_event_at":"2026-11-27T08:15:00Z","assignee":"agent-0042"},"reason":"客户问题已解决"}`
	var closed struct{ Conversation struct{ ID string } }
	if err := json.Unmarshal([]byte(closedJSON), &closed); err != nil {
		t.Fatal(err)
	}
	row := func(q interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	}, id string) {
		t.Helper()
		if err := engine.InsertOutbox(ctx, q, engine.OutboxEvent{ID: id, Subject: "omni.desk.conversation.closed",
			Type: "omni.desk.conversation.closed", CESubject: closed.Conversation.ID, Data: closedJSON}); err != nil {
			t.Fatal(err)
		}
	}
	begin := func() pgx.Tx {
		tx, err := b.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback(ctx) })
		return tx
	}
	flushed := func(what string, flush func(context.Context) (int, error), want int) {
		t.Helper()
		if n, err := flush(ctx); err != nil || n != want {
			t.Fatalf("%s: %d rows, %v (want %d)", what, n, err, want)
		}
	}
	afterCommit := func(ctx context.Context) (int, error) { return engine.FlushAfterCommit(relay, ctx) }

	near := begin()
	row(near, "near") // takes a seq, commits after the next row is relayed
	row(b.pool, "first")
	flushed("flush after commit", afterCommit, 1)
	if err := near.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	flushed("flush after commit (a late row within the window)", afterCommit, 1)

	far := begin()
	row(far, "far")
	if _, err := b.pool.Exec(ctx, `SELECT setval(pg_get_serial_sequence('outbox_batches', 'seq'), nextval(pg_get_serial_sequence('outbox_batches', 'seq')) + $1)`, engine.LateWindow); err != nil {
		t.Fatal(err)
	}
	row(b.pool, "second")
	flushed("flush after commit", afterCommit, 1)
	if err := far.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	flushed("flush after commit (a late row beyond the window)", afterCommit, 0)
	flushed("full flush", relay.Flush, 1)
	if got := nb.StoredCount(t, bus.StreamDesk, ">"); got != 4 {
		t.Fatalf("desk events: %d, want 4", got)
	}
}

// A crash between the publish and the delete leaves the rows in the outbox: the next flush
// publishes them again (an atomic batch is refused as duplicates and republished one by one),
// and JetStream stores every desk event once — with the relay publishing one message at a time
// and as atomic batches (NATS_ATOMIC_BATCHES).
func TestRelayRepublishAfterCrashStoresOnce(t *testing.T) {
	t.Parallel()
	for _, atomic := range []bool{false, true} {
		t.Run(fmt.Sprintf("atomic=%v", atomic), func(t *testing.T) {
			t.Parallel()
			testRelayRepublish(t, atomic)
		})
	}
}

func testRelayRepublish(t *testing.T, atomic bool) {
	b := setup(t)
	nb := bustest.New(t, bus.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), bus.WithAtomicBatches(atomic))
	ctx := context.Background()
	for i := range 20 {
		b.apply(t, msg(t, fmt.Sprintf("sms:%d", i), "sms", t0.Add(time.Duration(i)*time.Second), id{"phone", fmt.Sprintf("+86138001380%02d", i)}))
	}
	rows := b.count(t, `SELECT count(*) FROM outbox`)
	relay := engine.NewRelay(b.pool, nb.Client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	// The crash: a relay published the rows, and its delete was lost.
	if _, err := b.pool.Exec(ctx, `CREATE TABLE outbox_copy AS SELECT * FROM outbox_batches`); err != nil {
		t.Fatal(err)
	}
	if n, err := relay.Flush(ctx); err != nil || n != rows {
		t.Fatalf("flush: %d rows, %v (want %d)", n, err, rows)
	}
	if _, err := b.pool.Exec(ctx, `INSERT INTO outbox_batches SELECT * FROM outbox_copy`); err != nil {
		t.Fatal(err)
	}
	if n, err := relay.Flush(ctx); err != nil || n != rows {
		t.Fatalf("flush after the crash: %d rows, %v (want %d)", n, err, rows)
	}
	checkRelayedOnce(t, b, nb, rows)
}

// Postgres goes away between the relay's publish and the commit of its delete, and comes back
// after longer than JetStream's duplicate window: the relay removes the rows it already
// published without publishing them again, so every desk event is stored once though JetStream
// no longer remembers their ids.
func TestRelayFailedDeleteOutlastingTheDuplicateWindow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	nb := bustest.New(t, bus.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	ctx := context.Background()
	const window = 200 * time.Millisecond
	for _, name := range []string{bus.StreamDesk, bus.StreamTool} {
		st, err := nb.Client.JetStream().Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		cfg.Duplicates = window
		if _, err := nb.Client.JetStream().UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		b.apply(t, msg(t, fmt.Sprintf("sms:%d", i), "sms", t0.Add(time.Duration(i)*time.Second), id{"phone", fmt.Sprintf("+86138001380%02d", i)}))
	}
	rows := b.count(t, `SELECT count(*) FROM outbox`)
	relay := engine.NewRelay(b.pool, nb.Client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	engine.SetAfterPublish(relay, func(pid uint32) {
		// The connection dies before the commit, as under a Postgres stop.
		if _, err := b.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
			t.Error(err)
		}
	})
	if n, err := relay.Flush(ctx); err == nil {
		t.Fatalf("flush with its connection terminated: %d rows, no error", n)
	}
	if left := b.count(t, `SELECT count(*) FROM outbox`); left != rows {
		t.Fatalf("%d rows left in the outbox after the failed delete, want %d", left, rows)
	}
	engine.SetAfterPublish(relay, nil)
	time.Sleep(3 * window) // JetStream forgets the ids
	if n, err := relay.Flush(ctx); err != nil || n != rows {
		t.Fatalf("flush after the outage: %d rows, %v (want %d)", n, err, rows)
	}
	checkRelayedOnce(t, b, nb, rows)
}

// checkRelayedOnce checks that the outbox is empty and that JetStream holds each of its rows'
// events once.
func checkRelayedOnce(t *testing.T, b *bundle, nb *bustest.Bundle, rows int) {
	t.Helper()
	if left := b.count(t, `SELECT count(*) FROM outbox`); left != 0 {
		t.Fatalf("%d rows left in the outbox", left)
	}
	stored := nb.Events(t, bus.StreamDesk, ">")
	stored = append(stored, nb.Events(t, bus.StreamTool, ">")...)
	seen := map[string]bool{}
	for _, e := range stored {
		if seen[e.ID()] {
			t.Fatalf("desk event %s stored twice", e.ID())
		}
		seen[e.ID()] = true
	}
	if len(stored) != rows {
		t.Fatalf("%d events stored for %d outbox rows", len(stored), rows)
	}
}
