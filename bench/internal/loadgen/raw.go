package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

const (
	rawStream  = "LOADGEN_RAW"
	rawDurable = "loadgen-raw"
)

// rawJetStream is the JetStream ceiling: the same events, encoded as the bus puts them on the
// wire, published asynchronously in chunks by the same publishers onto a scratch stream shaped
// like OMNI_IN, while one durable pull consumer acks each message and does nothing else. The
// rate is events / (first publish → last ack).
func (r *runner) rawJetStream(ctx context.Context, n int) (*RawResult, error) {
	pubJS, err := jetstream.New(r.pubConn, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, err
	}
	conJS, err := jetstream.New(r.uniConn)
	if err != nil {
		return nil, err
	}
	sc := bus.Streams(bus.StreamsConfig{})[0] // OMNI_IN's definition
	sc.Name, sc.Description, sc.Subjects = rawStream, "omnibus bench: raw JetStream ceiling (scratch)", []string{"loadgen.raw.>"}
	if _, err := pubJS.CreateOrUpdateStream(ctx, sc); err != nil {
		return nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = pubJS.DeleteStream(dctx, rawStream)
	}()
	cons, err := conJS.CreateOrUpdateConsumer(ctx, rawStream, jetstream.ConsumerConfig{
		Durable: rawDurable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		MaxDeliver: -1, MaxAckPending: 1024, // what bus.Subscribe sets by default
	})
	if err != nil {
		return nil, err
	}
	var got atomic.Int64
	var lastAck atomic.Int64
	done := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if got.Add(1) == int64(n) {
			lastAck.Store(time.Now().UnixNano())
			close(done)
		}
	}, jetstream.PullMaxMessages(256))
	if err != nil {
		return nil, err
	}
	defer func() { cc.Stop(); <-cc.Closed() }()

	schemaURL, fingerprint := r.pub.Schemas().SchemaURL(typeReceived), r.pub.Schemas().Fingerprint()
	a := r.mark(ctx)
	start := time.Now()
	jobs := make(chan [2]int, r.cfg.Publishers)
	go func() {
		defer close(jobs)
		for lo := 0; lo < n; lo += r.cfg.Chunk {
			select {
			case jobs <- [2]int{lo, min(lo+r.cfg.Chunk, n)}:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	var perr error
	var once sync.Once
	fail := func(err error) { once.Do(func() { perr = err }) }
	for range r.cfg.Publishers {
		wg.Go(func() {
			futs := make([]jetstream.PubAckFuture, 0, r.cfg.Chunk)
			for j := range jobs {
				now := time.Now()
				futs = futs[:0]
				for i := j[0]; i < j[1]; i++ {
					sp := r.w.spec(i)
					o, err := r.w.event(sp, now)
					if err != nil {
						fail(err)
						return
					}
					o.Event.SetDataSchema(schemaURL)
					h, body, err := event.Encode(o.Event)
					if err != nil {
						fail(err)
						return
					}
					h.Set(bus.HeaderSchema, fingerprint)
					h.Set(jetstream.MsgIDHeader, o.Event.ID())
					p := bus.Partition(event.PartitionKey(o.Event), bus.InPartitions)
					f, err := pubJS.PublishMsgAsync(&nats.Msg{Subject: "loadgen.raw." + channels[sp.channel].name + ".message." + strconv.Itoa(p), Header: h, Data: body})
					if err != nil {
						fail(err)
						return
					}
					futs = append(futs, f)
				}
				// An fsync-bound JetStream (--nats-sync always) on a busy disk can take seconds per
				// chunk: give up only after the stall limit, as the phases do.
				wctx, cancel := context.WithTimeout(ctx, r.cfg.Stall)
				for _, f := range futs {
					select {
					case <-f.Ok():
					case err := <-f.Err():
						fail(err)
					case <-wctx.Done():
						fail(wctx.Err())
					}
				}
				cancel()
			}
		})
	}
	wg.Wait()
	if perr != nil {
		return nil, perr
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(r.cfg.Stall):
		return nil, fmt.Errorf("consumed %d of %d", got.Load(), n)
	}
	b := r.mark(ctx)
	d := time.Unix(0, lastAck.Load()).Sub(start)
	res := &RawResult{Count: n, Seconds: d.Seconds(), PerSecond: rate(n, d)}
	var ph Phase
	usage(&ph, a, b, n)
	res.GoCores, res.PGCores = ph.GoCores, ph.PGCores
	return res, nil
}

// rawPostgres is the Postgres ceiling: the same rows, shaped like the unifier's messages table
// (same columns, primary key and index), inserted with COPY in one transaction per batch of
// UNIFIER_BATCH rows, by UNIFIER_WORKERS connections in parallel.
func (r *runner) rawPostgres(ctx context.Context, n int) (*RawResult, error) {
	table := "loadgen_raw_messages_" + r.w.nonce
	pool, err := r.rawPool(ctx)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE `+table+` (
		event_id text PRIMARY KEY, conversation_id uuid NOT NULL, customer_id uuid NOT NULL, channel text NOT NULL,
		direction text NOT NULL CHECK (direction IN ('inbound', 'outbound')), identity_kind text NOT NULL,
		identity_value text NOT NULL, body jsonb NOT NULL, sent_at timestamptz NOT NULL, status text, status_at timestamptz);
		CREATE INDEX ON `+table+` (conversation_id, sent_at)`); err != nil {
		return nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = pool.Exec(dctx, `DROP TABLE IF EXISTS `+table)
	}()
	cols := []string{"event_id", "conversation_id", "customer_id", "channel", "direction", "identity_kind", "identity_value", "body", "sent_at"}
	batch := max(1, r.ucfg.BatchSize)
	a := r.mark(ctx)
	d, err := r.copyTxs(ctx, pool, (n+batch-1)/batch, func(tx pgx.Tx, k int) error {
		now := time.Now()
		rows := make([][]any, 0, batch)
		for i := k * batch; i < min((k+1)*batch, n); i++ {
			rows = append(rows, r.w.row(r.w.spec(i), now))
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return nil, err
	}
	b := r.mark(ctx)
	var count int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&count); err != nil {
		return nil, err
	}
	if count != n {
		return nil, fmt.Errorf("%d rows inserted, want %d", count, n)
	}
	res := &RawResult{Count: n, Seconds: d.Seconds(), PerSecond: rate(n, d)}
	var ph Phase
	usage(&ph, a, b, n)
	res.GoCores, res.PGCores, res.CommitsPerRow, res.WALBytesPerRow = ph.GoCores, ph.PGCores, ph.CommitsPerEvent, ph.WALBytesPerEvent
	return res, nil
}

// storeTables are the tables whose rows the unifier keeps per event: what rawStore copies.
var storeTables = []string{"processed_events", "customers", "identities", "conversations", "messages"}

// rawStore is the Postgres ceiling for the rows the unifier actually wrote: every row of
// storeTables after the phases, copied into empty tables of the same shape (columns, defaults,
// checks, primary keys and indexes; no foreign keys) with COPY, one transaction per
// UNIFIER_BATCH events' worth of rows of every table, by UNIFIER_WORKERS connections. Its rate
// is in events/s: rows/s over the rows per event the run stored.
func (r *runner) rawStore(ctx context.Context, events int) (*RawResult, error) {
	pool, err := r.rawPool(ctx)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	type table struct {
		name, copy string
		cols       []string
		rows       [][]any
	}
	tables := make([]*table, len(storeTables))
	total := 0
	for i, name := range storeTables {
		t := &table{name: name, copy: "loadgen_raw_" + name + "_" + r.w.nonce}
		rows, err := pool.Query(ctx, `SELECT * FROM `+name)
		if err != nil {
			return nil, err
		}
		for _, f := range rows.FieldDescriptions() {
			t.cols = append(t.cols, f.Name)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				rows.Close()
				return nil, err
			}
			t.rows = append(t.rows, vals)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if _, err := pool.Exec(ctx, `CREATE TABLE `+t.copy+` (LIKE `+name+` INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)`); err != nil {
			return nil, err
		}
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, _ = pool.Exec(dctx, `DROP TABLE IF EXISTS `+t.copy)
		}()
		tables[i] = t
		total += len(t.rows)
	}
	if events < 1 || total == 0 {
		return nil, fmt.Errorf("no rows stored for %d events", events)
	}
	batch := max(1, r.ucfg.BatchSize)
	txs := (events + batch - 1) / batch
	a := r.mark(ctx)
	d, err := r.copyTxs(ctx, pool, txs, func(tx pgx.Tx, k int) error {
		for _, t := range tables {
			lo, hi := k*len(t.rows)/txs, (k+1)*len(t.rows)/txs
			if lo == hi {
				continue
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.copy}, t.cols, pgx.CopyFromRows(t.rows[lo:hi])); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	b := r.mark(ctx)
	res := &RawResult{Count: events, Rows: total, RowsPerEvent: float64(total) / float64(events), Seconds: d.Seconds(), PerSecond: rate(events, d)}
	var ph Phase
	usage(&ph, a, b, total)
	res.GoCores, res.PGCores, res.CommitsPerRow, res.WALBytesPerRow = ph.GoCores, ph.PGCores, ph.CommitsPerEvent, ph.WALBytesPerEvent
	return res, nil
}

// copyTxs runs txs transactions, fn(tx, k) for k = 0..txs-1, on UNIFIER_WORKERS connections in
// parallel, and returns how long they took.
func (r *runner) copyTxs(ctx context.Context, pool *pgxpool.Pool, txs int, fn func(tx pgx.Tx, k int) error) (time.Duration, error) {
	jobs := make(chan int, r.ucfg.Workers)
	go func() {
		defer close(jobs)
		for k := range txs {
			select {
			case jobs <- k:
			case <-ctx.Done():
				return
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, max(1, r.ucfg.Workers))
	for w := range errs {
		wg.Go(func() {
			for k := range jobs {
				if errs[w] == nil {
					errs[w] = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return fn(tx, k) })
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return d, err
	}
	return d, ctx.Err()
}

// rawPool is the pool of a Postgres ceiling: UNIFIER_WORKERS connections, named for the bench.
func (r *runner) rawPool(ctx context.Context) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(r.dbURL)
	if err != nil {
		return nil, err
	}
	pcfg.MaxConns = int32(max(1, r.ucfg.Workers))
	pcfg.ConnConfig.RuntimeParams["application_name"] = benchAppName + "-raw"
	return pgxpool.NewWithConfig(ctx, pcfg)
}
