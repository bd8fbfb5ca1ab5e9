-- +goose Up
-- The summary of a conversation's latest summarised close, as the unifier announced it
-- (omni.desk.conversation.updated with conversation.summary: text, source llm|rules,
-- business_type, model, closed_at, event_id, at). Events without a summary leave it as it is; a
-- summary of an older close never replaces one of a newer close. Reset empties it with the
-- conversations and the replay of OMNI_DESK brings it back.
ALTER TABLE desk.conversations ADD COLUMN summary jsonb;

-- +goose Down
ALTER TABLE desk.conversations DROP COLUMN summary;
