-- Notices from integrators (POST /api/v1/interactions/{id}/notices): they come from no party of
-- the interaction, so a notice names either its party or its sender (integration:<token name>),
-- and an audience: 'all' (every notice until now: the customer and the console see it) or
-- 'agent' (shown in the agent's console only, never sent to the customer).

ALTER TABLE notices
    ALTER COLUMN party_id DROP NOT NULL,
    ADD COLUMN sender text NOT NULL DEFAULT '',
    ADD COLUMN audience text NOT NULL DEFAULT 'all' CHECK (audience IN ('all', 'agent')),
    ADD CONSTRAINT notices_from_check CHECK (party_id IS NOT NULL OR sender <> '');

---- create above / drop below ----

DELETE FROM notices WHERE party_id IS NULL;
ALTER TABLE notices
    DROP CONSTRAINT notices_from_check,
    DROP COLUMN audience,
    DROP COLUMN sender,
    ALTER COLUMN party_id SET NOT NULL;
