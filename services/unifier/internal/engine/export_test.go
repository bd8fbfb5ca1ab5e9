package engine

import "context"

// SetPerEvent makes ApplyBatch run every event through its handler: the reference the
// set-based path is compared with.
func SetPerEvent(en *Engine, on bool) { en.perEvent = on }

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
