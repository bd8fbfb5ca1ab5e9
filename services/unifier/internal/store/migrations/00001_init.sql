-- +goose Up
-- The session store: a projection of OMNI_IN + OMNI_TOOL. Every row is keyed by, or records, the
-- event that caused it, so replaying the log changes nothing and rebuilding reaches the same state.

CREATE TABLE customers (
    id               uuid PRIMARY KEY,
    created_at       timestamptz NOT NULL,
    created_by_event text NOT NULL,
    merged_into      uuid REFERENCES customers (id),
    display_name     text,
    profile          jsonb NOT NULL DEFAULT '{}',
    profile_sources  jsonb NOT NULL DEFAULT '{}', -- field -> {"source": "salesforce", "event_id": "...", "at": "..."}
    updated_at       timestamptz NOT NULL
);
CREATE INDEX customers_merged_into ON customers (merged_into) WHERE merged_into IS NOT NULL;

CREATE TABLE identities (
    kind        text NOT NULL,
    value       text NOT NULL,               -- normalised: phone E.164, email lower-case, vendor ids as given
    customer_id uuid NOT NULL REFERENCES customers (id),
    source      text NOT NULL,               -- the channel or tool that supplied it
    first_seen  timestamptz NOT NULL,
    event_id    text NOT NULL,               -- the event that linked it
    PRIMARY KEY (kind, value)
);
CREATE INDEX identities_customer ON identities (customer_id);

CREATE TABLE conversations (
    id                 uuid PRIMARY KEY,
    customer_id        uuid NOT NULL REFERENCES customers (id),
    status             text NOT NULL CHECK (status IN ('open', 'closed', 'merged')),
    opened_at          timestamptz NOT NULL,
    opened_by_event    text NOT NULL,
    closed_at          timestamptz,
    close_reason       text,
    channels           text[] NOT NULL DEFAULT '{}',
    assignee           text,
    last_event_at      timestamptz NOT NULL,
    first_response_at  timestamptz,
    previous_id        uuid REFERENCES conversations (id),
    merged_into        uuid REFERENCES conversations (id)
);
-- One open conversation per customer across every channel.
CREATE UNIQUE INDEX conversations_one_open ON conversations (customer_id) WHERE status = 'open';
CREATE INDEX conversations_customer ON conversations (customer_id, opened_at);
CREATE INDEX conversations_open_idle ON conversations (last_event_at) WHERE status = 'open';

CREATE TABLE messages (
    event_id        text PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id),
    customer_id     uuid NOT NULL REFERENCES customers (id),
    channel         text NOT NULL,
    direction       text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    identity_kind   text NOT NULL,
    identity_value  text NOT NULL,
    body            jsonb NOT NULL,
    sent_at         timestamptz NOT NULL,
    status          text,
    status_at       timestamptz
);
CREATE INDEX messages_conversation ON messages (conversation_id, sent_at);

CREATE TABLE customer_merges (
    id                  uuid PRIMARY KEY,
    from_id             uuid NOT NULL REFERENCES customers (id),
    into_id             uuid NOT NULL REFERENCES customers (id),
    reason              text NOT NULL,
    event_id            text NOT NULL,
    at                  timestamptz NOT NULL,
    moved_identities    jsonb NOT NULL,   -- [{"kind","value"}]
    moved_conversations uuid[] NOT NULL,
    moved_messages      jsonb NOT NULL,   -- [{"event_id","conversation_id"}] moved into into's open conversation
    merged_conversation uuid,             -- from's open conversation folded into into's, if any
    into_profile_before jsonb NOT NULL,
    into_sources_before jsonb NOT NULL,
    undone_at           timestamptz,
    undone_by_event     text
);
CREATE INDEX customer_merges_from ON customer_merges (from_id);
CREATE INDEX customer_merges_into ON customer_merges (into_id);

CREATE TABLE tool_results (
    event_id        text PRIMARY KEY,
    conversation_id uuid REFERENCES conversations (id),
    customer_id     uuid REFERENCES customers (id),
    tool            text NOT NULL,
    op              text NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('completed', 'failed')),
    correlation_id  text,
    body            jsonb NOT NULL,
    at              timestamptz NOT NULL
);
CREATE INDEX tool_results_conversation ON tool_results (conversation_id, at);

-- Every consumed event id, whatever its type: the idempotency guard.
CREATE TABLE processed_events (
    event_id     text PRIMARY KEY,
    type         text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox: desk events and tool requests written in the same transaction as the
-- state they describe, relayed to NATS after commit, deleted once JetStream acked them.
CREATE TABLE outbox (
    seq      bigserial PRIMARY KEY,
    id       text NOT NULL UNIQUE,  -- the CloudEvent id (deterministic: redelivery writes nothing new)
    subject  text NOT NULL,
    type     text NOT NULL,
    ce_subject text,
    partitionkey text,
    correlationid text,
    time     timestamptz NOT NULL,
    data     jsonb NOT NULL
);

-- +goose Down
DROP TABLE outbox, processed_events, tool_results, customer_merges, messages, conversations, identities, customers;
