-- jobsmith schema for SQLite, version 7: the `awaited` flag of PostgreSQL's migration 8, kept so
-- both engines store the same rows. SQLite has no notifications: the engine tells waiters of
-- this process itself when results are written, and waiters look again on a short interval for
-- jobs finished by other processes.
ALTER TABLE __P__jobs ADD COLUMN awaited INTEGER NOT NULL DEFAULT 0;
