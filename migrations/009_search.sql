-- Supervisors' search (/supervisor/search, docs/supervisor.md): the indexes its filters use.

-- "Text": full-text search over the messages of the transcript, with the 'simple' configuration
-- (no stemming, no stop words: any language matches word for word). The vector is stored, not
-- an index expression: the benchmark (docs/benchmarks.md) showed most of a search's time was
-- Postgres computing to_tsvector again for every candidate row (index recheck, or checking a
-- chat's messages newest chat first); stored, it is read. Messages only (NULL for the other
-- kinds), and the index is partial to match. Adding the column rewrites transcript_events once,
-- under a lock that holds writes to it for the duration (about 25 s per million rows on the
-- benchmark machine).
ALTER TABLE transcript_events ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (CASE WHEN kind = 'message' THEN to_tsvector('simple', text) END) STORED;
CREATE INDEX transcript_events_search_idx ON transcript_events USING gin (search_vector) WHERE kind = 'message';

-- "UserData key" with "UserData value": every value a key was ever set to (the history), exact
-- or prefix. A value is up to 4 KiB, more than a btree entry may hold: the index has its first
-- 200 characters (exact matches recheck the whole value).
CREATE INDEX userdata_history_value_idx ON userdata_history (key, left(new_value #>> '{}', 200) text_pattern_ops, interaction_id)
    WHERE new_value IS NOT NULL;

-- "Agent": the chats an agent accepted.
CREATE INDEX assignments_accepted_idx ON assignments (user_id, interaction_id) WHERE accepted_at IS NOT NULL;

-- "Service" with "From"/"To".
CREATE INDEX interactions_service_created_idx ON interactions (service_id, created_at);

---- create above / drop below ----

DROP INDEX interactions_service_created_idx, assignments_accepted_idx, userdata_history_value_idx, transcript_events_search_idx;
ALTER TABLE transcript_events DROP COLUMN search_vector;
