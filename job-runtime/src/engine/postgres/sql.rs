//! The statements of the PostgreSQL engine, formatted once per schema.

/// The columns of a [`crate::engine::JobRow`], in the form `row::job_row` reads.
pub(super) const JOB_COLUMNS: &str = "id, state::text AS state, queue, worker, args, meta, tags, errors, \
     attempt, max_attempts, priority, inserted_at, scheduled_at, attempted_at, attempted_by, \
     completed_at, discarded_at, cancelled_at, weight, partition_key";

#[derive(Debug)]
pub(super) struct Statements {
    pub(super) channel: String,
    pub(super) fetch: String,
    pub(super) ack: String,
    pub(super) ack_recorded: String,
    pub(super) ack_completed: String,
    pub(super) stage: String,
    pub(super) cancel: String,
    pub(super) retry: String,
    pub(super) get_job: String,
    pub(super) count_by_state: String,
    pub(super) count_unfinished: String,
    pub(super) fetch_limited: String,
    pub(super) fetch_after: String,
    pub(super) fetch_limited_after: String,
    /// The four fetches above (plain, after, limited, limited after), each committing without
    /// waiting for its WAL flush.
    pub(super) fetch_relaxed: [String; 4],
    /// `fetch`, `fetch_after` and the first two relaxed ones, counting every job as one slot.
    pub(super) fetch_unweighted: [String; 4],
    /// A rate-limited fetch (ADR 22), without and with a global limit: the claim stamp is a
    /// parameter (`$4`, or `$5` after the global limit), the instant the starts were logged at;
    /// then the weight cap, then the most rows (the starts the window has room for).
    pub(super) fetch_rated: [String; 2],
    /// The rate log of queue $1 (or with $2, of that partition) and the server's clock, read
    /// under the queue's advisory lock.
    pub(super) rate_log_read: String,
    /// Appends $4 starts at $2 ms to the log of each partition in $3 of queue $1, dropping
    /// those at or before $5 (ADR 25).
    pub(super) partition_rate_log_add: String,
    /// When the first full rate window of a partition of queue $1 with available jobs opens:
    /// its oldest start after $2 ms, where $3 starts fill a window.
    pub(super) partition_window_opens: String,
    /// A partitioned queue's fetch (see [`fetch_partitioned`]).
    pub(super) fetch_partitioned: String,
    /// Whether the jobs table was never analyzed (no row: the statistics were reset).
    pub(super) never_analyzed: String,
    /// The rate log of queue $1 (or with $3, of that partition), rewritten as $2.
    pub(super) rate_log_write: String,
    pub(super) heartbeat: String,
    pub(super) remove_node: String,
    pub(super) live_nodes: String,
    pub(super) lead: String,
    pub(super) resign: String,
    pub(super) leader: String,
    pub(super) rescue: String,
    pub(super) release_node: String,
    pub(super) executing: String,
    pub(super) hand_back: String,
    pub(super) prune: String,
    pub(super) prune_rate_logs: String,
    pub(super) dead_rows: String,
    pub(super) vacuum: String,
    pub(super) cron_last: String,
    pub(super) cron_lock: String,
    pub(super) cron_first: String,
    pub(super) cron_update: String,
    pub(super) queue_settings: String,
    pub(super) update_queue_settings: String,
}

