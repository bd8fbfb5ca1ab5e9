-- +goose Up
-- Phone calls (omni.in.voice.call), one row per call id, on the conversation of the customer the
-- caller's (inbound) or callee's (outbound) number belongs to.
--
-- A call's events may come in any order and more than once (call.ended before call.answered,
-- no call.answered for a missed call, replays): every column is filled by the first event that
-- knows it and never changed after, so the row does not depend on the order.
CREATE TABLE calls (
    call_id         text PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id),
    customer_id     uuid NOT NULL REFERENCES customers (id),
    direction       text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    from_kind       text NOT NULL,
    from_value      text NOT NULL,
    to_kind         text NOT NULL,
    to_value        text NOT NULL,
    started_at      timestamptz,
    answered_at     timestamptz,
    ended_at        timestamptz,
    hangup_side     text,
    end_reason      text,
    recording_url   text,
    event_id        text NOT NULL -- the first event of the call the unifier applied
);
CREATE INDEX calls_conversation ON calls (conversation_id);

-- +goose Down
DROP TABLE calls;
