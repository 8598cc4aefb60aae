-- jobsmith schema for SQLite, version 1. `__P__` is replaced by the instance's table prefix
-- (`jobsmith_` by default). Times are integer milliseconds since the Unix epoch (UTC); JSON
-- columns are text checked with json_valid.

CREATE TABLE __P__jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    state         TEXT NOT NULL DEFAULT 'available' CHECK (state IN
                      ('available', 'scheduled', 'executing', 'retryable', 'completed', 'discarded', 'cancelled')),
    queue         TEXT NOT NULL DEFAULT 'default' CHECK (length(queue) BETWEEN 1 AND 128),
    worker        TEXT NOT NULL CHECK (length(worker) BETWEEN 1 AND 255),
    args          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(args)),
    meta          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(meta)),
    tags          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
    errors        TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(errors)),
    attempt       INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL DEFAULT 20 CHECK (max_attempts > 0),
    priority      INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 9),
    inserted_at   INTEGER NOT NULL,
    scheduled_at  INTEGER NOT NULL,
    attempted_at  INTEGER,
    attempted_by  TEXT,
    completed_at  INTEGER,
    discarded_at  INTEGER,
    cancelled_at  INTEGER,
    unique_key    BLOB,
    unique_states INTEGER,
    CHECK (attempt >= 0 AND attempt <= max_attempts),
    CHECK ((unique_key IS NULL) = (unique_states IS NULL))
);

-- Fetch: available jobs of a queue in run order.
CREATE INDEX __P__jobs_fetch ON __P__jobs (queue, priority, scheduled_at, id) WHERE state = 'available';

-- Staging: waiting jobs by due time.
CREATE INDEX __P__jobs_stage ON __P__jobs (scheduled_at) WHERE state IN ('scheduled', 'retryable');

-- Uniqueness among rows whose state is in their own state set (bits as in the PostgreSQL schema).
CREATE UNIQUE INDEX __P__jobs_unique ON __P__jobs (unique_key)
    WHERE unique_key IS NOT NULL AND (unique_states & (CASE state
        WHEN 'available' THEN 1 WHEN 'scheduled' THEN 2 WHEN 'executing' THEN 4 WHEN 'retryable' THEN 8
        WHEN 'completed' THEN 16 WHEN 'discarded' THEN 32 WHEN 'cancelled' THEN 64 END)) <> 0;
