-- When the oldest customer message not yet answered by an agent arrived, kept with every
-- transcript message, so the console's pending-response indicator is a column read instead of a
-- scan of the transcript on every redraw. NULL: nothing waits for an answer.
ALTER TABLE interactions ADD COLUMN pending_since timestamptz;

-- Chats open during the upgrade: the customer messages after the last message of anyone else.
UPDATE interactions i SET pending_since = (
    SELECT min(e.created_at) FROM transcript_events e JOIN parties p ON p.id = e.party_id
    WHERE e.interaction_id = i.id AND e.kind = 'message' AND p.type = 'client'
      AND e.idx > coalesce((SELECT max(e2.idx) FROM transcript_events e2 JOIN parties p2 ON p2.id = e2.party_id
                            WHERE e2.interaction_id = i.id AND e2.kind = 'message' AND p2.type <> 'client'), -1))
WHERE i.state IN ('queued', 'offered', 'active');

---- create above / drop below ----

ALTER TABLE interactions DROP COLUMN pending_since;