impl Statements {
    pub(super) fn new(s: &str) -> Self {
        let back = move_back(s, "'stopped heartbeating'");
        let back_restarted = move_back(s, "'restarted'");
        let limited = format!(
            "GREATEST(0, LEAST($2, $4 - (SELECT coalesce(sum(weight), 0) FROM {s}.jobs WHERE state = 'executing' AND queue = $1)))"
        );
        Self {
            channel: format!("{s}_signal"),
            // MATERIALIZED is an optimisation fence: the planner must lock exactly LIMIT rows in
            // the CTE and then update those, never re-run the locking subquery per outer row (a
            // nested loop there once updated more rows than LIMIT and pushed attempt past
            // max_attempts). The attempt guard keeps a row that somehow has no attempts left from
            // being run again. See `fetch` for why the update takes the ids as an array.
            fetch: fetch(s, "$2", None, false, "now()", Some("$4"), None),
            fetch_after: fetch(s, "$2", Some(AFTER_4), false, "now()", Some("$7"), None),
            // The same four for a queue whose jobs all weigh 1 (`FetchRequest::weight_cap` 1):
            // no running sum, which cost SQLite about a tenth of its burn-down (ADR 23).
            fetch_unweighted: [
                fetch(s, "$2", None, false, "now()", None, None),
                fetch(s, "$2", Some(AFTER_4), false, "now()", None, None),
                fetch(s, "$2", None, true, "now()", None, None),
                fetch(s, "$2", Some(AFTER_4), true, "now()", None, None),
            ],
            // Many results in one statement. The guard (still executing, by this node, in this
            // attempt, under this claim when the result names it) makes a concurrent cancel or
            // rescue win over a late result, and keeps a result written twice (its first commit's
            // answer lost) off a newer claim of the same row. It is written
            // so no index can serve it (`state::text`, `coalesce`): the join must go through the
            // primary key. Otherwise the planner, trusting statistics that say few rows execute,
            // scans the partial index of executing rows, whose dead entries (every row that ever
            // executed, until vacuum) make each write slower than the last; measured: 200-600 ms
            // per 1,000 results mid burn-down instead of about 10 ms.
            // The common result, completed without error, for many rows. The rows are reached
            // by `id = ANY(ARRAY(SELECT unnest($1)))`, an init plan whose size the planner cannot
            // know (even in a custom plan), so it always takes the primary key; joining
            // `unnest($1, ...)` directly let a custom plan that sees the array's length choose a
            // scan of the whole table (measured: 317 ms for 1,000 results in a 100,000-row
            // table). Each row's expected attempt and claim are looked up in $2, a JSON object
            // keyed by id: no join at all. Joining the input back (a materialized CTE) let a
            // generic plan on a table of mostly finished rows, whose statistics say nothing
            // executes, rescan the input once per row: 1,000 x 1,000 comparisons, 78 ms per
            // 1,000 results with 1,000,000 rows of history against 10 ms on an empty table
            // (pg_stat_statements, docs/benchmarks.md); and `array_position($1, id)` per row,
            // as this statement did before that, scans the array per row too.
            ack_completed: format!(
                "UPDATE {s}.jobs j SET state = 'completed', completed_at = now()
                 WHERE j.id = ANY(ARRAY(SELECT unnest($1::bigint[])))
                   AND j.state::text = 'executing' AND coalesce(j.attempted_by, '') = $3
                   AND j.attempt = ({f0})::int AND {claim}",
                f0 = guard_field(2, 0),
                claim = claim_matches(2, 1),
            ),
            // Completions that record a result: the completion as `ack_completed` does it, and the
            // results of exactly the rows it completed, in one statement, so a result is never
            // written for a completion its guard refused (a stale run) and never missing for one
            // that went through. $2 holds each row's [attempt, claim, result].
            ack_recorded: format!(
                "WITH done AS (
                    UPDATE {s}.jobs j SET state = 'completed', completed_at = now()
                    WHERE j.id = ANY(ARRAY(SELECT unnest($1::bigint[])))
                      AND j.state::text = 'executing' AND coalesce(j.attempted_by, '') = $3
                      AND j.attempt = ({f0})::int AND {claim}
                    RETURNING j.id
                 )
                 INSERT INTO {s}.results (job_id, output)
                 SELECT id, $2::jsonb -> id::text -> 2 FROM done
                 ON CONFLICT (job_id) DO UPDATE SET output = EXCLUDED.output, recorded_at = now()",
                f0 = guard_field(2, 0),
                claim = claim_matches(2, 1),
            ),
            // Every other result, the same way (see `ack_completed`): $1 the ids, $2 each one's
            // [state, delay in ms, error, refund, attempt, claim, stamp column].
            ack: format!(
                "UPDATE {s}.jobs j SET
                    state = ({state})::{s}.job_state,
                    scheduled_at = CASE WHEN ({delay}) IS NULL THEN j.scheduled_at
                                        ELSE now() + ({delay})::bigint * interval '1 millisecond' END,
                    completed_at = CASE WHEN ({stamp}) = 'completed_at' THEN now() ELSE j.completed_at END,
                    discarded_at = CASE WHEN ({stamp}) = 'discarded_at' THEN now() ELSE j.discarded_at END,
                    cancelled_at = CASE WHEN ({stamp}) = 'cancelled_at' THEN now() ELSE j.cancelled_at END,
                    errors = CASE WHEN ({error}) IS NULL THEN j.errors
                                  ELSE array_append(j.errors, jsonb_build_object(
                                      'attempt', j.attempt, 'at', now(), 'node', j.attempted_by, 'started_at', j.attempted_at, 'error', ({error}))) END,
                    attempt = j.attempt - ({refund})::int
                 WHERE j.id = ANY(ARRAY(SELECT unnest($1::bigint[])))
                   AND j.state::text = 'executing' AND coalesce(j.attempted_by, '') = $3
                   AND j.attempt = ({attempt})::int AND {claim}",
                state = guard_field(2, 0),
                delay = guard_field(2, 1),
                error = guard_field(2, 2),
                refund = guard_field(2, 3),
                attempt = guard_field(2, 4),
                claim = claim_matches(2, 5),
                stamp = guard_field(2, 6),
            ),
            // Due rows become available; other nodes are told which queues got work. The next
            // due time lets the stager sleep exactly until then.
            stage: format!(
                "WITH due AS MATERIALIZED (
                    SELECT id FROM {s}.jobs
                    WHERE state IN ('scheduled', 'retryable') AND scheduled_at <= now()
                    ORDER BY scheduled_at
                    LIMIT $1
                    FOR UPDATE SKIP LOCKED
                ), staged AS (
                    UPDATE {s}.jobs j SET state = 'available' WHERE j.id = ANY(ARRAY(SELECT id FROM due)) RETURNING j.queue
                ), queues AS (
                    SELECT DISTINCT queue FROM staged
                ), notified AS (
                    SELECT pg_notify($2, 'a:' || queue) FROM queues
                )
                SELECT (SELECT count(*) FROM staged) AS staged,
                       (SELECT array_agg(queue) FROM queues) AS queues,
                       (SELECT count(*) FROM notified) AS notified,
                       (SELECT EXTRACT(EPOCH FROM min(scheduled_at) - now())::float8 * 1000
                          FROM {s}.jobs
                         WHERE state IN ('scheduled', 'retryable') AND scheduled_at > now()) AS next_due_ms"
            ),
            cancel: format!(
                "WITH old AS (
                    SELECT id, state FROM {s}.jobs
                    WHERE id = $1 AND state NOT IN ('completed', 'discarded', 'cancelled')
                    FOR UPDATE
                ), upd AS (
                    UPDATE {s}.jobs j SET state = 'cancelled', cancelled_at = now(),
                        errors = array_append(j.errors, jsonb_build_object(
                            'attempt', j.attempt, 'at', now(), 'node', j.attempted_by, 'started_at', j.attempted_at, 'error', 'cancelled by request'))
                    FROM old WHERE j.id = old.id
                    RETURNING old.state::text AS old_state
                ), notified AS (
                    SELECT pg_notify($2, 'c:' || $1::text) FROM upd WHERE old_state = 'executing'
                )
                SELECT old_state FROM upd WHERE (SELECT count(*) FROM notified) >= 0"
            ),
            retry: format!(
                "WITH upd AS (
                    UPDATE {s}.jobs SET state = 'available', max_attempts = GREATEST(max_attempts, attempt + 1),
                        scheduled_at = now(), discarded_at = NULL, cancelled_at = NULL
                    WHERE id = $1 AND state IN ('discarded', 'cancelled')
                    RETURNING queue
                ), notified AS (
                    SELECT pg_notify($2, 'a:' || queue) FROM upd
                )
                SELECT (SELECT count(*) FROM upd) + 0 * (SELECT count(*) FROM notified)"
            ),
            get_job: format!("SELECT {JOB_COLUMNS} FROM {s}.jobs WHERE id = $1"),
            // With a global limit: run under the queue's advisory lock (taken by the caller in the
            // same transaction), so the executing rows' weights cannot change between summing
            // and taking; READ COMMITTED gives this statement a snapshot taken after the lock.
            fetch_limited: fetch(s, &limited, None, false, "now()", Some("$5"), None),
            fetch_limited_after: fetch(s, &limited, Some(AFTER_5), false, "now()", Some("$8"), None),
            fetch_relaxed: [
                fetch(s, "$2", None, true, "now()", Some("$4"), None),
                fetch(s, "$2", Some(AFTER_4), true, "now()", Some("$7"), None),
                fetch(s, &limited, None, true, "now()", Some("$5"), None),
                fetch(s, &limited, Some(AFTER_5), true, "now()", Some("$8"), None),
            ],
            fetch_rated: [
                fetch(s, "$2", None, false, "$4::timestamptz", Some("$5"), Some("$6")),
                fetch(s, &limited, None, false, "$5::timestamptz", Some("$6"), Some("$7")),
            ],
            // Milliseconds, as the log stores them; `clock_timestamp()` is read after the lock
            // was taken (the previous statement), so successive fetches' instants only grow.
            fetch_partitioned: fetch_partitioned(s),
            never_analyzed: format!(
                "SELECT last_analyze IS NULL AND last_autoanalyze IS NULL FROM pg_stat_user_tables
                 WHERE relid = '{s}.jobs'::regclass"
            ),
            rate_log_read: format!(
                "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint AS now_ms,
                        coalesce((SELECT starts FROM {s}.rate_logs WHERE queue = $1 AND key = coalesce($2::text, '')),
                                 '{{}}') AS starts"
            ),
            rate_log_write: format!(
                "INSERT INTO {s}.rate_logs (queue, key, starts) VALUES ($1, coalesce($3::text, ''), $2)
                 ON CONFLICT (queue, key) DO UPDATE SET starts = EXCLUDED.starts"
            ),
            partition_rate_log_add: format!(
                "INSERT INTO {s}.rate_logs AS l (queue, key, starts)
                 SELECT $1, c.k, array_fill($2::bigint, ARRAY[c.n]) FROM unnest($3::text[], $4::int[]) AS c(k, n)
                 ON CONFLICT (queue, key) DO UPDATE
                 SET starts = ARRAY(SELECT t FROM unnest(l.starts) t WHERE t > $5::bigint ORDER BY t) || EXCLUDED.starts"
            ),
            partition_window_opens: format!(
                "SELECT min(oldest) FROM (
                     SELECT l.key, min(t) AS oldest, count(*) AS n FROM {s}.rate_logs l CROSS JOIN unnest(l.starts) t
                     WHERE l.queue = $1 AND l.key <> '' AND t > $2::bigint GROUP BY l.key
                 ) f
                 WHERE n >= $3::int AND EXISTS (SELECT 1 FROM {s}.jobs j
                                                WHERE j.state = 'available' AND j.queue = $1 AND j.partition_key = f.key)"
            ),
            // `connected_since` starts again when the previous heartbeat is older than the gap
            // ($3 ms): the node was cut off, and what it saw before says nothing now (see rescue).
            heartbeat: format!(
                "INSERT INTO {s}.nodes AS n (name, queues, heartbeat_at, connected_since) VALUES ($1, $2, now(), now())
                 ON CONFLICT (name) DO UPDATE SET queues = EXCLUDED.queues, heartbeat_at = now(),
                     connected_since = CASE WHEN n.heartbeat_at < now() - $3 * interval '1 millisecond'
                                            THEN now() ELSE n.connected_since END"
            ),
            remove_node: format!("DELETE FROM {s}.nodes WHERE name = $1"),
            live_nodes: format!(
                "SELECT name, queues, started_at, heartbeat_at FROM {s}.nodes
                 WHERE heartbeat_at > now() - $1 * interval '1 millisecond' ORDER BY name"
            ),
            // Take the lease when it is free or expired, renew it when ours; a row comes back
            // only if we lead afterwards.
            lead: format!(
                "INSERT INTO {s}.leader AS l (id, node, elected_at, expires_at)
                 VALUES (1, $1, now(), now() + $2 * interval '1 millisecond')
                 ON CONFLICT (id) DO UPDATE SET
                     node = EXCLUDED.node,
                     expires_at = EXCLUDED.expires_at,
                     elected_at = CASE WHEN l.node = EXCLUDED.node THEN l.elected_at ELSE now() END
                 WHERE l.node = EXCLUDED.node OR l.expires_at < now()
                 RETURNING node"
            ),
            resign: format!(
                "WITH gone AS (DELETE FROM {s}.leader WHERE node = $1 RETURNING 1)
                 SELECT count(pg_notify($2, 'l:')) FROM gone"
            ),
            leader: format!("SELECT node FROM {s}.leader WHERE expires_at > now()"),
            // By node liveness only: a job is rescued when the node that runs it has not
            // heartbeated within the TTL, however long the job itself has been running. And only
            // by a rescuer ($4) that is connected now and has been for a whole TTL, judged by the
            // database's clock as the statement runs ($5 the reconnect gap): after an outage
            // every heartbeat looks old, so one that was sent before the outage and runs after it
            // must find nothing to do.
            rescue: format!(
                "WITH judge AS MATERIALIZED (
                    SELECT 1 FROM {s}.nodes me
                    WHERE me.name = $4 AND me.heartbeat_at > now() - $5 * interval '1 millisecond'
                      AND me.connected_since <= now() - $1 * interval '1 millisecond'
                ), orphans AS MATERIALIZED (
                    SELECT id FROM {s}.jobs j
                    WHERE state = 'executing' AND EXISTS (SELECT 1 FROM judge)
                      AND NOT EXISTS (SELECT 1 FROM {s}.nodes n
                                      WHERE n.name = j.attempted_by
                                        AND n.heartbeat_at > now() - $1 * interval '1 millisecond')
                    LIMIT $2
                    FOR UPDATE SKIP LOCKED
                ), moved AS (
                    UPDATE {s}.jobs j SET {back}
                    WHERE j.id = ANY(ARRAY(SELECT id FROM orphans))
                    RETURNING j.state, j.queue
                ), notified AS (
                    SELECT pg_notify($3, 'a:' || queue) FROM (SELECT DISTINCT queue FROM moved WHERE state = 'available') q
                ), forgotten AS (
                    DELETE FROM {s}.nodes WHERE heartbeat_at <= now() - $1 * interval '1 millisecond'
                        AND EXISTS (SELECT 1 FROM judge) RETURNING 1
                )
                SELECT count(*) FILTER (WHERE state = 'available') AS rescued,
                       count(*) FILTER (WHERE state = 'discarded') AS discarded,
                       (SELECT count(*) FROM notified) AS notified,
                       (SELECT count(*) FROM forgotten) AS forgotten
                FROM moved"
            ),
            // The rows an earlier run of this node name left executing ($1 the node).
            release_node: format!(
                "WITH moved AS (
                    UPDATE {s}.jobs j SET {back_restarted}
                    WHERE state = 'executing' AND attempted_by = $1
                    RETURNING j.state, j.queue
                ), notified AS (
                    SELECT pg_notify($2, 'a:' || queue) FROM (SELECT DISTINCT queue FROM moved WHERE state = 'available') q
                )
                SELECT count(*) FILTER (WHERE state = 'available') AS rescued,
                       count(*) FILTER (WHERE state = 'discarded') AS discarded,
                       (SELECT count(*) FROM notified) AS notified
                FROM moved"
            ),
            // Served by the partial index of executing rows. The claim stamp is the fetch's time.
            executing: format!(
                "SELECT id, queue, {CLAIM_STAMP} AS claim FROM {s}.jobs WHERE state = 'executing' AND attempted_by = $1"
            ),
            // A lost claim goes back as if never taken: attempt returned, due time kept. The
            // guard (still executing by this node) makes a result written meanwhile win.
            hand_back: format!(
                "WITH lost AS MATERIALIZED (
                    SELECT id FROM {s}.jobs
                    WHERE id = ANY($2) AND state = 'executing' AND attempted_by = $1
                      AND {CLAIM_STAMP} = ($3::bigint[])[array_position($2, id)]
                    FOR UPDATE SKIP LOCKED
                ), moved AS (
                    UPDATE {s}.jobs j SET state = 'available', attempt = GREATEST(j.attempt - 1, 0),
                        errors = array_append(j.errors, jsonb_build_object(
                            'attempt', j.attempt, 'at', now(), 'node', j.attempted_by, 'started_at', j.attempted_at, 'error', $4::text))
                    WHERE j.id = ANY(ARRAY(SELECT id FROM lost))
                    RETURNING j.id, j.queue
                ), notified AS (
                    SELECT pg_notify($5, 'a:' || queue) FROM (SELECT DISTINCT queue FROM moved) q
                )
                SELECT id FROM moved WHERE (SELECT count(*) FROM notified) >= 0"
            ),
            // Dead row versions of the jobs table, as the statistics collector last counted them.
            dead_rows: format!("SELECT n_dead_tup FROM pg_stat_all_tables WHERE relid = '{s}.jobs'::regclass"),
            vacuum: format!("VACUUM {s}.jobs"),
            // A partition's log with no start inside its queue's window and the longest guard
            // (1 s, `RateLimit::guard_ms`); a queue no longer limited for each partition keeps
            // none. The queue's own log ('') is one row and stays. A fetch writing the row at
            // the same time re-inserts it (its add is an upsert), and the delete re-checks a row
            // a fetch just updated.
            prune_rate_logs: format!(
                "DELETE FROM {s}.rate_logs l
                 WHERE l.key <> ''
                   AND NOT EXISTS (
                       SELECT 1 FROM unnest(l.starts) t
                       WHERE t > (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint - 1000
                                 - coalesce((SELECT q.rate_window_ms FROM {s}.queues q
                                             WHERE q.name = l.queue AND q.rate_per_partition), 0))"
            ),
            prune: format!(
                // The first two conditions are what `jobs_prune_idx` (migration 6) serves: only
                // rows older than the shortest retention are read; the others pick the due ones.
                "WITH doomed AS MATERIALIZED (
                    SELECT id FROM {s}.jobs
                    WHERE state IN ('completed', 'discarded', 'cancelled')
                      AND coalesce(completed_at, cancelled_at, discarded_at)
                          < now() - LEAST($1, $2, $3) * interval '1 millisecond'
                      AND ((state = 'completed' AND completed_at < now() - $1 * interval '1 millisecond')
                       OR (state = 'cancelled' AND cancelled_at < now() - $2 * interval '1 millisecond')
                       OR (state = 'discarded' AND discarded_at < now() - $3 * interval '1 millisecond'))
                    LIMIT $4
                    FOR UPDATE SKIP LOCKED
                )
                DELETE FROM {s}.jobs j WHERE j.id = ANY(ARRAY(SELECT id FROM doomed))"
            ),
            cron_last: format!("SELECT last_slot FROM {s}.cron WHERE name = $1"),
            cron_lock: format!("SELECT last_slot FROM {s}.cron WHERE name = $1 FOR UPDATE"),
            cron_first: format!(
                "INSERT INTO {s}.cron (name, last_slot) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING"
            ),
            cron_update: format!("UPDATE {s}.cron SET last_slot = $2, fired_at = now() WHERE name = $1"),
            queue_settings: format!(
                "SELECT name, paused, concurrency, global_limit, rate_limit, rate_window_ms, rate_per_partition, partition_limit, sequence_policy FROM {s}.queues ORDER BY name"
            ),
            // One statement, so concurrent changes of different fields cannot undo each other:
            // ON CONFLICT locks the row and each SET reads its latest committed version. A field
            // not named by the change ($2, $4, $6, $10 (with $15), $13, $16 false) keeps its stored value. Nothing is written
            // for an unknown queue unless $8 allows it; the cheap checks come first, the jobs
            // table (no index by queue alone) last.
            update_queue_settings: format!(
                "WITH known AS (
                    SELECT $8::boolean
                        OR EXISTS (SELECT 1 FROM {s}.queues WHERE name = $1)
                        OR EXISTS (SELECT 1 FROM {s}.nodes WHERE $1 = ANY(queues))
                        OR EXISTS (SELECT 1 FROM {s}.jobs WHERE queue = $1) AS ok
                ), up AS (
                    INSERT INTO {s}.queues AS q (name, paused, concurrency, global_limit, rate_limit, rate_window_ms,
                                                 rate_per_partition, partition_limit, sequence_policy, updated_at)
                    SELECT $1, CASE WHEN $2::boolean THEN $3::boolean END, CASE WHEN $4::boolean THEN $5::integer END,
                           CASE WHEN $6::boolean THEN $7::integer END, CASE WHEN $10::boolean THEN $11::integer END,
                           CASE WHEN $10::boolean THEN $12::bigint END, $10::boolean AND coalesce($15::boolean, false),
                           CASE WHEN $13::boolean THEN $14::integer END, CASE WHEN $16::boolean THEN $17::text END, now()
                    FROM known WHERE ok
                    ON CONFLICT (name) DO UPDATE SET
                        paused = CASE WHEN $2::boolean THEN EXCLUDED.paused ELSE q.paused END,
                        concurrency = CASE WHEN $4::boolean THEN EXCLUDED.concurrency ELSE q.concurrency END,
                        global_limit = CASE WHEN $6::boolean THEN EXCLUDED.global_limit ELSE q.global_limit END,
                        rate_limit = CASE WHEN $10::boolean THEN EXCLUDED.rate_limit ELSE q.rate_limit END,
                        rate_window_ms = CASE WHEN $10::boolean THEN EXCLUDED.rate_window_ms ELSE q.rate_window_ms END,
                        rate_per_partition = CASE WHEN $10::boolean THEN EXCLUDED.rate_per_partition ELSE q.rate_per_partition END,
                        partition_limit = CASE WHEN $13::boolean THEN EXCLUDED.partition_limit ELSE q.partition_limit END,
                        sequence_policy = CASE WHEN $16::boolean THEN EXCLUDED.sequence_policy ELSE q.sequence_policy END,
                        updated_at = now()
                    RETURNING name, paused, concurrency, global_limit, rate_limit, rate_window_ms, rate_per_partition, partition_limit,
                              sequence_policy
                ), notified AS (
                    SELECT pg_notify($9, 'q:' || name) FROM up
                )
                SELECT name, paused, concurrency, global_limit, rate_limit, rate_window_ms, rate_per_partition, partition_limit, sequence_policy
                FROM up
                WHERE (SELECT count(*) FROM notified) >= 0"
            ),
            count_by_state: format!(
                "SELECT queue, state::text AS state, count(*) AS n FROM {s}.jobs GROUP BY queue, state ORDER BY queue, state"
            ),
            // One arm per state, each matching one partial index's predicate, so no finished row
            // is read: counting by state over the whole table read 1,000,000 rows of history in
            // 0.29 s, on the leader every gauge interval.
            count_unfinished: format!(
                "SELECT queue, state, count(*) AS n FROM (
                    SELECT queue, 'available' AS state FROM {s}.jobs WHERE state = 'available'
                    UNION ALL SELECT queue, 'executing' FROM {s}.jobs WHERE state = 'executing'
                    UNION ALL SELECT queue, state::text FROM {s}.jobs WHERE state IN ('scheduled', 'retryable')
                ) unfinished GROUP BY queue, state ORDER BY queue, state"
            ),
        }
    }
}

