-- jobsmith schema for SQLite, version 5: the rule of version 3 (a waiting row always has an
-- attempt left) as a CHECK constraint of the jobs table instead of two triggers.
--
-- Why rebuild the table: a trigger is a sub-program SQLite runs for every row a statement
-- changes, and every fetch and every result changes `state` and `attempt`. Measured on the bench
-- machine (docs/benchmarks.md), the update trigger cost about 2 µs per row per statement, 40 % of
-- a fetch and of a completion; a CHECK is an expression evaluated inline. SQLite adds a CHECK only
-- by rebuilding the table: create it anew, copy every row, drop the old one, rename, recreate
-- the indexes. The copy holds the write lock for as long as it takes (measured: 2 s for
-- 500,000 rows on a busy 2-core machine), once.
--
-- Rows that break the rule are discarded first (as version 3 did), so the copy cannot fail on
-- them; ids are kept, and so is the AUTOINCREMENT sequence, so the ids of pruned rows are never
-- given out again.
UPDATE __P__jobs
SET state = 'discarded',
    discarded_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
    errors = json_insert(errors, '$[#]', json_object(
        'attempt', attempt,
        'at', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
        'error', 'discarded by migration 5: attempt ' || attempt || ' >= max_attempts ' || max_attempts
                 || ', it could never run'))
WHERE state IN ('available', 'scheduled', 'retryable') AND attempt >= max_attempts;

DROP TRIGGER IF EXISTS __P__jobs_waiting_has_attempt_left_insert;
DROP TRIGGER IF EXISTS __P__jobs_waiting_has_attempt_left_update;

CREATE TABLE __P__jobs_rebuilt (
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
    CHECK ((unique_key IS NULL) = (unique_states IS NULL)),
    CONSTRAINT waiting_has_attempt_left
        CHECK (state NOT IN ('available', 'scheduled', 'retryable') OR attempt < max_attempts)
);

INSERT INTO __P__jobs_rebuilt (id, state, queue, worker, args, meta, tags, errors, attempt, max_attempts,
    priority, inserted_at, scheduled_at, attempted_at, attempted_by, completed_at, discarded_at,
    cancelled_at, unique_key, unique_states)
SELECT id, state, queue, worker, args, meta, tags, errors, attempt, max_attempts,
    priority, inserted_at, scheduled_at, attempted_at, attempted_by, completed_at, discarded_at,
    cancelled_at, unique_key, unique_states
FROM __P__jobs ORDER BY id;

-- The copy set the new table's sequence to its largest id; the old one may be higher (its last
-- rows pruned). Keep the higher.
INSERT INTO sqlite_sequence (name, seq)
SELECT '__P__jobs_rebuilt', 0
WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = '__P__jobs_rebuilt');
UPDATE sqlite_sequence
SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = '__P__jobs'), 0))
WHERE name = '__P__jobs_rebuilt';

DROP TABLE __P__jobs;
ALTER TABLE __P__jobs_rebuilt RENAME TO __P__jobs;

-- The indexes of versions 1 and 2, as they were.
CREATE INDEX __P__jobs_fetch ON __P__jobs (queue, priority, scheduled_at, id) WHERE state = 'available';
CREATE INDEX __P__jobs_stage ON __P__jobs (scheduled_at) WHERE state IN ('scheduled', 'retryable');
CREATE UNIQUE INDEX __P__jobs_unique ON __P__jobs (unique_key)
    WHERE unique_key IS NOT NULL AND (unique_states & (CASE state
        WHEN 'available' THEN 1 WHEN 'scheduled' THEN 2 WHEN 'executing' THEN 4 WHEN 'retryable' THEN 8
        WHEN 'completed' THEN 16 WHEN 'discarded' THEN 32 WHEN 'cancelled' THEN 64 END)) <> 0;
CREATE INDEX __P__jobs_executing ON __P__jobs (queue, attempted_by) WHERE state = 'executing';
