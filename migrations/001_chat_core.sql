-- Chat core: services, interactions, parties, transcript, UserData and its history, custom notices,
-- and the per-party command log that makes retried commands idempotent.

CREATE TABLE services (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    display_name text NOT NULL,
    enabled      boolean NOT NULL DEFAULT true,
    -- The routing strategy (welcome notice, accept timeout, UserData to attach, ...), see chat.Strategy.
    strategy     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);

INSERT INTO services (name, display_name, strategy)
VALUES ('default', 'Default', '{"welcome_notice": "Thank you for contacting us. An agent will be with you shortly."}');

CREATE TABLE interactions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    service_id       bigint NOT NULL REFERENCES services (id),
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'offered', 'active', 'ended', 'wrapped', 'abandoned')),
    -- sha256 of the secure key; the key itself exists only in the customer's browser.
    secure_key_hash  bytea NOT NULL,
    -- sha256 of the client's start command id, so a retried start finds its interaction.
    start_token_hash bytea NOT NULL UNIQUE,
    customer_name    text NOT NULL DEFAULT '',
    subject          text NOT NULL DEFAULT '',
    origin           text NOT NULL DEFAULT '',
    -- Next transcript index and next side-channel (notices, UserData history) sequence number.
    -- Writers bump them under the row lock, which is what keeps both contiguous.
    next_index       integer NOT NULL DEFAULT 0,
    next_seq         bigint NOT NULL DEFAULT 1, -- 0 is never a seq: it means "nothing written"
    created_at       timestamptz NOT NULL DEFAULT now(),
    queued_at        timestamptz,
    ended_at         timestamptz,
    end_reason       text
);

CREATE INDEX interactions_queue_idx ON interactions (service_id, queued_at) WHERE state = 'queued';
CREATE INDEX interactions_created_idx ON interactions (created_at);

CREATE TABLE parties (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    interaction_id uuid NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    type           text NOT NULL CHECK (type IN ('client', 'agent', 'supervisor', 'external')),
    name           text NOT NULL DEFAULT '',
    -- Who this party is outside the interaction (an agent's user id), empty for the customer.
    user_ref       text NOT NULL DEFAULT '',
    joined_at      timestamptz NOT NULL DEFAULT now(),
    left_at        timestamptz
);

CREATE INDEX parties_interaction_idx ON parties (interaction_id);

CREATE TABLE transcript_events (
    interaction_id uuid NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    idx            integer NOT NULL CHECK (idx >= 0),
    kind           text NOT NULL
                   CHECK (kind IN ('party_joined', 'party_left', 'message', 'notice', 'session_ended')),
    party_id       uuid REFERENCES parties (id),
    text           text NOT NULL DEFAULT '',
    content_type   text NOT NULL DEFAULT '',
    reason         text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (interaction_id, idx)
);

CREATE TABLE userdata (
    interaction_id uuid NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    key            text NOT NULL,
    value          jsonb NOT NULL,
    owner          text NOT NULL,
    visible        boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (interaction_id, key)
);

CREATE TABLE userdata_history (
    interaction_id uuid NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    seq            bigint NOT NULL,
    key            text NOT NULL,
    op             text NOT NULL CHECK (op IN ('set', 'delete')),
    old_value      jsonb,
    new_value      jsonb,
    owner          text NOT NULL,
    actor_name     text NOT NULL DEFAULT '',
    visible        boolean NOT NULL,
    was_visible    boolean NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (interaction_id, seq)
);

CREATE INDEX userdata_history_key_idx ON userdata_history (key, interaction_id);

CREATE TABLE notices (
    interaction_id uuid NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    seq            bigint NOT NULL,
    party_id       uuid NOT NULL REFERENCES parties (id),
    payload        jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (interaction_id, seq)
);

-- Results of changing commands by client command id: a retried command answers from here.
CREATE TABLE party_commands (
    party_id   uuid NOT NULL REFERENCES parties (id) ON DELETE CASCADE,
    client_id  text NOT NULL,
    response   jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (party_id, client_id)
);

---- create above / drop below ----

DROP TABLE party_commands, notices, userdata_history, userdata, transcript_events, parties, interactions, services;
