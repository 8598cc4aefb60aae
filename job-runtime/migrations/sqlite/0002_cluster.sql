-- jobsmith schema for SQLite, version 2: nodes, leadership, cron bookkeeping, queue settings.

CREATE TABLE __P__nodes (
    name         TEXT PRIMARY KEY,
    queues       TEXT NOT NULL DEFAULT '[]',
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

CREATE TABLE __P__leader (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    node       TEXT NOT NULL,
    elected_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE __P__cron (
    name      TEXT PRIMARY KEY,
    last_slot INTEGER NOT NULL,
    fired_at  INTEGER NOT NULL
);

CREATE TABLE __P__queues (
    name         TEXT PRIMARY KEY,
    paused       INTEGER,
    concurrency  INTEGER CHECK (concurrency > 0),
    global_limit INTEGER CHECK (global_limit > 0),
    updated_at   INTEGER NOT NULL
);

CREATE INDEX __P__jobs_executing ON __P__jobs (queue, attempted_by) WHERE state = 'executing';
