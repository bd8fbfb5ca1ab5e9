package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// CanaryRollout is one target's canary rollout for the ops page: State is the data of its latest
// omni.ops.canary.started/changed/rolled_back/ended event, Stats the per-variant windows
// (baseline first) of its latest measured event or of its rollback.
type CanaryRollout struct {
	Target    string          `json:"target"`
	RolloutID string          `json:"rollout_id"`
	State     json.RawMessage `json:"state"`
	StateAt   time.Time       `json:"state_at"`
	Stats     json.RawMessage `json:"stats"`
	StatsAt   *time.Time      `json:"stats_at,omitempty"`
}

// ApplyCanaryState records a rollout's state event (at: the event's time). An older event than
// the one recorded is ignored; a new rollout id clears the stats. stats, when not nil (a
// rollback carries the windows that decided it), are recorded too.
func (s *Store) ApplyCanaryState(ctx context.Context, target, rolloutID string, state json.RawMessage, at time.Time, stats json.RawMessage) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO desk.canary_rollouts AS c (target, rollout_id, state, state_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (target) DO UPDATE SET rollout_id = EXCLUDED.rollout_id, state = EXCLUDED.state, state_at = EXCLUDED.state_at,
				stats = CASE WHEN c.rollout_id = EXCLUDED.rollout_id THEN c.stats ELSE '[]' END,
				stats_at = CASE WHEN c.rollout_id = EXCLUDED.rollout_id THEN c.stats_at END
			WHERE c.state_at <= EXCLUDED.state_at`, target, rolloutID, state, at)
		if err != nil || stats == nil {
			return err
		}
		return applyCanaryStats(ctx, tx, target, rolloutID, state, stats, at)
	})
}

// ApplyCanaryStats records a rollout's per-variant windows (omni.ops.canary.measured, whose
// data stands in for the state, dated 1970, until the rollout's state event arrives). Windows of another
// rollout than the recorded one, or older than the recorded ones, are ignored.
func (s *Store) ApplyCanaryStats(ctx context.Context, target, rolloutID string, data, stats json.RawMessage, at time.Time) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return applyCanaryStats(ctx, tx, target, rolloutID, data, stats, at) })
}

func applyCanaryStats(ctx context.Context, tx pgx.Tx, target, rolloutID string, data, stats json.RawMessage, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO desk.canary_rollouts AS c (target, rollout_id, state, state_at, stats, stats_at)
		VALUES ($1, $2, $3, 'epoch', $4, $5)
		ON CONFLICT (target) DO UPDATE SET stats = EXCLUDED.stats, stats_at = EXCLUDED.stats_at
		WHERE c.rollout_id = EXCLUDED.rollout_id AND (c.stats_at IS NULL OR c.stats_at <= EXCLUDED.stats_at)`,
		target, rolloutID, data, stats, at)
	return err
}

// CanaryRollouts returns every target's rollout, by target.
func (s *Store) CanaryRollouts(ctx context.Context) ([]CanaryRollout, error) {
	rows, err := s.pool.Query(ctx, `SELECT target, rollout_id, state, state_at, stats, stats_at FROM desk.canary_rollouts ORDER BY target`)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CanaryRollout, error) {
		var c CanaryRollout
		err := r.Scan(&c.Target, &c.RolloutID, &c.State, &c.StateAt, &c.Stats, &c.StatsAt)
		return c, err
	})
	if out == nil {
		out = []CanaryRollout{}
	}
	return out, err
}

// ResolveAlertsOfRoute resolves the active alerts of route (a rollback's banner once the
// operator ended the rollout or started another).
func (s *Store) ResolveAlertsOfRoute(ctx context.Context, route string, at time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE desk.alerts SET resolved_at = $2 WHERE route = $1 AND resolved_at IS NULL AND at <= $2`, route, at)
	return tag.RowsAffected(), err
}
