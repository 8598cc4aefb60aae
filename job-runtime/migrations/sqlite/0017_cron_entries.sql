-- jobsmith schema for SQLite, version 17: cron entries managed at run time, and the job types
-- nodes run (ADR 30; see the PostgreSQL migration for the columns).
CREATE TABLE __P__cron_entries (
    name          TEXT    PRIMARY KEY,
    source        TEXT    NOT NULL CHECK (source IN ('code', 'database')),
    expr          TEXT    NOT NULL,
    timezone      TEXT    NOT NULL,
    missed        TEXT    NOT NULL,
    paused        INTEGER NOT NULL DEFAULT 0,
    job           TEXT    NOT NULL,
    error         TEXT,
    updated_at    INTEGER NOT NULL
);

ALTER TABLE __P__cron ADD COLUMN last_job_id INTEGER;

CREATE TABLE __P__workers (
    name          TEXT    PRIMARY KEY,
    queue         TEXT    NOT NULL,
    priority      INTEGER NOT NULL,
    max_attempts  INTEGER NOT NULL,
    weight        INTEGER NOT NULL,
    tags          TEXT    NOT NULL DEFAULT '[]',
    registered_at INTEGER NOT NULL
);
