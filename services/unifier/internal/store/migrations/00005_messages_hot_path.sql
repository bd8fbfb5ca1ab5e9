-- +goose Up
-- messages takes one row per event: what its inserts maintain is most of what an event costs.
--
-- Merges now move messages by conversation (messages_conversation), as unmerges always did, so
-- the index by customer is not needed.
DROP INDEX messages_customer;
-- The engine writes a message with the conversation and the customer it has just locked or
-- created in the same transaction, and never deletes either; the foreign-key checks, a lookup
-- per row and key each, cost half of the insert. The invariant they guarded, and more (a
-- message's customer is its conversation's), is checked by the engine's property tests.
ALTER TABLE messages DROP CONSTRAINT messages_conversation_id_fkey, DROP CONSTRAINT messages_customer_id_fkey;

-- +goose Down
ALTER TABLE messages ADD CONSTRAINT messages_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    ADD CONSTRAINT messages_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id);
CREATE INDEX messages_customer ON messages (customer_id);
