package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// SuccessOutcomes are the audit outcomes that count as a successful vendor call.
var SuccessOutcomes = []string{"ok", "success", "completed"}

// RouteStats summarises one vendor route (<vendor>.<op>) over a window.
type RouteStats struct {
	Route       string         `json:"route"`
	Vendor      string         `json:"vendor"`
	Op          string         `json:"op"`
	Calls       int            `json:"calls"`
	OK          int            `json:"ok"`
	SuccessRate float64        `json:"success_rate"` // 0..1
	P50MS       float64        `json:"p50_ms"`
	P99MS       float64        `json:"p99_ms"`
	Codes       map[string]int `json:"codes"` // error code (or outcome) → calls, failures only
	Breaker     string         `json:"breaker,omitempty"`
	LastAt      time.Time      `json:"last_at"`
	Series      []Bucket       `json:"series"`
}

// Bucket is one step of a route's chart.
type Bucket struct {
	At     time.Time `json:"at"`
	Calls  int       `json:"calls"`
	Errors int       `json:"errors"`
	P50MS  float64   `json:"p50_ms"`
}

// RouteStats returns the stats of every route with calls since since, with a chart series of
// the given step.
func (s *Store) RouteStats(ctx context.Context, since time.Time, step time.Duration) ([]RouteStats, error) {
	rows, err := s.pool.Query(ctx, `SELECT route, min(vendor), min(op), count(*),
			count(*) FILTER (WHERE outcome = ANY($2)),
			coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms), 0),
			coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms), 0),
			(array_agg(breaker ORDER BY at DESC))[1], max(at)
		FROM desk.vendor_calls WHERE at >= $1 GROUP BY route ORDER BY route`, since, SuccessOutcomes)
	if err != nil {
		return nil, err
	}
	stats, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RouteStats, error) {
		var st RouteStats
		err := r.Scan(&st.Route, &st.Vendor, &st.Op, &st.Calls, &st.OK, &st.P50MS, &st.P99MS, &st.Breaker, &st.LastAt)
		if st.Calls > 0 {
			st.SuccessRate = float64(st.OK) / float64(st.Calls)
		}
		st.Codes = map[string]int{}
		st.Series = []Bucket{}
		return st, err
	})
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	for i, st := range stats {
		idx[st.Route] = i
	}
	rows, err = s.pool.Query(ctx, `SELECT route, CASE WHEN code <> '' THEN code ELSE outcome END, count(*)
		FROM desk.vendor_calls WHERE at >= $1 AND NOT outcome = ANY($2) GROUP BY 1, 2`, since, SuccessOutcomes)
	if err != nil {
		return nil, err
	}
	var route, code string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&route, &code, &n}, func() error {
		if i, ok := idx[route]; ok {
			stats[i].Codes[code] = n
		}
		return nil
	}); err != nil {
		return nil, err
	}
	secs := step.Seconds()
	rows, err = s.pool.Query(ctx, `SELECT route, to_timestamp(floor(extract(epoch FROM at) / $3) * $3) AS b, count(*),
			count(*) FILTER (WHERE NOT outcome = ANY($2)),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms)
		FROM desk.vendor_calls WHERE at >= $1 GROUP BY 1, 2 ORDER BY 1, 2`, since, SuccessOutcomes, secs)
	if err != nil {
		return nil, err
	}
	var b Bucket
	if _, err := pgx.ForEachRow(rows, []any{&route, &b.At, &b.Calls, &b.Errors, &b.P50MS}, func() error {
		if i, ok := idx[route]; ok {
			b.At = b.At.UTC()
			stats[i].Series = append(stats[i].Series, b)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if stats == nil {
		stats = []RouteStats{}
	}
	return stats, nil
}
