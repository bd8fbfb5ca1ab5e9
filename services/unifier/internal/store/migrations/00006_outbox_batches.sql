-- +goose Up
-- One outbox row per transaction instead of one per desk event.
--
-- A run of 256 inbound messages wrote ~460 outbox rows (1.8 desk events per message), each a heap
-- tuple, an index entry, its own WAL record and a JSON parse, then read them back and deleted them
-- one by one: a third of Postgres's time in the bench. Now the transaction writes its events as
-- one bytea (the engine's batch encoding, below) and the relay reads, publishes and deletes that
-- one row.
--
-- events: a version byte (1), then per event six length-prefixed UTF-8 strings (id, subject,
-- type, ce_subject, partitionkey, correlationid; a uint32 big-endian byte count, then the bytes;
-- empty means absent), the time as an int64 big-endian count of microseconds since the Unix
-- epoch, and the length-prefixed JSON data.
CREATE TABLE outbox_batches (
    seq    bigserial PRIMARY KEY,
    n      int NOT NULL CHECK (n > 0), -- events in the batch
    events bytea NOT NULL
);
-- A batch is up to half a megabyte of JSON, which lz4 compresses about fourfold for little CPU:
-- less to write to the table and the WAL and to read back. Where Postgres was built without lz4
-- the batches are stored uncompressed (pglz, the other choice, costs more CPU than it saves).
-- +goose StatementBegin
DO $$
BEGIN
    ALTER TABLE outbox_batches ALTER COLUMN events SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    ALTER TABLE outbox_batches ALTER COLUMN events SET STORAGE EXTERNAL;
END
$$;
-- +goose StatementEnd
-- A queue table, as outbox was (00004): vacuum early, without cost-based pauses.
ALTER TABLE outbox_batches SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000);

-- outbox_events decodes one batch into its events, in order (n from 1), for operators and tests:
-- the relay decodes batches itself.
-- +goose StatementBegin
CREATE FUNCTION outbox_events(b bytea) RETURNS TABLE (n int, id text, subject text, type text, ce_subject text,
    partitionkey text, correlationid text, "time" timestamptz, data json)
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    pos int := 1; -- 0-based offset of the next field
    f text[];
    len int;
    k int;
BEGIN
    IF length(b) = 0 OR get_byte(b, 0) <> 1 THEN
        RAISE EXCEPTION 'outbox batch: unknown encoding version %', CASE WHEN length(b) > 0 THEN get_byte(b, 0) END;
    END IF;
    n := 0;
    WHILE pos < length(b) LOOP
        n := n + 1;
        f := ARRAY[]::text[];
        FOR k IN 1..7 LOOP
            IF k = 7 THEN -- the time, then the data
                "time" := 'epoch'::timestamptz + ('x' || encode(substring(b FROM pos + 1 FOR 8), 'hex'))::bit(64)::bigint
                    * interval '1 microsecond';
                pos := pos + 8;
            END IF;
            len := (get_byte(b, pos) << 24) | (get_byte(b, pos + 1) << 16) | (get_byte(b, pos + 2) << 8) | get_byte(b, pos + 3);
            f := f || convert_from(substring(b FROM pos + 5 FOR len), 'UTF8');
            pos := pos + 4 + len;
        END LOOP;
        id := f[1];
        subject := f[2];
        type := f[3];
        ce_subject := nullif(f[4], '');
        partitionkey := nullif(f[5], '');
        correlationid := nullif(f[6], '');
        data := f[7]::json;
        RETURN NEXT;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- Rows still waiting in the old outbox move over in order, one batch each.
INSERT INTO outbox_batches (n, events)
SELECT 1, '\x01'::bytea
    || int4send(octet_length(convert_to(id, 'UTF8'))) || convert_to(id, 'UTF8')
    || int4send(octet_length(convert_to(subject, 'UTF8'))) || convert_to(subject, 'UTF8')
    || int4send(octet_length(convert_to(type, 'UTF8'))) || convert_to(type, 'UTF8')
    || int4send(octet_length(convert_to(coalesce(ce_subject, ''), 'UTF8'))) || convert_to(coalesce(ce_subject, ''), 'UTF8')
    || int4send(octet_length(convert_to(coalesce(partitionkey, ''), 'UTF8'))) || convert_to(coalesce(partitionkey, ''), 'UTF8')
    || int4send(octet_length(convert_to(coalesce(correlationid, ''), 'UTF8'))) || convert_to(coalesce(correlationid, ''), 'UTF8')
    || int8send((extract(epoch FROM "time") * 1000000)::bigint)
    || int4send(octet_length(convert_to(data::text, 'UTF8'))) || convert_to(data::text, 'UTF8')
FROM outbox ORDER BY seq;
DROP TABLE outbox;

-- outbox: the events waiting to be relayed, one row each, in relay order (seq orders them: the
-- batch's seq, then the event's place in it). Read-only.
CREATE VIEW outbox AS
SELECT b.seq * 100000 + e.n AS seq, b.seq AS batch, e.id, e.subject, e.type, e.ce_subject, e.partitionkey, e.correlationid,
    e."time", e.data
FROM outbox_batches b, outbox_events(b.events) e;

-- +goose Down
CREATE TABLE outbox_rows (
    seq      bigserial PRIMARY KEY,
    id       text NOT NULL,
    subject  text NOT NULL,
    type     text NOT NULL,
    ce_subject text,
    partitionkey text,
    correlationid text,
    time     timestamptz NOT NULL,
    data     json NOT NULL
);
INSERT INTO outbox_rows (id, subject, type, ce_subject, partitionkey, correlationid, time, data)
SELECT id, subject, type, ce_subject, partitionkey, correlationid, time, data FROM outbox ORDER BY seq;
DROP VIEW outbox;
DROP FUNCTION outbox_events(bytea);
DROP TABLE outbox_batches;
ALTER TABLE outbox_rows RENAME TO outbox;
ALTER SEQUENCE outbox_rows_seq_seq RENAME TO outbox_seq_seq;
ALTER INDEX outbox_rows_pkey RENAME TO outbox_pkey;
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000);
