-- +goose Up
-- The outcome of a call's latest transfer (callView.transfer of omni.desk.call.updated): the agent
-- who pressed Transfer sees on the call whether it worked and, when not, why. The call keeps the
-- outcome with the latest "at"; an update without one leaves it be.
ALTER TABLE desk.calls ADD COLUMN transfer jsonb;

-- +goose Down
ALTER TABLE desk.calls DROP COLUMN transfer;
