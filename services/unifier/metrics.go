package unifier

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/omnibus-dev/omnibus/pkg/bus"
)

// The unifier's own metrics, beside the bus's per-consumer ones:
//
//   - omnibus.unifier.events: events applied, by lane (messaging.consumer.group.name) and
//     outcome (applied, failed: the delivery's error, whatever it was);
//   - omnibus.unifier.batch.size: events per applied batch, by lane;
//   - omnibus.unifier.outbox.events and omnibus.unifier.outbox.age: desk events written to
//     the outbox and not yet published, and how long the oldest has waited (seconds) — read
//     from Postgres at collection; both stay near 0 while the relay keeps up.
type metrics struct {
	events metric.Int64Counter
	sizes  metric.Int64Histogram
}

var (
	keyLane     = attribute.Key("messaging.consumer.group.name")
	outcomeOK   = attribute.String("omnibus.outcome", "applied")
	outcomeFail = attribute.String("omnibus.outcome", "failed")
)

func newMetrics(mp metric.MeterProvider, pool *pgxpool.Pool) (*metrics, error) {
	m := mp.Meter("github.com/omnibus-dev/omnibus/services/unifier")
	var err error
	out := &metrics{}
	if out.events, err = m.Int64Counter("omnibus.unifier.events", metric.WithUnit("{event}"),
		metric.WithDescription("Events the unifier applied (or failed to), by lane and outcome.")); err != nil {
		return nil, err
	}
	if out.sizes, err = m.Int64Histogram("omnibus.unifier.batch.size", metric.WithUnit("{event}"),
		metric.WithDescription("Events per batch the unifier applied in one transaction."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)); err != nil {
		return nil, err
	}
	depth, err := m.Int64ObservableGauge("omnibus.unifier.outbox.events", metric.WithUnit("{event}"),
		metric.WithDescription("Desk events committed to the outbox and not yet published."))
	if err != nil {
		return nil, err
	}
	age, err := m.Float64ObservableGauge("omnibus.unifier.outbox.age", metric.WithUnit("s"),
		metric.WithDescription("How long the oldest unpublished outbox event has waited (0 when none)."))
	if err != nil {
		return nil, err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var n int64
		var oldest *time.Time
		// The oldest batch's first event's time (outbox_events decodes one batch).
		err := pool.QueryRow(ctx, `SELECT coalesce((SELECT sum(n) FROM outbox_batches), 0),
			(SELECT e."time" FROM outbox_batches b, outbox_events(b.events) e
			 WHERE b.seq = (SELECT min(seq) FROM outbox_batches) AND e.n = 1)`).Scan(&n, &oldest)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil // Postgres away: the gauges skip this collection
		}
		o.ObserveInt64(depth, n)
		a := 0.0
		if oldest != nil {
			a = max(time.Since(*oldest).Seconds(), 0)
		}
		o.ObserveFloat64(age, a)
		return nil
	}, depth, age)
	return out, err
}

// wrap counts what handle does with each batch.
func (m *metrics) wrap(lane string, handle bus.BatchHandler) bus.BatchHandler {
	laneAttr := keyLane.String(lane)
	ok := metric.WithAttributeSet(attribute.NewSet(laneAttr, outcomeOK))
	fail := metric.WithAttributeSet(attribute.NewSet(laneAttr, outcomeFail))
	size := metric.WithAttributeSet(attribute.NewSet(laneAttr))
	return func(ctx context.Context, batch []bus.Delivery) []error {
		errs := handle(ctx, batch)
		failed := 0
		for _, err := range errs {
			if err != nil {
				failed++
			}
		}
		m.sizes.Record(ctx, int64(len(batch)), size)
		if n := len(batch) - failed; n > 0 {
			m.events.Add(ctx, int64(n), ok)
		}
		if failed > 0 {
			m.events.Add(ctx, int64(failed), fail)
		}
		return errs
	}
}
