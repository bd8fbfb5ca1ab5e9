-- +goose Up
-- Agents' verdicts on AI suggestions (omni.tool.ai.suggest.feedback, published by the desk's API,
-- written here by it and projected again from OMNI_TOOL, idempotently on the event id): the
-- acceptance rate per model and prompt template. A suggestion's last verdict counts. Reset
-- leaves it alone: replaying the stream adds back what it holds, and older verdicts stay.
CREATE TABLE desk.suggestion_feedback (
    event_id            text PRIMARY KEY,
    suggestion_event_id text NOT NULL,
    request_id          text NOT NULL DEFAULT '',
    conversation_id     uuid NOT NULL,
    agent_id            text NOT NULL,
    verdict             text NOT NULL CHECK (verdict IN ('accepted', 'edited', 'rejected')),
    edit_distance       int,
    suggestion_length   int NOT NULL DEFAULT 0,
    model               text NOT NULL DEFAULT '',
    template_id         text NOT NULL DEFAULT '',
    at                  timestamptz NOT NULL
);
CREATE INDEX suggestion_feedback_suggestion ON desk.suggestion_feedback (suggestion_event_id, at DESC);
CREATE INDEX suggestion_feedback_at ON desk.suggestion_feedback (at);

-- +goose Down
DROP TABLE desk.suggestion_feedback;
