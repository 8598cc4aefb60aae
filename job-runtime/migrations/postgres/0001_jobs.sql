-- jobsmith schema, version 1. `__SCHEMA__` is replaced by the instance's schema name at apply time,
-- so several isolated instances can share one database.

CREATE TYPE __SCHEMA__.job_state AS ENUM (
    'available', 'scheduled', 'executing', 'retryable', 'completed', 'discarded', 'cancelled'
);

-- The bit of a state in a unique job's state set. IMMUTABLE so the unique index can use it.
CREATE FUNCTION __SCHEMA__.state_bit(s __SCHEMA__.job_state) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE s
        WHEN 'available' THEN 1 WHEN 'scheduled' THEN 2 WHEN 'executing' THEN 4
        WHEN 'retryable' THEN 8 WHEN 'completed' THEN 16 WHEN 'discarded' THEN 32
        WHEN 'cancelled' THEN 64 END
$$;

CREATE TABLE __SCHEMA__.jobs (
    id            bigserial PRIMARY KEY,
    state         __SCHEMA__.job_state NOT NULL DEFAULT 'available',
    queue         text NOT NULL DEFAULT 'default',
    worker        text NOT NULL,
    args          jsonb NOT NULL DEFAULT '{}',
    meta          jsonb NOT NULL DEFAULT '{}',
    tags          text[] NOT NULL DEFAULT '{}',
    errors        jsonb[] NOT NULL DEFAULT '{}',
    attempt       integer NOT NULL DEFAULT 0,
    max_attempts  integer NOT NULL DEFAULT 20,
    priority      smallint NOT NULL DEFAULT 0,
    inserted_at   timestamptz NOT NULL DEFAULT now(),
    scheduled_at  timestamptz NOT NULL DEFAULT now(),
    attempted_at  timestamptz,
    attempted_by  text,
    completed_at  timestamptz,
    discarded_at  timestamptz,
    cancelled_at  timestamptz,
    -- SHA-256 of the parts a unique job is unique by; NULL for ordinary jobs.
    unique_key    bytea,
    -- Bit set (see state_bit) of the states in which this row blocks a duplicate.
    unique_states integer,
    CONSTRAINT queue_length CHECK (char_length(queue) BETWEEN 1 AND 128),
    CONSTRAINT worker_length CHECK (char_length(worker) BETWEEN 1 AND 255),
    CONSTRAINT attempt_range CHECK (attempt >= 0 AND attempt <= max_attempts),
    CONSTRAINT max_attempts_positive CHECK (max_attempts > 0),
    CONSTRAINT priority_range CHECK (priority BETWEEN 0 AND 9),
    CONSTRAINT unique_parts CHECK ((unique_key IS NULL) = (unique_states IS NULL))
) WITH (fillfactor = 85); -- room on each page so state changes can stay HOT updates

-- Fetch: the next available jobs of one queue in run order. Partial, so it only holds the rows
-- that are waiting, and stays small however many finished rows are kept.
CREATE INDEX jobs_fetch_idx ON __SCHEMA__.jobs (queue, priority, scheduled_at, id)
    WHERE state = 'available';

-- Staging: scheduled and retryable rows by due time.
CREATE INDEX jobs_stage_idx ON __SCHEMA__.jobs (scheduled_at)
    WHERE state IN ('scheduled', 'retryable');

-- Uniqueness: one row per key among the rows whose state is in their own state set. A database
-- index, not a lock plus a lookup, so concurrent inserts cannot race.
CREATE UNIQUE INDEX jobs_unique_idx ON __SCHEMA__.jobs (unique_key)
    WHERE unique_key IS NOT NULL AND (unique_states & __SCHEMA__.state_bit(state)) <> 0;

-- Pruning and listings of finished rows by state and age.
CREATE INDEX jobs_state_idx ON __SCHEMA__.jobs (state, id);
