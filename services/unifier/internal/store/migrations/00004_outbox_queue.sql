-- +goose Up
-- The outbox is a queue: every row is inserted, relayed within milliseconds and deleted.
--
-- Its data is read back only by the relay, as text: json keeps the text the engine wrote instead
-- of parsing it into jsonb on insert and printing it again on every read.
ALTER TABLE outbox ALTER COLUMN data TYPE json USING data::json;
-- Ids are derived from the consumed event (processed_events applies each event once) and
-- JetStream drops a re-published id (Nats-Msg-Id): a unique index would only cost an index entry
-- per desk event.
ALTER TABLE outbox DROP CONSTRAINT outbox_id_key;
-- The relay reads from the head of the primary key, so dead rows there cost every flush until
-- vacuum removes them: vacuum after a few thousand deletes, without the cost-based pauses.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000);

-- +goose Down
ALTER TABLE outbox RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, autovacuum_vacuum_cost_delay,
    autovacuum_analyze_scale_factor, autovacuum_analyze_threshold);
ALTER TABLE outbox ADD CONSTRAINT outbox_id_key UNIQUE (id);
ALTER TABLE outbox ALTER COLUMN data TYPE jsonb USING data::jsonb;
