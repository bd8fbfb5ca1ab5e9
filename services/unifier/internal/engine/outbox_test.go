package engine_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

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
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO outbox (id, subject, type, time, data)
		VALUES ('bad-1', 'omni.desk.message.added', 'omni.desk.message.added', now(), '{"nonsense": true}')`); err != nil {
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
