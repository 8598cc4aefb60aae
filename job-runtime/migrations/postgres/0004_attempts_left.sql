-- jobsmith schema, version 4: a waiting row always has an attempt left.
--
-- A fetch takes only rows with attempt < max_attempts, so an available, scheduled or retryable
-- row without an attempt left (written by hand, or by a tool that knows the table but not its
-- rules) would wait forever, seen by no fetch, no rescue and no pruning, and reported nowhere.
-- Such rows are discarded first, with an error entry saying why, so the check below can be added;
-- from then on the table refuses them. A row with more attempts than allowed, in any state, is
-- refused since version 1 (attempt_range).
--
-- Adding the check reads the whole table while it holds its lock: on a large table this
-- migration pauses inserts and fetches for that long.
UPDATE __SCHEMA__.jobs
SET state = 'discarded',
    discarded_at = now(),
    errors = array_append(errors, jsonb_build_object(
        'attempt', attempt,
        'at', now(),
        'error', 'discarded by migration 4: attempt ' || attempt || ' >= max_attempts ' || max_attempts
                 || ', it could never run'))
WHERE state IN ('available', 'scheduled', 'retryable') AND attempt >= max_attempts;

ALTER TABLE __SCHEMA__.jobs ADD CONSTRAINT waiting_has_attempt_left
    CHECK (state NOT IN ('available', 'scheduled', 'retryable') OR attempt < max_attempts);
