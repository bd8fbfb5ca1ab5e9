-- +goose Up
-- Read-only views for BI tools (Tableau, Power BI, Metabase connect to Postgres directly).
-- Grant a reporting role USAGE on this schema and SELECT on its views; it needs nothing else.
CREATE SCHEMA analytics;

-- Conversations opened per channel per day (a conversation counts once for each channel it used).
CREATE VIEW analytics.conversations_per_channel_day AS
SELECT date_trunc('day', c.opened_at)::date AS day, ch AS channel, count(*) AS conversations
FROM conversations c, unnest(c.channels) AS ch
WHERE c.status <> 'merged'
GROUP BY 1, 2;

-- First-response and resolution times per conversation.
CREATE VIEW analytics.conversation_times AS
SELECT c.id AS conversation_id, c.customer_id, c.opened_at, c.closed_at, c.close_reason, c.channels,
       c.first_response_at,
       extract(epoch FROM c.first_response_at - c.opened_at) AS first_response_seconds,
       extract(epoch FROM c.closed_at - c.opened_at) AS resolution_seconds
FROM conversations c
WHERE c.status <> 'merged';

-- Daily first-response and resolution percentiles.
CREATE VIEW analytics.response_times_day AS
SELECT date_trunc('day', opened_at)::date AS day,
       count(*) AS conversations,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_seconds) AS first_response_p50_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_seconds) AS first_response_p90_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_seconds) AS resolution_p50_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY resolution_seconds) AS resolution_p90_s
FROM analytics.conversation_times
GROUP BY 1;

-- Share of conversations that crossed channels, per day.
CREATE VIEW analytics.cross_channel_share_day AS
SELECT date_trunc('day', opened_at)::date AS day,
       count(*) AS conversations,
       count(*) FILTER (WHERE cardinality(channels) > 1) AS cross_channel,
       round(100.0 * count(*) FILTER (WHERE cardinality(channels) > 1) / nullif(count(*), 0), 2) AS cross_channel_pct
FROM conversations
WHERE status <> 'merged'
GROUP BY 1;

-- Customer merges (and their undoing) per day.
CREATE VIEW analytics.merges_day AS
SELECT date_trunc('day', at)::date AS day, count(*) AS merges, count(undone_at) AS undone
FROM customer_merges
GROUP BY 1;

-- Tool success rates per tool, operation and day.
CREATE VIEW analytics.tool_success_day AS
SELECT date_trunc('day', at)::date AS day, tool, op,
       count(*) AS calls,
       count(*) FILTER (WHERE outcome = 'completed') AS completed,
       count(*) FILTER (WHERE outcome = 'failed') AS failed,
       round(100.0 * count(*) FILTER (WHERE outcome = 'completed') / nullif(count(*), 0), 2) AS success_pct
FROM tool_results
GROUP BY 1, 2, 3;

-- Messages per channel, direction and day.
CREATE VIEW analytics.messages_day AS
SELECT date_trunc('day', sent_at)::date AS day, channel, direction, count(*) AS messages
FROM messages
GROUP BY 1, 2, 3;

-- +goose Down
DROP SCHEMA analytics CASCADE;
