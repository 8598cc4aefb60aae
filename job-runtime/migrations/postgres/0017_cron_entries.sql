-- jobsmith schema, version 17: cron entries managed at run time, and the job types nodes run
-- (ADR 30).
--
-- Every cron entry the leader runs has a row: `code` rows are written by the leader from its own
-- configuration each time it takes the lead (read-only elsewhere, except for pausing), and
-- `database` rows are added, changed and removed at run time (library, CLI, dashboard). The
-- leader reads this table on every cron pass, so a change needs no restart.
CREATE TABLE __SCHEMA__.cron_entries (
    name          text        PRIMARY KEY,
    source        text        NOT NULL CHECK (source IN ('code', 'database')),
    expr          text        NOT NULL,
    timezone      text        NOT NULL,
    missed        text        NOT NULL,
    paused        boolean     NOT NULL DEFAULT false,
    -- What each job of the entry is inserted with: worker, queue, args, meta, tags, priority,
    -- max_attempts, weight, partition_key.
    job           jsonb       NOT NULL,
    -- Why the leader could not run the entry (unknown job type, args its type cannot decode, a
    -- bad expression), or NULL.
    error         text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The job that the newest fired slot inserted, for the cron page.
ALTER TABLE __SCHEMA__.cron ADD COLUMN last_job_id bigint;

-- The job types the leader's node runs, with their declared options: what the CLI and the
-- dashboard offer (and check) when a cron entry is added there.
CREATE TABLE __SCHEMA__.workers (
    name          text        PRIMARY KEY,
    queue         text        NOT NULL,
    priority      smallint    NOT NULL,
    max_attempts  integer     NOT NULL,
    weight        integer     NOT NULL,
    tags          text[]      NOT NULL DEFAULT '{}',
    registered_at timestamptz NOT NULL DEFAULT now()
);
