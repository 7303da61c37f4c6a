-- Live monitoring (docs/supervisor.md): one row per supervisor's monitor page open on a chat. The
-- page's socket renews heartbeat_at while it lives and deletes the row when it closes; a node that
-- crashes leaves its rows behind, and they stop counting once heartbeat_at is older than the
-- monitoring TTL (postgres.MonitorTTL), so the agent's "Monitored by" line goes away on its own.
CREATE TABLE supervisor_monitors (
    id             uuid PRIMARY KEY,
    interaction_id uuid NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    user_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    node_id        text NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    heartbeat_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX supervisor_monitors_interaction_idx ON supervisor_monitors (interaction_id, heartbeat_at);

---- create above / drop below ----

DROP TABLE supervisor_monitors;
