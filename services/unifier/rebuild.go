package unifier

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/engine"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

// RebuildStats reports a rebuild.
type RebuildStats struct {
	Events      int // applied
	Undecodable int // skipped and reported
	Failed      int // rejected by the engine (they are in the live DLQ too)
	Took        time.Duration
}

// Rebuild recreates the session store in the empty database at dbURL from the log: OMNI_IN and
// the tool results in OMNI_TOOL, merged in the order JetStream stored them, applied by the same
// engine as live traffic. Desk events are not re-emitted (they are in OMNI_DESK already).
// keys are the personal-data keys the live unifier runs with (nil: none; sealed events are then
// matched by the blind indexes they carry).
func Rebuild(ctx context.Context, c bus.Replayer, dbURL string, env config.Lookup, keys *pii.Keys, log *slog.Logger) (RebuildStats, error) {
	var st RebuildStats
	start := time.Now()
	var cfg Config
	if err := config.Load(&cfg, env); err != nil {
		return st, err
	}
	if err := store.Migrate(ctx, dbURL); err != nil {
		return st, err
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return st, err
	}
	defer pool.Close()
	n, err := store.ProcessedCount(ctx, pool)
	if err != nil {
		return st, err
	}
	if n > 0 {
		return st, fmt.Errorf("rebuild: the target database already holds %d applied events; rebuild into an empty database", n)
	}
	en := engine.New(pool, engine.Config{IdleTimeout: cfg.IdleTimeout, DefaultRegion: cfg.DefaultRegion, PII: keys}, log)

	// Read both streams concurrently and merge them by stored time.
	type item struct {
		d   bus.Delivery
		err error
	}
	read := func(o bus.ReplayOptions) <-chan item {
		ch := make(chan item, 1024)
		go func() {
			defer close(ch)
			err := c.Replay(ctx, o, func(d bus.Delivery, decErr error) error {
				select {
				case ch <- item{d: d, err: decErr}:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
			if err != nil {
				ch <- item{err: fmt.Errorf("replay %s: %w", o.Stream, err)}
			}
		}()
		return ch
	}
	in := read(bus.ReplayOptions{Stream: bus.StreamIn})
	tool := read(bus.ReplayOptions{Stream: bus.StreamTool, Subjects: ToolSubjects})
	batch := make([]bus.Delivery, 0, cfg.BatchSize)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		errs := en.ApplyBatch(ctx, batch)
		for i, err := range errs {
			if err != nil {
				st.Failed++
				log.Warn("rebuild: event rejected", "id", batch[i].Event.ID(), "type", batch[i].Event.Type(), "err", err)
			}
		}
		st.Events += len(batch) - countErrs(errs)
		batch = batch[:0]
	}
	var a, b *item
	next := func(ch <-chan item) *item {
		if v, ok := <-ch; ok {
			return &v
		}
		return nil
	}
	a, b = next(in), next(tool)
	for a != nil || b != nil {
		var cur *item
		if b == nil || (a != nil && !a.d.Published.After(b.d.Published)) {
			cur, a = a, next(in)
		} else {
			cur, b = b, next(tool)
		}
		switch {
		case cur.err != nil && cur.d.Stream == "":
			return st, cur.err
		case cur.err != nil:
			st.Undecodable++
			log.Warn("rebuild: undecodable message skipped", "stream", cur.d.Stream, "seq", cur.d.StreamSeq, "err", cur.err)
			continue
		}
		if !handled(cur.d) {
			continue
		}
		batch = append(batch, cur.d)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	if err := store.ClearOutbox(ctx, pool); err != nil {
		return st, err
	}
	st.Took = time.Since(start)
	return st, ctx.Err()
}

// handled reports whether the live lanes would have consumed d.
func handled(d bus.Delivery) bool {
	subject := bus.SubjectTemplate(d.Subject)
	for _, patterns := range [][]string{LiveSubjects, BulkSubjects, ToolSubjects} {
		for _, p := range patterns {
			if bus.SubjectMatches(p, subject) {
				return true
			}
		}
	}
	return false
}

func countErrs(errs []error) int {
	n := 0
	for _, e := range errs {
		if e != nil {
			n++
		}
	}
	return n
}
