package engine

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

// FlushAfterCommit is the relay's flush after a Wake: it reads past the last row it relayed.
func FlushAfterCommit(r *Relay, ctx context.Context) (int, error) {
	n, _, err := r.flush(ctx, false)
	return n, err
}

// LateWindow is how far behind the last relayed seq a flush after a commit looks.
const LateWindow = lateWindow

// SetBeforeWrite sets a hook run before each round's writes.
func SetBeforeWrite(en *Engine, f func()) { en.beforeWrite = f }

// Retries returns the rounds redone after unique-key conflicts and the transactions run again.
func Retries(en *Engine) (rounds, txs int64) { return en.roundConflicts.Load(), en.txRetries.Load() }

// OutboxEvent is an event a test writes to the outbox.
type OutboxEvent struct {
	ID, Subject, Type, CESubject string
	Data                         string // JSON
	Trace                        string // W3C traceparent the event continues
}

// InsertOutbox writes evs to the outbox through q as one batch, as a transaction of the engine
// would.
func InsertOutbox(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, evs ...OutboxEvent) error {
	rows := make([]outboxRow, len(evs))
	traces := map[string]string{}
	for i, e := range evs {
		rows[i] = outboxRow{id: e.ID, subject: e.Subject, typ: e.Type, ceSubject: e.CESubject, corr: "cause-" + e.ID, at: time.Now(),
			data: json.RawMessage(e.Data)}
		traces[rows[i].corr] = e.Trace
	}
	enc, err := encodeOutbox(rows, traces)
	if err != nil {
		return err
	}
	return store.InsertOutbox(ctx, q, len(rows), enc)
}

// SetAfterPublish sets a hook the relay runs between its publish and the commit of its delete,
// with the pid of its Postgres backend.
func SetAfterPublish(r *Relay, f func(pid uint32)) { r.afterPublish = f }
