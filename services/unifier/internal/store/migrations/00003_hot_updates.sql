-- +goose Up
-- Every message updates its conversation's last_event_at. An index on that column made each of
-- those updates a non-HOT update touching every index of the table; without it, and with room
-- left on each page, they stay heap-only. The idle sweep finds open conversations through the
-- partial unique index on open conversations instead.
DROP INDEX conversations_open_idle;
ALTER TABLE conversations SET (fillfactor = 70);
ALTER TABLE customers SET (fillfactor = 80);
-- Merges and unmerges move a customer's messages and tool results by customer id.
CREATE INDEX messages_customer ON messages (customer_id);
CREATE INDEX tool_results_customer ON tool_results (customer_id);

-- +goose Down
DROP INDEX tool_results_customer;
DROP INDEX messages_customer;
ALTER TABLE customers RESET (fillfactor);
ALTER TABLE conversations RESET (fillfactor);
CREATE INDEX conversations_open_idle ON conversations (last_event_at) WHERE status = 'open';
