-- +goose Up
-- The state of a call's transcript, as the desk shows it (desk.defs.json#/$defs/callView
-- transcript): live (a SIP call's caller leg streams to an ASR vendor while it is up: its
-- call.answered says so), pending (a cloud contact centre call's after-call transcription is to
-- come: its call.ended says so), then complete, partial or none (a SIP call's call.ended; a
-- provider call's omni.channel.call.transcribed). A final state is never replaced and the first
-- final state stays, so any order of the call's events, and any replay, ends in the same row.
ALTER TABLE calls ADD COLUMN transcript text
    CHECK (transcript IN ('live', 'pending', 'complete', 'partial', 'none'));

-- +goose Down
ALTER TABLE calls DROP COLUMN transcript;
