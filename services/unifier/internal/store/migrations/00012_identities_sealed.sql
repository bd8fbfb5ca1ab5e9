-- +goose Up
-- Personal data sealed (pkg/pii): identities of the sealed kinds (phone, email, ...) are stored
-- under identity.Indexed values ("~<blind index> <mask>") in identities.value,
-- messages.identity_value, calls.from_value/to_value and customer_merges.moved_identities, and the
-- identity's ciphertext is kept here. Rows written in clear before are converted at start by
-- store.SealClear, which needs the keys (a SQL migration has none).
ALTER TABLE identities ADD COLUMN sealed text;

-- +goose Down
ALTER TABLE identities DROP COLUMN sealed;