/// Which claim of an executing row this is: the fetch's time, in microseconds (see
/// `ExecutingRow::claim`).
const CLAIM_STAMP: &str = "coalesce((extract(epoch FROM attempted_at) * 1000000)::bigint, 0)";

/// The columns of a [`crate::engine::FetchedJob`], as `row::fetched_job` reads them. The claim
/// stamp ([`CLAIM_STAMP`]) is computed from `attempted_at` by the client: the same microseconds,
/// without a numeric `extract` per row, which took about a quarter of a 400-row fetch's time
/// (measured in psql: 7.4-12.2 ms with it, 5.1-9.2 ms without).
pub(super) const FETCHED_COLUMNS: &str = "id, worker, queue, args, meta, tags, attempt, max_attempts, inserted_at, \
     scheduled_at, priority, weight, attempted_at AS claimed_at";

/// A result's claim guard: the claim it names (its time, `u.claim`, sent as a timestamp) is the
/// row's, compared as timestamps for the same reason; no claim named, no check.
/// Field `i` (as text) of the row's entry in the JSON object parameter `$p` of a result
/// statement, which maps each id to an array of its values.
fn guard_field(p: u8, i: u8) -> String {
    format!("${p}::jsonb -> j.id::text ->> {i}")
}

/// The claim guard: the entry's claim time (field `i`, RFC 3339) is absent or is `attempted_at`.
fn claim_matches(p: u8, i: u8) -> String {
    let claim = guard_field(p, i);
    format!("(({claim}) IS NULL OR j.attempted_at = ({claim})::timestamptz)")
}

