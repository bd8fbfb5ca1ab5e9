package store

import "github.com/jackc/pgx/v5"

// The outbox relay's statements. The relay runs them in a transaction it begins and commits in
// the same batches (engine/outbox.go); transaction control stays there.

// sqlRelayRead takes the relay lock ($1) and, only if it got it, reads the outbox rows past seq
// $2, in order, up to $3 rows and as many as it takes to reach $4 events. It returns the lock's
// outcome and the rows (none: one row with nulls). Only the rows it returns are detoasted.
const sqlRelayRead = `WITH l AS MATERIALIZED (SELECT pg_try_advisory_xact_lock($1) AS held)
	SELECT l.held, b.seq, b.events FROM l LEFT JOIN LATERAL (
		SELECT seq, events FROM (
			SELECT seq, events, sum(n) OVER (ORDER BY seq) - n AS before FROM outbox_batches WHERE seq > $2 ORDER BY seq LIMIT $3
		) q WHERE before < $4 AND l.held
	) b ON true ORDER BY b.seq`

// QueueRelayRead takes the relay's advisory lock and, only if it got it, reads the outbox
// batches past seq after, in order, up to maxRows of them and as many as it takes to reach
// events events. Its rows are (held bool, seq *int64, events []byte): one per batch, or one with
// nulls when there is none or the lock is held elsewhere.
func QueueRelayRead(b *pgx.Batch, lock, after int64, maxRows, events int) {
	b.Queue(sqlRelayRead, lock, after, maxRows, events)
}

// QueueDeleteOutbox deletes the outbox batches seqs (relayed).
func QueueDeleteOutbox(b *pgx.Batch, seqs []int64) {
	b.Queue(`DELETE FROM outbox_batches WHERE seq = ANY($1)`, seqs)
}

// QueueRewriteOutbox replaces outbox batch seq's events with the n events left in it.
func QueueRewriteOutbox(b *pgx.Batch, seq int64, n int, events []byte) {
	b.Queue(`UPDATE outbox_batches SET n = $2, events = $3 WHERE seq = $1`, seq, n, events)
}
