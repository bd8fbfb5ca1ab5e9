-- +goose Up
-- The summary of a conversation's close (omni.tool.ai.summary.completed), one row per
-- conversation: the summary of its latest close. A conversation reopened and closed again is
-- summarised again; the row keeps the summary whose closed_at is the latest (ties: the greater
-- event id), whatever order the summaries arrive in, so a replay of the log rebuilds the same row.
-- Keyed by conversation only: a merge moving the conversation to another customer leaves it be.
CREATE TABLE conversation_summaries (
    conversation_id uuid PRIMARY KEY REFERENCES conversations (id),
    event_id        text NOT NULL, -- the summary event's id (assist:summary:<conversation>:<closed_at ms>)
    closed_at       timestamptz NOT NULL, -- the close it summarises
    summary         text NOT NULL, -- masked for display
    source          text NOT NULL CHECK (source IN ('llm', 'rules')),
    business_type   text,
    language        text,
    provider        text, -- source llm
    model           text, -- source llm
    at              timestamptz NOT NULL -- the summary event's time
);

-- +goose Down
DROP TABLE conversation_summaries;
