-- +goose Up
-- Personal data sealed (pkg/pii): a reply address of a sealed kind (phone, email, ...) is kept
-- under its identity.Indexed value ("~<blind index> <mask>", deterministic, so a redelivered
-- event still writes nothing new) with its ciphertext here, which the desk opens to reply.
-- Rows written in clear before are converted at start by Store.SealAddresses.
ALTER TABLE desk.addresses ADD COLUMN sealed text;

-- +goose Down
ALTER TABLE desk.addresses DROP COLUMN sealed;
