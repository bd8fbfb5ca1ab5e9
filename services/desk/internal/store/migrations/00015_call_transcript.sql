-- +goose Up
-- The state of a call's transcript (callView.transcript of omni.desk.call.ringing|updated): live
-- or pending while it is being made, then complete, partial or none. A final state stays; an
-- update without a state leaves the call's be.
ALTER TABLE desk.calls ADD COLUMN transcript text;

-- +goose Down
ALTER TABLE desk.calls DROP COLUMN transcript;
