-- +goose Up
-- The outcome of a call's latest transfer command (omni.channel.call.transferred or
-- .transfer.failed), as the desk shows it (desk.defs.json#/$defs/callTransfer). An agent may
-- try again after a failure: the row keeps the outcome with the latest "at", whatever order the
-- outcomes arrive in, so a replay of the log ends in the same row.
ALTER TABLE calls ADD COLUMN transfer jsonb;

-- +goose Down
ALTER TABLE calls DROP COLUMN transfer;
