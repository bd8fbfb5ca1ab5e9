-- +goose Up
-- Canary rollouts as their services announce them (omni.ops.canary.*, pkg/canary): one row per
-- target, state = the data of the latest started/changed/rolled_back/ended event, stats = the
-- per-variant windows of the latest measured event (or of the rollback) of that rollout. A new
-- rollout of a target clears the stats of the previous one; older events never overwrite newer.
CREATE TABLE desk.canary_rollouts (
    target     text PRIMARY KEY,
    rollout_id text NOT NULL,
    state      jsonb NOT NULL,
    state_at   timestamptz NOT NULL,
    stats      jsonb NOT NULL DEFAULT '[]',
    stats_at   timestamptz
);

-- +goose Down
DROP TABLE desk.canary_rollouts;
