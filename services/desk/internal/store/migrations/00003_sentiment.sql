-- +goose Up
-- The sentiment connector's marks (omni.tool.ai.sentiment.scored), one row per scored inbound
-- message, shown on the timeline. Its alerts (omni.tool.ai.sentiment.alert.raised / .cleared) are
-- rows of desk.alerts of kind sentiment, keyed by the raised event's id and resolved by the
-- episode's cleared event.
CREATE TABLE desk.sentiment_marks (
    message_id      text PRIMARY KEY,            -- the message's event id (desk.messages.event_id)
    event_id        text NOT NULL,               -- the scored event's id
    conversation_id uuid NOT NULL,
    label           text NOT NULL,               -- positive | neutral | negative
    score           double precision NOT NULL,
    confidence      double precision NOT NULL,
    escalation      boolean NOT NULL DEFAULT false,
    negative        boolean NOT NULL DEFAULT false, -- the conversation was in a negative episode after it
    provider        text NOT NULL,               -- tencent | aliyun | builtin
    fallback_from   text,
    at              timestamptz NOT NULL
);
CREATE INDEX sentiment_marks_conversation ON desk.sentiment_marks (conversation_id);
CREATE INDEX alerts_sentiment_open ON desk.alerts (conversation_id) WHERE kind = 'sentiment' AND resolved_at IS NULL;

-- +goose Down
DROP INDEX desk.alerts_sentiment_open;
DROP TABLE desk.sentiment_marks;
