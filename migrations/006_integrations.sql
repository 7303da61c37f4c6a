-- Integrators: API tokens, the integration events (one row per event, written in the change's
-- own transaction), webhook endpoints, deliveries and their attempts.

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    -- sha256 of the token; the token itself is printed once and never stored.
    token_hash   bytea NOT NULL UNIQUE,
    -- The first characters of the token, so a list can tell tokens apart without revealing them.
    prefix       text NOT NULL,
    scopes       text[] NOT NULL,
    -- A token bound to a user sees only that agent's interactions.
    user_id      bigint REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- One live token per name; a revoked token's name may be used again.
CREATE UNIQUE INDEX api_tokens_name_idx ON api_tokens (lower(name)) WHERE revoked_at IS NULL;

-- Events are ordered by (tx_id, id): a reader takes only rows of transactions older than its
-- snapshot's xmin, so a transaction that commits later always sorts after everything read
-- before (a position never goes back, nothing is skipped). See postgres/events.go.
CREATE TABLE integration_events (
    id             bigint GENERATED ALWAYS AS IDENTITY,
    tx_id          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id       uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    type           text NOT NULL,
    interaction_id uuid REFERENCES interactions (id) ON DELETE CASCADE,
    service_id     bigint REFERENCES services (id) ON DELETE CASCADE,
    data           jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tx_id, id)
);

CREATE INDEX integration_events_interaction_idx ON integration_events (interaction_id, tx_id, id);
CREATE INDEX integration_events_created_idx ON integration_events (created_at);

CREATE TABLE webhook_endpoints (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url             text NOT NULL,
    -- Event types delivered; empty means every type.
    events          text[] NOT NULL DEFAULT '{}',
    -- Signing secrets. During a rotation the previous secret stays valid until previous_expires_at.
    secret          text NOT NULL,
    previous_secret text,
    previous_expires_at timestamptz,
    description     text NOT NULL DEFAULT '',
    enabled         boolean NOT NULL DEFAULT true,
    -- Why the endpoint is not delivering: the receiver answered 410, or failed for 3 days.
    paused_reason   text NOT NULL DEFAULT '',
    -- The first failed attempt since the last success.
    failing_since   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    endpoint_id  bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The event, or NULL for a test event (whose body is kept in test_body).
    event_id     uuid REFERENCES integration_events (event_id) ON DELETE CASCADE,
    event_type   text NOT NULL,
    body         jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts     integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id)
);

CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC);

CREATE TABLE webhook_attempts (
    delivery_id  uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt      integer NOT NULL,
    started_at   timestamptz NOT NULL,
    latency_ms   integer NOT NULL,
    status       integer NOT NULL DEFAULT 0, -- HTTP status, 0 when there was no response
    error        text NOT NULL DEFAULT '',
    response     text NOT NULL DEFAULT '',   -- the start of the response body
    PRIMARY KEY (delivery_id, attempt)
);

---- create above / drop below ----

DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
DROP TABLE integration_events;
DROP TABLE api_tokens;