/// The cursor parameters of a fetch without and with a global limit.
const AFTER_4: &str = "($4::smallint, $5::timestamptz, $6::bigint)";
const AFTER_5: &str = "($5::smallint, $6::timestamptz, $7::bigint)";

/// Takes available jobs of queue $1 for node $3, in run order, while their weights fill no more
/// than `limit` (a SQL expression) slots, each weight counted as at most `cap` (a parameter: the
/// node's own limit, or the global one if lower, so a job heavier than that still runs, alone;
/// ADR 23); with `after` (a row of three parameters: priority, scheduled_at, id) only jobs after
/// that place in run order, which the index scan starts from (see `FetchRequest::after`). Every
/// weight is at least 1, so `limit` rows are the most that can fit; the running sum over them
/// stops at the first that does not fit, so a heavy job is never passed by lighter ones behind it.
/// With every weight 1 it takes what a plain `LIMIT` took.
///
/// The update finds the locked rows by `id = ANY(ARRAY(...))`, not by joining the CTE: once the
/// prepared statement switches to a generic plan, `LIMIT $2` is estimated at thousands of rows and
/// a join became a hash join over a sequential scan of the whole table (measured: 19 ms for 400
/// rows of a 100,000-row table, growing with the table; the array form scans the primary key:
/// 2.7 ms). The stage, rescue and prune statements use the same form for the same reason.
///
/// `claimed_at` is the claim stamp: `now()`, or for a rate-limited fetch the instant its starts
/// were logged at (a parameter), so `attempted_at` is exactly what the rate log counted.
///
/// `relaxed`: the statement's own transaction commits without waiting for its WAL to reach disk
/// (`synchronous_commit = off`, set for that transaction only; see
/// `FetchRequest::relaxed_commit` and ADR 9). The setting is an uncorrelated subquery, evaluated
/// once per statement; `set_config(..., true)` ends with the transaction, so a pooled connection
/// keeps its own setting (tested).
fn fetch(
    s: &str,
    limit: &str,
    after: Option<&str>,
    relaxed: bool,
    claimed_at: &str,
    cap: Option<&str>,
    rows: Option<&str>,
) -> String {
    let after = after.map(|row| format!("AND (priority, scheduled_at, id) > {row}")).unwrap_or_default();
    let relaxed = if relaxed {
        "\n          AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'"
    } else {
        ""
    };
    let Some(cap) = cap else {
        // Every job counted as one slot: `limit` rows, as they come.
        return format!(
            "WITH picked AS MATERIALIZED (
                SELECT id AS picked_id FROM {s}.jobs
                WHERE state = 'available' AND queue = $1 AND attempt < max_attempts {after}
                ORDER BY priority, scheduled_at, id
                LIMIT {limit}
                FOR UPDATE SKIP LOCKED
            )
            UPDATE {s}.jobs j
            SET state = 'executing', attempt = j.attempt + 1, attempted_at = {claimed_at}, attempted_by = $3
            WHERE j.id = ANY(ARRAY(SELECT picked_id FROM picked)){relaxed}
            RETURNING {FETCHED_COLUMNS}"
        );
    };
    // A rate-limited fetch may take fewer rows (the starts its window has room for) than slots.
    let most_rows = rows.map_or_else(|| limit.to_string(), |rows| format!("LEAST({limit}, {rows})"));
    format!(
        "WITH picked AS MATERIALIZED (
            SELECT id AS picked_id, priority AS p, scheduled_at AS d, least(weight, {cap}::int) AS w FROM {s}.jobs
            WHERE state = 'available' AND queue = $1 AND attempt < max_attempts {after}
            ORDER BY priority, scheduled_at, id
            LIMIT {most_rows}
            FOR UPDATE SKIP LOCKED
        ), taken AS (
            SELECT picked_id FROM (
                SELECT picked_id, sum(w) OVER (ORDER BY p, d, picked_id) AS slots FROM picked
            ) t WHERE slots <= {limit}
        )
        UPDATE {s}.jobs j
        SET state = 'executing', attempt = j.attempt + 1, attempted_at = {claimed_at}, attempted_by = $3
        WHERE j.id = ANY(ARRAY(SELECT picked_id FROM taken)){relaxed}
        RETURNING {FETCHED_COLUMNS}"
    )
}

