-- +goose Up
-- Outbox batches version 2: each event carries the W3C traceparent it continues (the consumer
-- span of the event that caused it), after correlationid, so the relay publishes it in that
-- trace. outbox_events reads both versions; the view's columns are unchanged (the trace context
-- is the relay's business).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION outbox_events(b bytea) RETURNS TABLE (n int, id text, subject text, type text, ce_subject text,
    partitionkey text, correlationid text, "time" timestamptz, data json)
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    pos int := 1; -- 0-based offset of the next field
    f text[];
    len int;
    k int;
    strings int; -- strings before the time: 6 in version 1, 7 (with traceparent) in version 2
BEGIN
    IF length(b) = 0 OR get_byte(b, 0) NOT IN (1, 2) THEN
        RAISE EXCEPTION 'outbox batch: unknown encoding version %', CASE WHEN length(b) > 0 THEN get_byte(b, 0) END;
    END IF;
    strings := CASE get_byte(b, 0) WHEN 1 THEN 6 ELSE 7 END;
    n := 0;
    WHILE pos < length(b) LOOP
        n := n + 1;
        f := ARRAY[]::text[];
        FOR k IN 1..strings + 1 LOOP
            IF k = strings + 1 THEN -- the time, then the data
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
        data := f[strings + 1]::json;
        RETURN NEXT;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- Version 2 batches left in the outbox lose their traceparent: rewritten as version 1.
-- +goose StatementBegin
DO $$
DECLARE
    r record;
    e record;
    v1 bytea;
BEGIN
    FOR r IN SELECT seq, events FROM outbox_batches WHERE get_byte(events, 0) = 2 LOOP
        v1 := '\x01'::bytea;
        FOR e IN SELECT * FROM outbox_events(r.events) ORDER BY n LOOP
            v1 := v1
                || int4send(octet_length(convert_to(e.id, 'UTF8'))) || convert_to(e.id, 'UTF8')
                || int4send(octet_length(convert_to(e.subject, 'UTF8'))) || convert_to(e.subject, 'UTF8')
                || int4send(octet_length(convert_to(e.type, 'UTF8'))) || convert_to(e.type, 'UTF8')
                || int4send(octet_length(convert_to(coalesce(e.ce_subject, ''), 'UTF8'))) || convert_to(coalesce(e.ce_subject, ''), 'UTF8')
                || int4send(octet_length(convert_to(coalesce(e.partitionkey, ''), 'UTF8'))) || convert_to(coalesce(e.partitionkey, ''), 'UTF8')
                || int4send(octet_length(convert_to(coalesce(e.correlationid, ''), 'UTF8'))) || convert_to(coalesce(e.correlationid, ''), 'UTF8')
                || int8send((extract(epoch FROM e."time") * 1000000)::bigint)
                || int4send(octet_length(convert_to(e.data::text, 'UTF8'))) || convert_to(e.data::text, 'UTF8');
        END LOOP;
        UPDATE outbox_batches SET events = v1 WHERE seq = r.seq;
    END LOOP;
END
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION outbox_events(b bytea) RETURNS TABLE (n int, id text, subject text, type text, ce_subject text,
    partitionkey text, correlationid text, "time" timestamptz, data json)
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    pos int := 1;
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
            IF k = 7 THEN
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
