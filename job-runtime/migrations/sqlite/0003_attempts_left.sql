-- jobsmith schema for SQLite, version 3: a waiting row always has an attempt left (see
-- migrations/postgres/0004_attempts_left.sql for why). Rows that break the rule are discarded
-- first, with an error entry saying why.
--
-- SQLite cannot add a CHECK constraint to an existing table without rebuilding it (a copy of
-- every row, and every index recreated), so two triggers enforce the rule instead, with the same
-- name in their message as the PostgreSQL constraint. A row with more attempts than allowed, in
-- any state, is refused since version 1 by the table's own CHECK.
UPDATE __P__jobs
SET state = 'discarded',
    discarded_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
    errors = json_insert(errors, '$[#]', json_object(
        'attempt', attempt,
        'at', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
        'error', 'discarded by migration 3: attempt ' || attempt || ' >= max_attempts ' || max_attempts
                 || ', it could never run'))
WHERE state IN ('available', 'scheduled', 'retryable') AND attempt >= max_attempts;

CREATE TRIGGER __P__jobs_waiting_has_attempt_left_insert BEFORE INSERT ON __P__jobs
WHEN NEW.state IN ('available', 'scheduled', 'retryable') AND NEW.attempt >= NEW.max_attempts
BEGIN
    SELECT RAISE(ABORT, 'waiting_has_attempt_left: an available, scheduled or retryable job needs attempt < max_attempts');
END;

CREATE TRIGGER __P__jobs_waiting_has_attempt_left_update BEFORE UPDATE OF state, attempt, max_attempts ON __P__jobs
WHEN NEW.state IN ('available', 'scheduled', 'retryable') AND NEW.attempt >= NEW.max_attempts
BEGIN
    SELECT RAISE(ABORT, 'waiting_has_attempt_left: an available, scheduled or retryable job needs attempt < max_attempts');
END;
