-- +goose Up
-- One row per third-party call record (omni.audit.call.recorded), partitioned by day (UTC) on the
-- record's own time. The primary key holds the partition key, as Postgres requires; `at` comes
-- from the event's data, so a redelivered event lands on the same key and is ignored.
CREATE TABLE audit_records (
    event_id       text             NOT NULL,
    at             timestamptz      NOT NULL,
    service        text             NOT NULL,
    vendor         text             NOT NULL,
    op             text             NOT NULL,
    outcome        text             NOT NULL,
    status         integer,
    code           text,
    error          text,
    latency_ms     double precision NOT NULL,
    attempts       integer          NOT NULL,
    idempotent     boolean          NOT NULL,
    fallback       text,
    trace_id       text,
    customer_id    text,
    correlation_id text,
    request        jsonb,
    response       jsonb,
    stored_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (at, event_id)
) PARTITION BY RANGE (at);

CREATE INDEX audit_records_vendor ON audit_records (vendor, at DESC, event_id DESC);
CREATE INDEX audit_records_customer ON audit_records (customer_id, at DESC, event_id DESC) WHERE customer_id IS NOT NULL;
CREATE INDEX audit_records_trace ON audit_records (trace_id) WHERE trace_id IS NOT NULL;

-- +goose Down
DROP TABLE audit_records;
