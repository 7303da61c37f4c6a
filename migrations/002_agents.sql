-- Agents and the console: users with roles, web sessions, presence, service membership, routing
-- assignments, wrap-up, canned responses, surveys and the audit log.

CREATE TABLE users (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username          text NOT NULL CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    display_name      text NOT NULL,
    password_hash     text NOT NULL,
    role              text NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    capacity          integer NOT NULL DEFAULT 3 CHECK (capacity BETWEEN 0 AND 50),
    disabled          boolean NOT NULL DEFAULT false,
    -- Presence. state_since orders ready agents: the longest idle one is offered first.
    state             text NOT NULL DEFAULT 'offline' CHECK (state IN ('offline', 'ready', 'not_ready')),
    not_ready_reason  text NOT NULL DEFAULT '',
    state_since       timestamptz NOT NULL DEFAULT now(),
    last_offer_at     timestamptz,
    -- Console heartbeat: an agent whose consoles all went away is set offline after a grace period.
    last_seen_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_username_idx ON users (lower(username));
CREATE INDEX users_ready_idx ON users (state_since) WHERE state = 'ready' AND NOT disabled;

CREATE TABLE user_services (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    service_id bigint NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, service_id)
);

CREATE INDEX user_services_service_idx ON user_services (service_id);

-- Browser sessions of users. Only a hash of the cookie value is stored.
CREATE TABLE web_sessions (
    token_hash  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);

-- Every offer of an interaction to an agent. An agent's load is its offered and active rows.
CREATE TABLE assignments (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    interaction_id uuid NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    user_id        bigint NOT NULL REFERENCES users (id),
    state          text NOT NULL
                   CHECK (state IN ('offered', 'active', 'done', 'declined', 'timed_out', 'withdrawn', 'transferred')),
    party_id       uuid REFERENCES parties (id),
    offered_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz,
    accepted_at    timestamptz,
    finished_at    timestamptz
);

CREATE INDEX assignments_load_idx ON assignments (user_id) WHERE state IN ('offered', 'active');
CREATE INDEX assignments_interaction_idx ON assignments (interaction_id);
CREATE INDEX assignments_expiry_idx ON assignments (expires_at) WHERE state = 'offered';
CREATE UNIQUE INDEX assignments_one_open_idx ON assignments (interaction_id) WHERE state IN ('offered', 'active');

ALTER TABLE interactions
    ADD COLUMN disposition       text NOT NULL DEFAULT '',
    ADD COLUMN wrap_notes        text NOT NULL DEFAULT '',
    ADD COLUMN wrapped_at        timestamptz,
    ADD COLUMN survey_token_hash bytea UNIQUE;

CREATE TABLE canned_responses (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_id  bigint REFERENCES services (id) ON DELETE CASCADE, -- NULL: every service
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE survey_responses (
    interaction_id uuid PRIMARY KEY REFERENCES interactions (id) ON DELETE CASCADE,
    answers        jsonb NOT NULL,
    submitted_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    user_id    bigint REFERENCES users (id),
    action     text NOT NULL,
    target     text NOT NULL DEFAULT '',
    details    jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX audit_log_at_idx ON audit_log (at);

---- create above / drop below ----

DROP TABLE audit_log, survey_responses, canned_responses, assignments, web_sessions, user_services, users;
ALTER TABLE interactions DROP COLUMN disposition, DROP COLUMN wrap_notes, DROP COLUMN wrapped_at, DROP COLUMN survey_token_hash;
