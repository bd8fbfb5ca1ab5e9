-- +goose Up
-- Private notes agents write on a conversation (omni.desk.note.added): on the timeline, never
-- sent to the customer; mentions lists the agents it notified.
CREATE TABLE desk.notes (
    note_id         uuid PRIMARY KEY,
    conversation_id uuid NOT NULL,
    author          text NOT NULL,
    text            text NOT NULL,
    mentions        text[] NOT NULL DEFAULT '{}',
    at              timestamptz NOT NULL
);
CREATE INDEX notes_conversation ON desk.notes (conversation_id, at);

-- +goose Down
DROP TABLE desk.notes;
