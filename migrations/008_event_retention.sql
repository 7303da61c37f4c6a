-- Integration events are pruned after AGENTD_EVENT_RETENTION; the newest position pruned is kept,
-- so a stream resumed from before it is told (position_expired) instead of silently missing events.
CREATE TABLE integration_events_pruned (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    tx_id   xid8 NOT NULL,
    id      bigint NOT NULL
);

CREATE INDEX webhook_deliveries_created_idx ON webhook_deliveries (created_at) WHERE event_id IS NULL;

---- create above / drop below ----

DROP INDEX webhook_deliveries_created_idx;
DROP TABLE integration_events_pruned;
