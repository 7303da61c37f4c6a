-- A start command may be retried (its answer was lost) only until the session is used: its
-- first restore or command closes the retry, so a leaked start id never works as a session key.
ALTER TABLE interactions ADD COLUMN start_retryable boolean NOT NULL DEFAULT true;

---- create above / drop below ----

ALTER TABLE interactions DROP COLUMN start_retryable;
