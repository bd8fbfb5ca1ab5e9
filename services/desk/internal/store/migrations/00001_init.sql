-- +goose Up
-- The desk's read model, in its own schema: a projection of OMNI_DESK (the unifier's desk events
-- and the desk's own assignment/agent events), of the sender identities of OMNI_IN messages (reply
-- addresses), of CRM results on OMNI_TOOL and of audit records on OMNI_AUDIT. Every row is keyed by
-- the event that caused it, or guarded by the OMNI_DESK sequence of the last event applied to it,
-- so redelivery and replay change nothing and a lost store is rebuilt from the log.

-- One row once the store exists: a store without it is new (or was lost), so the desk replays
-- the log into it from the start.
CREATE TABLE desk.projection (
    id         integer PRIMARY KEY CHECK (id = 1),
    created_at timestamptz NOT NULL
);

CREATE TABLE desk.customers (
    id              uuid PRIMARY KEY,
    display_name    text,
    identities      jsonb NOT NULL DEFAULT '[]',  -- masked identityView list, as the unifier sent it
    profile         jsonb NOT NULL DEFAULT '{}',
    profile_sources jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    merged_into     uuid,
    seq             bigint NOT NULL DEFAULT 0    -- OMNI_DESK sequence of the last view applied
);

CREATE TABLE desk.conversations (
    id              uuid PRIMARY KEY,
    customer_id     uuid NOT NULL,
    status          text NOT NULL CHECK (status IN ('open', 'closed', 'merged')),
    channels        text[] NOT NULL DEFAULT '{}',
    opened_at       timestamptz NOT NULL,
    closed_at       timestamptz,
    close_reason    text,
    last_event_at   timestamptz NOT NULL,
    previous_id     uuid,
    seq             bigint NOT NULL DEFAULT 0,   -- OMNI_DESK sequence of the last header applied
    -- desk-only state
    assignee        text,
    assigned_at     timestamptz,
    current_channel text,                        -- channel of the last inbound message
    language        text,                        -- detected from the customer's last text
    last_preview    text,
    last_direction  text,
    last_message_at timestamptz,
    unread          integer NOT NULL DEFAULT 0,  -- inbound messages since the agent last read
    waiting_since   timestamptz,                 -- oldest inbound message not yet answered
    sentiment       text                         -- last sentiment label an AI tool reported
);
CREATE INDEX conversations_inbox ON desk.conversations (status, last_event_at DESC);
CREATE INDEX conversations_customer ON desk.conversations (customer_id, opened_at DESC);
CREATE INDEX conversations_assignee ON desk.conversations (assignee) WHERE status = 'open';

CREATE TABLE desk.messages (
    event_id        text PRIMARY KEY,
    conversation_id uuid NOT NULL,
    customer_id     uuid NOT NULL,
    channel         text NOT NULL,
    direction       text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    party           jsonb,                       -- masked from (inbound) or to (outbound)
    body            jsonb NOT NULL,
    sent_at         timestamptz NOT NULL,
    status          text,                        -- outbound: pending (desk sent it, no status yet) or a delivery status
    status_at       timestamptz,
    error_code      text,
    error           text,
    agent_id        text,
    display_name    text
);
CREATE INDEX messages_conversation ON desk.messages (conversation_id, sent_at);

-- Raw sender identities, never shown: where a reply on a channel goes. source_event is the
-- inbound message's event id (joined to desk.messages.event_id) or the CRM result's id.
CREATE TABLE desk.addresses (
    source_event text NOT NULL,
    kind         text NOT NULL,
    value        text NOT NULL,
    channel      text,                           -- the channel it was seen on (NULL: from a CRM)
    account      text,
    customer_id  uuid,                           -- set for CRM identities
    at           timestamptz NOT NULL,
    PRIMARY KEY (source_event, kind, value)
);
CREATE INDEX addresses_customer ON desk.addresses (customer_id) WHERE customer_id IS NOT NULL;

CREATE TABLE desk.tool_requests (
    event_id        text PRIMARY KEY,
    conversation_id uuid NOT NULL,
    customer_id     uuid,
    tool            text NOT NULL,
    op              text NOT NULL,
    agent_id        text,
    data            jsonb NOT NULL,
    requested_at    timestamptz NOT NULL
);
CREATE INDEX tool_requests_conversation ON desk.tool_requests (conversation_id, requested_at);

CREATE TABLE desk.tool_results (
    event_id        text PRIMARY KEY,
    conversation_id uuid NOT NULL,
    customer_id     uuid NOT NULL,
    tool            text NOT NULL,
    op              text NOT NULL,
    outcome         text NOT NULL,
    correlation_id  text,
    result          jsonb NOT NULL,
    at              timestamptz NOT NULL
);
CREATE INDEX tool_results_conversation ON desk.tool_results (conversation_id, at);
CREATE INDEX tool_results_customer ON desk.tool_results (customer_id, tool, at DESC);

CREATE TABLE desk.agents (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    skills     text[] NOT NULL DEFAULT '{}',
    languages  text[] NOT NULL DEFAULT '{}',
    channels   text[] NOT NULL DEFAULT '{}',
    capacity   integer NOT NULL,
    active     boolean NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE desk.assignments (
    event_id          text PRIMARY KEY,
    conversation_id   uuid NOT NULL,
    customer_id       uuid NOT NULL,
    agent_id          text NOT NULL,
    previous_agent_id text,
    rule              text NOT NULL,
    note              text,
    by_agent          text NOT NULL,
    at                timestamptz NOT NULL
);
CREATE INDEX assignments_conversation ON desk.assignments (conversation_id, at);

-- What a merge moved, so that its unmerge can move it back (the desk events say only how many).
CREATE TABLE desk.merges (
    merge_id            uuid PRIMARY KEY,
    from_id             uuid NOT NULL,
    into_id             uuid NOT NULL,
    conversations       uuid[] NOT NULL,
    merged_conversation uuid,
    messages            text[] NOT NULL,
    at                  timestamptz NOT NULL,
    undone_at           timestamptz
);

CREATE TABLE desk.alerts (
    id              text PRIMARY KEY,
    kind            text NOT NULL,               -- sentiment | ops
    severity        text NOT NULL,               -- info | warning | critical
    title           text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}',
    conversation_id uuid,
    route           text,
    at              timestamptz NOT NULL,
    resolved_at     timestamptz
);
CREATE INDEX alerts_recent ON desk.alerts (at DESC);

-- One row per third-party call (audit records), for the ops page.
CREATE TABLE desk.vendor_calls (
    event_id   text PRIMARY KEY,
    route      text NOT NULL,                    -- <vendor>.<op>, e.g. sf_express.route
    vendor     text NOT NULL,
    op         text NOT NULL,
    outcome    text NOT NULL,                    -- ok | error | timeout | rejected | fallback ...
    code       text NOT NULL DEFAULT '',
    latency_ms double precision NOT NULL,
    breaker    text NOT NULL DEFAULT '',
    at         timestamptz NOT NULL
);
CREATE INDEX vendor_calls_route ON desk.vendor_calls (route, at DESC);
CREATE INDEX vendor_calls_at ON desk.vendor_calls (at);

-- +goose Down
DROP TABLE desk.projection, desk.vendor_calls, desk.alerts, desk.merges, desk.assignments, desk.agents, desk.tool_results,
    desk.tool_requests, desk.addresses, desk.messages, desk.conversations, desk.customers;
