-- The housekeeping job deletes party_commands older than the command retention in batches; this
-- index lets each batch find its rows without scanning the table, which would otherwise make
-- clearing a large backlog quadratic. A plain CREATE INDEX briefly blocks command inserts while it
-- builds, once, at the upgrade; the table is small from then on because it is pruned.
CREATE INDEX party_commands_created_idx ON party_commands (created_at);

---- create above / drop below ----

DROP INDEX party_commands_created_idx;
