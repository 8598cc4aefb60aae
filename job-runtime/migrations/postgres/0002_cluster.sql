-- jobsmith schema, version 2: nodes, leadership, cron bookkeeping, persisted queue settings.

-- One row per running node, refreshed by its heartbeat. Rescue goes by these, never by a job's age.
CREATE TABLE __SCHEMA__.nodes (
    name         text PRIMARY KEY,
    queues       text[] NOT NULL DEFAULT '{}',
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- The leader lease: one row at most; renewed by the leader, taken over when it expires.
CREATE TABLE __SCHEMA__.leader (
    id         integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    node       text NOT NULL,
    elected_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

-- The last slot each cron entry fired, updated in the same transaction as the slot's insert.
CREATE TABLE __SCHEMA__.cron (
    name      text PRIMARY KEY,
    last_slot timestamptz NOT NULL,
    fired_at  timestamptz NOT NULL DEFAULT now()
);

-- Cluster-wide queue settings; NULL means "as each node is configured".
CREATE TABLE __SCHEMA__.queues (
    name         text PRIMARY KEY,
    paused       boolean,
    concurrency  integer CHECK (concurrency > 0),
    global_limit integer CHECK (global_limit > 0),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Executing jobs by queue and node: global limits count them, rescue finds a dead node's jobs.
CREATE INDEX jobs_executing_idx ON __SCHEMA__.jobs (queue, attempted_by) WHERE state = 'executing';