/// The fetch of a partitioned queue (ADR 24), run under the queue's advisory lock: $1 queue,
/// $2 most slots, $3 node, $4 most executing per partition (NULL: no limit), $5 the partition
/// the last fetch ended at (NULL: none), $6 the global limit (NULL: none), $7 how far to look
/// for jobs of no partition ([`crate::UNPARTITIONED_LOOKAHEAD`]), $8 the most one job's weight
/// counts for; with a rate limit for each partition (ADR 25) $9 the most starts per window,
/// $10 the log's starts after which count (in ms) and $11 the claim stamp (all NULL without);
/// $12 the heads the cursor's partition has left of its turn (NULL: none; ADR 26), which then
/// comes first in the walk with that many in its first turn; $13 the queue's sequence policy
/// (`wait`, `continue`; NULL: not sequenced, ADR 27; a sequence's row in `sequence_policies`
/// overrides it): a partition then gives only its first unfinished job by id, and only when that
/// job is available.
///
/// - The walk goes through the partitions with available jobs in key order from the one after
///   the cursor to the last (lap 1), then from the first up to the cursor (lap 2), one probe of
///   the partial index per partition (a loose index scan), and `open` stops it as soon as it has
///   as many partitions with room as the fetch has slots: it costs the partitions it serves and
///   the full ones it passes (at most the executing rows), not all partitions.
/// - Each open partition gives its head in run order, an equal share (rounded up, at most its
///   room) for each unit of its weight (`partition_weights`, 1 without; ADR 26); rows are then
///   taken turn by turn (every partition's first heads, as many as its weight, then the next;
///   jobs of no partition first in each turn, so they are never the ones cut), while the jobs'
///   weights fit, so priorities hold within a partition and a heavy job is not passed.
/// - Jobs of no partition have no index of their own: they are looked for among the first $7
///   of the queue in run order, and count as one more partition.
/// - The chosen rows are locked with SKIP LOCKED (a row another transaction holds, a duplicate
///   insert's upsert say, is left for a later fetch instead of stalling every fetcher behind the
///   queue's lock) and must still be available in this queue.
/// - A partition's room is the least of its concurrency room and its rate room (the starts its
///   log has room for): a partition with a full window is passed like a full one.
fn fetch_partitioned(s: &str) -> String {
    let head = format!(
        "SELECT partition_key FROM {s}.jobs WHERE state = 'available' AND queue = $1 AND partition_key IS NOT NULL"
    );
    // Lap 2 ends at the cursor, or just before it when the fetch resumed it in lap 1. One bound
    // the index scan stops at (an OR of the two was a filter: the last probe of the lap read
    // every entry after the cursor): `< key || chr(1)` is `<= key`, as no text holds a NUL.
    let up_to = "partition_key < (CASE WHEN $12::int IS NULL THEN $5::text || chr(1) ELSE $5::text END)";
    format!(
        "WITH RECURSIVE room AS MATERIALIZED (
            SELECT CASE WHEN $6::int IS NULL THEN $2::int
                        ELSE GREATEST(0, LEAST($2::int, $6::int - (SELECT coalesce(sum(weight), 0)::int FROM {s}.jobs
                                                                  WHERE state = 'executing' AND queue = $1))) END AS slots
        ), busy AS MATERIALIZED (
            SELECT partition_key AS k, count(*)::int AS n FROM {s}.jobs
            WHERE state = 'executing' AND queue = $1 AND partition_key IS NOT NULL
            GROUP BY partition_key
        ), resumed(k, ord) AS (
            SELECT $5::text, 0 WHERE $12::int IS NOT NULL AND EXISTS ({head} AND partition_key = $5::text)
        ), after_cursor(k, ord) AS (
            SELECT ({head} AND partition_key > coalesce($5::text, '') ORDER BY partition_key LIMIT 1), 1
            UNION ALL
            SELECT ({head} AND partition_key > w.k ORDER BY partition_key LIMIT 1), w.ord + 1
            FROM after_cursor w WHERE w.k IS NOT NULL
        ), up_to_cursor(k, ord) AS (
            SELECT ({head} AND {up_to} ORDER BY partition_key LIMIT 1), 1
            UNION ALL
            SELECT ({head} AND partition_key > w.k AND {up_to} ORDER BY partition_key LIMIT 1), w.ord + 1
            FROM up_to_cursor w WHERE w.k IS NOT NULL
        ), walk AS (
            SELECT k, 1 AS lap, ord FROM resumed
            UNION ALL
            SELECT k, 1, ord FROM after_cursor WHERE k IS NOT NULL
            UNION ALL
            SELECT k, 2, ord FROM up_to_cursor WHERE k IS NOT NULL
        ), rooms AS (
            SELECT k, lap, ord, LEAST(
                coalesce($4::int, 2147483647) - coalesce((SELECT b.n FROM busy b WHERE b.k = walk.k), 0),
                CASE WHEN $9::int IS NULL THEN 2147483647
                     ELSE $9::int - (SELECT count(*)::int FROM {s}.rate_logs l CROSS JOIN unnest(l.starts) t
                                     WHERE l.queue = $1 AND l.key = walk.k AND t > $10::bigint) END,
                CASE WHEN $13::text IS NULL THEN 2147483647 WHEN hd.ready THEN 1 ELSE 0 END) AS free,
                hd.head_id
            FROM walk LEFT JOIN LATERAL (
                -- A sequence's first job that has not finished (ADR 27): it alone may start.
                SELECT h.id AS head_id, h.state = 'available' AND h.attempt < h.max_attempts AS ready
                FROM {s}.jobs h
                WHERE $13::text IS NOT NULL AND h.queue = $1 AND h.partition_key = walk.k AND h.partition_key IS NOT NULL
                  -- The index's own predicate, as written there, so the planner proves it and probes
                  -- the index (an OR with the policy made it walk the primary key instead).
                  AND h.state IN ('available', 'scheduled', 'retryable', 'executing', 'discarded')
                  -- The sequence's own policy (sequence_policies) or else the queue's.
                  AND (h.state <> 'discarded'
                       OR coalesce((SELECT sp.policy FROM {s}.sequence_policies sp
                                    WHERE sp.queue = $1 AND sp.key = walk.k), $13::text) = 'wait')
                ORDER BY h.id LIMIT 1
            ) hd ON true
        ), open AS MATERIALIZED (
            SELECT k, lap, ord, free, head_id,
                   coalesce((SELECT pw.weight FROM {s}.partition_weights pw WHERE pw.queue = $1 AND pw.key = rooms.k), 1)
                       AS share_weight,
                   CASE WHEN ord = 0 THEN $12::int END AS credit
            FROM rooms WHERE free > 0
            LIMIT (SELECT slots FROM room)
        ), unkeyed AS MATERIALIZED (
            SELECT id, priority, scheduled_at, w FROM (
                SELECT id, partition_key, priority, scheduled_at, least(weight, $8::int) AS w FROM {s}.jobs
                WHERE state = 'available' AND queue = $1 AND attempt < max_attempts
                ORDER BY priority, scheduled_at, id
                LIMIT $7
            ) ahead WHERE partition_key IS NULL
        ), shares AS MATERIALIZED (
            SELECT ((SELECT slots FROM room) + parts - 1) / GREATEST(parts, 1) AS each FROM (
                SELECT (SELECT coalesce(sum(share_weight), 0) FROM open)::int
                       + CASE WHEN EXISTS (SELECT 1 FROM unkeyed) THEN 1 ELSE 0 END AS parts
            ) p
        ), heads AS (
            SELECT c.id, open.lap, open.ord, c.w, open.share_weight AS sw,
                   LEAST(open.credit, open.share_weight) AS credit,
                   row_number() OVER (PARTITION BY open.k ORDER BY c.priority, c.scheduled_at, c.id) AS rn
            FROM open CROSS JOIN LATERAL (
                SELECT id, priority, scheduled_at, least(weight, $8::int) AS w FROM {s}.jobs
                WHERE $13::text IS NOT NULL AND id = open.head_id
                UNION ALL
                (SELECT id, priority, scheduled_at, least(weight, $8::int) AS w FROM {s}.jobs
                 WHERE $13::text IS NULL AND state = 'available' AND queue = $1 AND partition_key = open.k
                   AND attempt < max_attempts
                 ORDER BY priority, scheduled_at, id
                 LIMIT LEAST(open.free, (SELECT each FROM shares) * open.share_weight))
            ) c
        ), candidates AS (
            -- A partition gives `sw` heads a turn (its first turn: the `credit` a resumed one had
            -- left); `left` is how many of the head's turn remain after it.
            SELECT id, lap, ord, w, rn,
                   CASE WHEN credit IS NULL THEN (rn - 1) / sw
                        WHEN rn <= credit THEN 0
                        ELSE 1 + (rn - credit - 1) / sw END AS turn,
                   CASE WHEN credit IS NULL THEN sw - 1 - (rn - 1) % sw
                        WHEN rn <= credit THEN credit - rn
                        ELSE sw - 1 - (rn - credit - 1) % sw END AS turn_left
            FROM heads
            UNION ALL
            SELECT id, 0, 0, w, rn, rn - 1, 0 FROM (
                SELECT id, w, row_number() OVER (ORDER BY priority, scheduled_at, id) AS rn FROM unkeyed
            ) u
        ), picked AS MATERIALIZED (
            -- In turn order; within a partition's turn its heads in run order (`rn`).
            SELECT id, lap, ord, rn, turn, turn_left FROM (
                SELECT id, lap, ord, rn, turn, turn_left, sum(w) OVER (ORDER BY turn, lap, ord, rn, id) AS filled
                FROM candidates
            ) t WHERE filled <= (SELECT slots FROM room)
        ), locked AS MATERIALIZED (
            SELECT j.id AS locked_id, p.lap AS locked_lap, p.ord AS locked_ord, p.turn AS locked_turn,
                   p.rn AS locked_rn, p.turn_left AS locked_turn_left
            FROM {s}.jobs j JOIN picked p ON p.id = j.id
            WHERE j.state = 'available' AND j.queue = $1
            FOR UPDATE OF j SKIP LOCKED
        )
        UPDATE {s}.jobs j
        SET state = 'executing', attempt = j.attempt + 1, attempted_at = coalesce($11::timestamptz, now()),
            attempted_by = $3
        FROM locked WHERE j.id = locked.locked_id
        RETURNING {FETCHED_COLUMNS}, partition_key, locked_lap, locked_ord, locked_turn, locked_rn, locked_turn_left"
    )
}

/// The SET clause that takes a job back from a node that is gone: `available` again, or
/// `discarded` without attempts left, with an error entry saying why (`why` is a SQL string
/// literal completing "rescued: node `x` ... while the job ran").
fn move_back(s: &str, why: &str) -> String {
    format!(
        "state = CASE WHEN j.attempt >= j.max_attempts THEN 'discarded' ELSE 'available' END::{s}.job_state,
         discarded_at = CASE WHEN j.attempt >= j.max_attempts THEN now() ELSE j.discarded_at END,
         errors = array_append(j.errors, jsonb_build_object(
             'attempt', j.attempt, 'at', now(), 'node', j.attempted_by, 'started_at', j.attempted_at,
             'error', 'rescued: node `' || coalesce(j.attempted_by, '?') || '` ' || {why} || ' while the job ran'))"
    )
}
