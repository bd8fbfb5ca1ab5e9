-- +goose Up
-- Phone calls on conversations' timelines (omni.desk.call.ringing, omni.desk.call.updated), one
-- row per call. A call that ended (or was missed) stays so whatever event of it comes after.
CREATE TABLE desk.calls (
    call_id         text PRIMARY KEY,
    conversation_id uuid NOT NULL,
    customer_id     uuid NOT NULL,
    direction       text NOT NULL,
    state           text NOT NULL,
    party           jsonb NOT NULL, -- the customer's side, masked
    started_at      timestamptz,
    answered_at     timestamptz,
    ended_at        timestamptz,
    duration_ms     bigint,
    talk_ms         bigint,
    hangup_side     text,
    reason          text,
    recording_url   text,
    at              timestamptz NOT NULL -- of the call's first event the desk saw
);
CREATE INDEX calls_conversation ON desk.calls (conversation_id, at);

-- +goose Down
DROP TABLE desk.calls;
