//! The SQLite engine: the embedded default, for one node.
//!
//! - WAL mode and a busy timeout; the engine's own writes go through one async mutex, so its
//!   workers never fight each other for the write lock ("database is locked").
//! - No SKIP LOCKED is needed: SQLite has one writer at a time, and a fetch is one
//!   `UPDATE ... RETURNING` statement.
//! - No LISTEN/NOTIFY: inserts wake runtimes of the same process directly (see `wake`); other
//!   processes on the same file find work by polling.
//! - Times are integer milliseconds on this machine's clock (one node, one clock).

mod cron;
mod insert;
mod migrate;
mod partitioned;
mod query;
mod row;
mod wake;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
};
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::{Mutex, MutexGuard, mpsc};
use tokio_util::sync::CancellationToken;

use crate::engine::ack_plan::AckPlan;
use crate::engine::common::{ms, validate_schema};
use crate::engine::test_support::TestSupport;
use crate::engine::{Administration, Engine, InsertDatabase, Notifications, RuntimeOps};
use crate::error::{Error, Result};
use crate::types::{
    Ack, AckKind, CronFire, ExecutingRow, FetchRequest, FetchedJob, HandBack, Heartbeat, InsertedJob,
    JobFilter, JobRow, JobState, MinuteStats, NewJob, NodeRow, Page, PartitionRequest, PartitionWeight,
    PartitionedFetch, QueueSettings, RateLimit, RateLimitedFetch, RateLog, RatedStamp, RescueReport,
    RescueRequest, Retention, SequenceOverride, SequencePolicy, SettingsUpdate, Signal, StageReport,
    StateCount, TxCompletion,
};

pub use migrate::{MIGRATIONS, migrate};

/// Records a finished step while its run still holds the job (see `RuntimeOps::record_step`).
async fn record_step_on(
    conn: &mut SqliteConnection,
    p: &str,
    step: &crate::types::StepRecord<'_>,
) -> Result<bool> {
    let kept: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "INSERT INTO {p}steps (job_id, name, output, recorded_at)
         SELECT ?1, ?2, ?3, ?6 WHERE EXISTS (
             SELECT 1 FROM {p}jobs WHERE id = ?1 AND state = 'executing' AND attempted_by = ?4 AND attempt = ?5)
         ON CONFLICT (job_id, name) DO UPDATE SET output = excluded.output, recorded_at = excluded.recorded_at
         RETURNING 1"
    )))
    .bind(step.job)
    .bind(step.name)
    .bind(step.output.to_string())
    .bind(step.node)
    .bind(i64::from(step.attempt))
    .bind(now_ms())
    .fetch_optional(conn)
    .await?;
    Ok(kept.is_some())
}

/// The SQLite connection of a job's transaction.
fn lite(tx: &mut crate::Transaction) -> Result<&mut SqliteConnection> {
    let engine = tx.engine().name();
    tx.sqlite().ok_or_else(|| {
        Error::Unexpected(format!("a job's transaction on `{engine}` reached the SQLite engine"))
    })
}

/// The SQLite engine over a pool, for one table prefix (`<schema>_`).
#[derive(Debug, Clone)]
pub struct SqliteEngine {
    pool: SqlitePool,
    prefix: String,
    file: String,
    write_lock: Arc<Mutex<()>>,
}

/// The SET clause that takes a job back from a node that is gone (?2 now in ms, ?3 now as text):
/// `available` again, or `discarded` without attempts left, with an error entry saying `{why}`.
/// The columns of a [`FetchedJob`], as `row::fetched_job` reads them (fetch and claim).
/// What a claim returns, read by [`row::fetched_job`] by position. Not the queue or the claim
/// stamp, which the claim knows already, and `meta`, `tags` and `weight` only when they are not
/// the defaults: sqlx copies every returned value into an allocation of its own on its worker thread,
/// while it holds the write lock, and a column less per row was measured 10-20 % of a fetch of
/// 1,000 rows.
const FETCHED_COLUMNS: &str = "id, worker, args, nullif(meta, '{}'), nullif(tags, '[]'), attempt, max_attempts, \
     inserted_at, scheduled_at, priority, nullif(weight, 1)";

/// The claim of a fetch: available jobs of queue ?1 for node ?4 at claim stamp ?3, in run order,
/// while their weights (each counted as at most ?6) fill no more than ?2 slots, or, under a global
/// limit of ?5, no more than what the executing rows' weights leave of it (one writer at a time,
/// so the sum is exact). Every weight is at least 1, so that many rows are the most that fit; the
/// running sum stops at the first that does not, so lighter jobs never pass a heavy one (ADR 23).
fn claim_statement(p: &str, global_limit: bool, weighted: bool, most_rows: bool) -> String {
    if !global_limit && !weighted {
        // Every job counted as one slot: ?2 rows as they come, without the running sum (its
        // co-routines cost about a tenth of a burn-down; ADR 23). ?5 and ?6 are unused.
        return format!(
            "UPDATE {p}jobs SET state = 'executing', attempt = attempt + 1, attempted_at = ?3, attempted_by = ?4
             WHERE id IN (
                 SELECT id FROM {p}jobs
                 WHERE state = 'available' AND queue = ?1 AND attempt < max_attempts
                 ORDER BY priority, scheduled_at, id
                 LIMIT ?2)
             RETURNING {FETCHED_COLUMNS}"
        );
    }
    let limit = if global_limit {
        format!(
            "max(0, min(?2, ?5 - (SELECT coalesce(sum(weight), 0) FROM {p}jobs WHERE state = 'executing' AND queue = ?1)))"
        )
    } else {
        "?2".to_string()
    };
    // A rate-limited fetch may take fewer rows (?7: the starts its window has room for) than slots.
    let rows = if most_rows { format!("min({limit}, ?7)") } else { limit.clone() };
    // The running sum in the same SELECT as the index scan: it streams in index order, and the
    // sums of the first rows are the same whatever follows them (a subquery under it took a
    // temporary B-tree to sort again).
    format!(
        "UPDATE {p}jobs SET state = 'executing', attempt = attempt + 1, attempted_at = ?3, attempted_by = ?4
         WHERE id IN (
             SELECT id FROM (
                 SELECT id, sum(min(weight, ?6)) OVER (ORDER BY priority, scheduled_at, id) AS slots
                 FROM {p}jobs
                 WHERE state = 'available' AND queue = ?1 AND attempt < max_attempts
                 ORDER BY priority, scheduled_at, id
                 LIMIT {rows})
             WHERE slots <= {limit})
         RETURNING {FETCHED_COLUMNS}"
    )
}

/// A [`claim_statement`] with ?1 to ?6 bound from the request and the claim stamp.
fn claim_query<'q>(
    sql: String,
    r: &FetchRequest<'q>,
    claim: i64,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    sqlx::query(AssertSqlSafe(sql))
        .bind(r.queue)
        .bind(i64::from(r.limit))
        .bind(claim)
        .bind(r.node)
        .bind(r.global_limit.map(i64::from))
        .bind(r.weight_cap())
}

const MOVE_BACK: &str = "state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'available' END,
     discarded_at = CASE WHEN attempt >= max_attempts THEN ?2 ELSE discarded_at END,
     errors = json_insert(errors, '$[#]', json_object('attempt', attempt, 'node', attempted_by, 'started_at', attempted_at, 'at', ?3,
         'error', 'rescued: node `' || coalesce(attempted_by, '?') || '` {why} while the job ran'))";

/// Results written per statement: 8 parameters each keeps a full chunk far below SQLite's default
/// limit of 32,766 parameters.
const ACKS_PER_STATEMENT: usize = 1024;

/// `acks` cut, in order, into runs of at most [`ACKS_PER_STATEMENT`] with no id twice: a row
/// joined to two results in one `UPDATE ... FROM` would take either, while results written one
/// after the other let the first win (the second finds the row no longer executing).
fn distinct_chunks(acks: &[Ack]) -> Vec<&[Ack]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut ids = std::collections::HashSet::new();
    for (i, ack) in acks.iter().enumerate() {
        if i - start == ACKS_PER_STATEMENT || !ids.insert(ack.id) {
            chunks.push(&acks[start..i]);
            start = i;
            ids.clear();
            ids.insert(ack.id);
        }
    }
    if start < acks.len() {
        chunks.push(&acks[start..]);
    }
    chunks
}

/// `queue`'s rate log (or with `partition`, that partition's) as stored (a JSON array of
/// milliseconds), inside the caller's IMMEDIATE transaction.
async fn read_rate_log(
    conn: &mut SqliteConnection,
    p: &str,
    queue: &str,
    partition: Option<&str>,
) -> Result<Vec<i64>> {
    let stored: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT starts FROM {p}rate_logs WHERE queue = ?1 AND key = ?2"
    )))
    .bind(queue)
    .bind(partition.unwrap_or(""))
    .fetch_optional(&mut *conn)
    .await?;
    match stored {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| Error::Unexpected(format!("the rate log of queue `{queue}` does not read: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// Stores `queue`'s rate log (or with `partition`, that partition's).
async fn write_rate_log(
    conn: &mut SqliteConnection,
    p: &str,
    queue: &str,
    partition: Option<&str>,
    log: &RateLog,
) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {p}rate_logs (queue, key, starts) VALUES (?1, ?3, ?2)
         ON CONFLICT (queue, key) DO UPDATE SET starts = excluded.starts"
    )))
    .bind(queue)
    .bind(serde_json::to_string(log.starts())?)
    .bind(partition.unwrap_or(""))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes the results in `acks` by one `UPDATE ... FROM (VALUES ...)`, each row only while it is
/// still under the claim the result belongs to (state, node, attempt and claim stamp), and
/// returns how many rows changed. One statement per batch instead of one per result: each
/// statement costs a hop to sqlx's worker thread for the connection, which dominated a burn-down.
async fn ack_chunk(
    conn: &mut SqliteConnection,
    p: &str,
    node: &str,
    acks: &[Ack],
    now: i64,
    at: &str,
) -> Result<u64> {
    if acks.iter().any(|a| matches!(a.kind, AckKind::Record { .. })) {
        // Completions with a result go by their own statements; the rest as usual (a copy, but
        // only of chunks that hold results).
        let (records, rest): (Vec<&Ack>, Vec<&Ack>) =
            acks.iter().partition(|a| matches!(a.kind, AckKind::Record { .. }));
        let rest: Vec<Ack> = rest.into_iter().cloned().collect();
        let mut recorded = 0;
        for group in crate::engine::ack_plan::record_groups(records) {
            recorded += record_chunk(conn, p, node, &group, now).await?;
        }
        let others =
            if rest.is_empty() { 0 } else { Box::pin(ack_chunk(conn, p, node, &rest, now, at)).await? };
        return Ok(recorded + others);
    }
    if acks.iter().all(|a| matches!(a.kind, AckKind::Complete)) {
        return complete_chunk(conn, p, node, acks, now).await;
    }
    // All results travel as one JSON array of rows, read back by `json_each`: one parameter
    // instead of eight per result. sqlx binds each parameter through a name lookup that SQLite
    // answers by a linear search of the statement's parameters, so binding 8,192 of them cost
    // half a burn-down's CPU (docs/benchmarks.md).
    let rows: Vec<_> = acks
        .iter()
        .map(|ack| {
            let plan = AckPlan::of(&ack.kind);
            (
                ack.id,
                plan.state.as_str(),
                plan.delay_ms(),
                plan.error,
                plan.refund_count(),
                ack.attempt,
                ack.claim,
                plan.stamp_column(),
            )
        })
        .collect();
    // The result's columns are named apart from the table's, so the statement's own columns
    // (`state`, `attempt`, `errors`) can stay unqualified.
    let sql = format!(
        "UPDATE {p}jobs SET
            state = r.new_state,
            scheduled_at = CASE WHEN r.delay IS NULL THEN scheduled_at ELSE ?2 + r.delay END,
            completed_at = CASE WHEN r.stamp = 'completed_at' THEN ?2 ELSE completed_at END,
            discarded_at = CASE WHEN r.stamp = 'discarded_at' THEN ?2 ELSE discarded_at END,
            cancelled_at = CASE WHEN r.stamp = 'cancelled_at' THEN ?2 ELSE cancelled_at END,
            errors = CASE WHEN r.error IS NULL THEN errors
                          ELSE json_insert(errors, '$[#]', json_object('attempt', attempt, 'node', attempted_by, 'started_at', attempted_at, 'at', ?3, 'error', r.error)) END,
            attempt = attempt - r.refund
         FROM (SELECT value ->> 0 AS job_id, value ->> 1 AS new_state, value ->> 2 AS delay, value ->> 3 AS error,
                      value ->> 4 AS refund, value ->> 5 AS of_attempt, value ->> 6 AS claim, value ->> 7 AS stamp
               FROM json_each(?4)) AS r
         WHERE {p}jobs.id = r.job_id AND state = 'executing' AND attempted_by = ?1 AND attempt = r.of_attempt
           AND (r.claim IS NULL OR coalesce(attempted_at, 0) = r.claim)"
    );
    let query =
        sqlx::query(AssertSqlSafe(sql)).bind(node).bind(now).bind(at).bind(serde_json::to_string(&rows)?);
    Ok(query.execute(&mut *conn).await?.rows_affected())
}

/// Completions that record a result: the completion, guarded as every result is, then the
/// results of exactly the rows it completed, in the write's transaction, so a result is never
/// written for a completion its guard refused (a stale run) and never missing for one that went
/// through.
async fn record_chunk(
    conn: &mut SqliteConnection,
    p: &str,
    node: &str,
    acks: &[&Ack],
    now: i64,
) -> Result<u64> {
    let rows: Vec<_> = acks
        .iter()
        .map(|ack| {
            let output = match &ack.kind {
                AckKind::Record { output } => Some(output),
                _ => None,
            };
            (ack.id, ack.attempt, ack.claim, output)
        })
        .collect();
    let rows = serde_json::to_string(&rows)?;
    let done: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "UPDATE {p}jobs SET state = 'completed', completed_at = ?2
         FROM (SELECT value ->> 0 AS job_id, value ->> 1 AS of_attempt, value ->> 2 AS claim FROM json_each(?3)) AS r
         WHERE {p}jobs.id = r.job_id AND state = 'executing' AND attempted_by = ?1 AND attempt = r.of_attempt
           AND (r.claim IS NULL OR coalesce(attempted_at, 0) = r.claim)
         RETURNING id"
    )))
    .bind(node)
    .bind(now)
    .bind(&rows)
    .fetch_all(&mut *conn)
    .await?;
    if done.is_empty() {
        return Ok(0);
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {p}results (job_id, output, recorded_at)
         SELECT value ->> 0, value -> 3, ?1 FROM json_each(?2)
         WHERE value ->> 0 IN (SELECT value FROM json_each(?3))
         ON CONFLICT (job_id) DO UPDATE SET output = excluded.output, recorded_at = excluded.recorded_at"
    )))
    .bind(now)
    .bind(&rows)
    .bind(serde_json::to_string(&done)?)
    .execute(&mut *conn)
    .await?;
    Ok(done.len() as u64)
}

/// [`ack_chunk`] for a chunk of completions only, the common case: the same guard, and only the
/// columns a completion sets (a third less time per row than the general statement, measured).
///
/// The jobs of one fetch share their claim stamp (and, mostly, their attempt), so a batch of
/// completions falls into a handful of claims. Each claim's rows go by one statement whose guard
/// is bound once and whose ids are a plain JSON array of numbers, the cheapest form for SQLite to
/// read; a batch of many claims (retries of many ages, say) goes by one statement over per-row
/// triples instead.
async fn complete_chunk(
    conn: &mut SqliteConnection,
    p: &str,
    node: &str,
    acks: &[Ack],
    now: i64,
) -> Result<u64> {
    let mut claims: Vec<(ClaimKey, Vec<i64>)> = Vec::new();
    for a in acks {
        if let Some(c) = claims.iter_mut().find(|c| c.0 == (a.attempt, a.claim)) {
            c.1.push(a.id);
        } else if claims.len() < STATEMENTS_PER_COMPLETION_BATCH {
            claims.push(((a.attempt, a.claim), vec![a.id]));
        } else {
            return complete_by_rows(conn, p, node, acks, now).await;
        }
    }
    let sql = format!(
        "UPDATE {p}jobs SET state = 'completed', completed_at = ?2
         WHERE id IN (SELECT value FROM json_each(?3)) AND state = 'executing' AND attempted_by = ?1
           AND attempt = ?4 AND (?5 IS NULL OR coalesce(attempted_at, 0) = ?5)"
    );
    let mut changed = 0;
    for ((attempt, claim), ids) in claims {
        let query = sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(node)
            .bind(now)
            .bind(serde_json::to_string(&ids)?)
            .bind(attempt)
            .bind(claim);
        changed += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(changed)
}

/// The claim a result names: the attempt and the claim stamp.
type ClaimKey = (u32, Option<i64>);

/// The most claims whose completions go by a statement each (see [`complete_chunk`]).
const STATEMENTS_PER_COMPLETION_BATCH: usize = 4;

/// [`complete_chunk`] for a batch of many claims: one statement, each row's guard beside its id.
async fn complete_by_rows(
    conn: &mut SqliteConnection,
    p: &str,
    node: &str,
    acks: &[Ack],
    now: i64,
) -> Result<u64> {
    let rows: Vec<_> = acks.iter().map(|a| (a.id, a.attempt, a.claim)).collect();
    let sql = format!(
        "UPDATE {p}jobs SET state = 'completed', completed_at = ?2
         FROM (SELECT value ->> 0 AS job_id, value ->> 1 AS of_attempt, value ->> 2 AS claim FROM json_each(?3)) AS r
         WHERE {p}jobs.id = r.job_id AND state = 'executing' AND attempted_by = ?1 AND attempt = r.of_attempt
           AND (r.claim IS NULL OR coalesce(attempted_at, 0) = r.claim)"
    );
    let query = sqlx::query(AssertSqlSafe(sql)).bind(node).bind(now).bind(serde_json::to_string(&rows)?);
    Ok(query.execute(&mut *conn).await?.rows_affected())
}

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Rows sqlx may buffer between its worker thread and the caller: more than one fetch returns
/// (at most the runtime's fetch batch, 1,000 by default).
const ROW_BUFFER: usize = 4096;

/// Opens a pool the way the engine wants it: WAL, a 30 s busy timeout, the file created if
/// missing. `sqlite::memory:` (or `sqlite://:memory:`) gives a private in-memory database held by
/// a single connection.
pub async fn connect(url: &str) -> Result<SqlitePool> {
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let opts = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .busy_timeout(Duration::from_secs(30))
        .journal_mode(if in_memory { SqliteJournalMode::Memory } else { SqliteJournalMode::Wal })
        // sqlx's worker thread hands rows over through a channel of this many (50 by default);
        // a fetch of a few hundred rows then stops the statement several times, mid-write, to
        // wait for the caller to read. A buffer larger than any fetch lets the statement run
        // through (measured: 1-6 % more burn-down, within the noise of one run).
        .row_buffer_size(ROW_BUFFER);
    let pool = if in_memory {
        // Every connection to :memory: is a new database: keep exactly one, forever.
        SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?
    } else {
        SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?
    };
    Ok(pool)
}

impl SqliteEngine {
    /// An engine for the instance named `schema` (its tables are `<schema>_jobs`, ...).
    pub async fn new(pool: SqlitePool, schema: &str) -> Result<Self> {
        validate_schema(schema)?;
        let file = database_file(&pool).await?;
        // Engines over in-memory databases each get a key of their own (see `wake`).
        let file = if file.is_empty() { wake::memory_key() } else { file };
        Ok(Self { pool, prefix: format!("{schema}_"), file, write_lock: Arc::new(Mutex::new(())) })
    }

    /// Takes the engine's write lock and a connection to write through: every write of the
    /// engine goes through one (see [`Write`]).
    async fn write(&self) -> Result<Write<'_>> {
        let lock = self.write_lock.lock().await;
        let conn = self.pool.acquire().await?;
        Ok(Write { conn, _lock: lock })
    }

    /// The pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Counts the (state, queue) rows a rescue moved and wakes the queues that got work.
    fn report_moved(&self, moved: Vec<(String, String)>) -> RescueReport {
        let total = moved.len() as u64;
        let rescued: Vec<String> = moved.into_iter().filter(|m| m.0 == "available").map(|m| m.1).collect();
        let report = RescueReport { rescued: rescued.len() as u64, discarded: total - rescued.len() as u64 };
        self.wake_for(rescued);
        report
    }

    fn wake_for(&self, queues: impl IntoIterator<Item = String>) {
        let signals: Vec<Signal> = queues.into_iter().map(Signal::Available).collect();
        wake::signal(&self.file, signals);
    }
}

/// The engine's one write path: its write lock, held while the connection it gives writes, so the
/// engine's own workers never fight each other for SQLite's write lock ("database is locked").
/// A write of several statements opens a transaction on it ([`Write::transaction`]). Everything
/// a write does goes through its connection: the pool of an in-memory database has only one.
/// Dropping it gives the connection back, then lets the next writer in.
struct Write<'a> {
    conn: PoolConnection<Sqlite>,
    _lock: MutexGuard<'a, ()>,
}

impl Write<'_> {
    /// A transaction on the write's connection (rolled back unless committed), begun IMMEDIATE:
    /// it takes SQLite's write lock at once, waiting out the busy timeout. A deferred one that
    /// reads first (`cancel_job` does) fails at once with "database is locked" when another
    /// connection, such as the application's own, commits between that read and its first write
    /// (seen in the clinic demo's CI run: a cancel while a job wrote the clinic's tables).
    async fn transaction(&mut self) -> Result<sqlx::Transaction<'_, Sqlite>> {
        Ok(sqlx::Connection::begin_with(&mut *self.conn, "BEGIN IMMEDIATE").await?)
    }
}

impl std::ops::Deref for Write<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Write<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

async fn database_file<'c, E: sqlx::Executor<'c, Database = sqlx::Sqlite>>(e: E) -> Result<String> {
    let file: Option<String> =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_optional(e)
            .await?;
    Ok(file.unwrap_or_default())
}

#[async_trait]
impl RuntimeOps for SqliteEngine {
    async fn publish_catalog(
        &self,
        code: &[crate::types::CronEntryWrite],
        workers: &[crate::types::WorkerRow],
    ) -> Result<()> {
        self.publish_catalog_rows(code, workers).await
    }

    async fn set_cron_error(&self, name: &str, error: Option<&str>) -> Result<()> {
        self.set_cron_error_row(name, error).await
    }

    async fn migrate(&self) -> Result<()> {
        let mut w = self.write().await?;
        migrate::migrate_on(&mut w, &self.prefix).await
    }

    async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>> {
        let mut w = self.write().await?;
        let mut tx = w.transaction().await?;
        let out = insert::insert_jobs(&mut tx, &self.prefix, jobs).await?;
        tx.commit().await?;
        drop(w);
        wake::signal(&self.file, insert::signals_for(&out));
        Ok(out)
    }

    async fn fetch(&self, r: &FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        let p = &self.prefix;
        // `r.after` is ignored: SQLite removes a row's old index entries when it changes, so
        // there is no prefix of dead entries for a cursor to skip.
        // One writer at a time, so counting executing rows for a global limit is exact.
        let claim = now_ms();
        let mut w = self.write().await?;
        let rows =
            claim_query(claim_statement(p, r.global_limit.is_some(), r.weight_cap() > 1, false), r, claim)
                .fetch_all(&mut *w)
                .await?;
        // Decoding (JSON parsing of the args) needs no lock: let the completer write meanwhile.
        drop(w);
        rows.iter().map(|row| row::fetched_job(row, r.queue, claim)).collect()
    }

    async fn fetch_rate_limited(&self, r: &FetchRequest<'_>, rate: RateLimit) -> Result<RateLimitedFetch> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        // IMMEDIATE: the write lock is held from here, across processes too, so the log read
        // is the latest and the instant taken after it only grows from fetch to fetch.
        let mut tx = w.transaction().await?;
        let claimed = std::time::Instant::now();
        let now = now_ms();
        let starts = read_rate_log(&mut tx, p, r.queue, None).await?;
        let mut log = RateLog::recent(starts, rate, now);
        // Rows (starts) the window has room for; the request's limit stays in slots.
        let room = log.room(rate);
        let mut rows = Vec::new();
        if room > 0 && r.limit > 0 {
            rows = claim_query(claim_statement(p, r.global_limit.is_some(), true, true), r, now)
                .bind(i64::from(room))
                .fetch_all(&mut *tx)
                .await?;
            if !rows.is_empty() {
                log.started(rows.len(), now);
                write_rate_log(&mut tx, p, r.queue, None, &log).await?;
            }
        }
        tx.commit().await?;
        drop(w);
        let jobs = rows.iter().map(|row| row::fetched_job(row, r.queue, now)).collect::<Result<Vec<_>>>()?;
        let clipped = room < r.limit && jobs.len() as u32 == room;
        let limited_for = if clipped { log.full_for(rate, now) } else { None };
        Ok(RateLimitedFetch { jobs, limited_for, claimed, stamp_ms: now })
    }

    async fn fetch_partitioned(
        &self,
        r: &FetchRequest<'_>,
        parts: PartitionRequest<'_>,
    ) -> Result<PartitionedFetch> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        // IMMEDIATE: the write lock is held from here, across processes too, so the counts of
        // executing jobs per partition stay as read until the claim commits.
        let mut tx = w.transaction().await?;
        let claimed_at = std::time::Instant::now();
        let claim = now_ms();
        // A rate limit for each partition: its logs, read as the walk meets them (ADR 25).
        let mut logs = parts.rate.map(|rate| partitioned::PartitionLogs::new(rate, claim));
        let mut rows = Vec::new();
        let mut partitions = Vec::new();
        let mut last_partition = None;
        let mut last_turn_left = 0;
        // As on PostgreSQL: from the cursor, then while a pass took something and left room,
        // again from the first partition; each pass counts the earlier ones' claims.
        let mut after = parts.after;
        let mut filled = 0u32;
        for _ in 0..crate::types::PARTITION_PASSES {
            let left = FetchRequest { limit: r.limit - filled, ..r.clone() };
            let (picked, last) =
                partitioned::pick(&mut tx, p, &left, PartitionRequest { after, ..parts }, logs.as_mut())
                    .await?;
            if let Some((key, left)) = last {
                last_partition = Some(key);
                last_turn_left = left;
            }
            let ids: Vec<i64> = picked.iter().map(|(id, _)| *id).collect();
            if !ids.is_empty() {
                let claimed = sqlx::query(AssertSqlSafe(format!(
                        "UPDATE {p}jobs SET state = 'executing', attempt = attempt + 1, attempted_at = ?1, attempted_by = ?2
                         WHERE id IN (SELECT value FROM json_each(?3)) AND state = 'available'
                         RETURNING {FETCHED_COLUMNS}"
                    )))
                    .bind(claim)
                    .bind(r.node)
                    .bind(serde_json::to_string(&ids)?)
                    .fetch_all(&mut *tx)
                    .await?;
                // Slots as the pick counted them (`FETCHED_COLUMNS` reads NULL as weight 1).
                let key_of: std::collections::HashMap<i64, Option<String>> = picked.into_iter().collect();
                let mut started = Vec::new();
                for row in &claimed {
                    let weight: Option<i64> = row.try_get(10)?;
                    filled += weight.unwrap_or(1).clamp(1, i64::from(r.weight_cap())) as u32;
                    let key = key_of.get(&row.try_get::<i64, _>(0)?).cloned().flatten();
                    started.extend(key.clone());
                    partitions.push(key);
                }
                if let Some(logs) = logs.as_mut() {
                    logs.started(&mut tx, p, r.queue, &started).await?;
                }
                rows.extend(claimed);
            }
            if (ids.is_empty() && after.is_none()) || filled >= r.limit {
                break;
            }
            after = None;
        }
        // A short fetch may have passed partitions with work whose windows were full.
        let window_opens_in = match logs.as_ref().filter(|_| filled < r.limit) {
            Some(logs) => logs.first_opens_in(&mut tx, p, r.queue).await?,
            None => None,
        };
        tx.commit().await?;
        drop(w);
        let jobs =
            rows.iter().map(|row| row::fetched_job(row, r.queue, claim)).collect::<Result<Vec<_>>>()?;
        let rated = logs.map(|_| RatedStamp { claimed: claimed_at, stamp_ms: claim });
        Ok(PartitionedFetch { jobs, last_partition, last_turn_left, partitions, rated, window_opens_in })
    }

    async fn refund_rate_starts(&self, queue: &str, partition: Option<&str>, stamps: &[i64]) -> Result<()> {
        if stamps.is_empty() {
            return Ok(());
        }
        let p = &self.prefix;
        let mut w = self.write().await?;
        let mut tx = w.transaction().await?;
        let mut log = RateLog::stored(read_rate_log(&mut tx, p, queue, partition).await?);
        log.refund(stamps);
        write_rate_log(&mut tx, p, queue, partition, &log).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn ack(&self, node: &str, acks: &[Ack]) -> Result<u64> {
        let now = now_ms();
        let at = Utc::now().to_rfc3339();
        let mut w = self.write().await?;
        let mut tx = w.transaction().await?;
        let mut changed = 0;
        for chunk in distinct_chunks(acks) {
            changed += ack_chunk(&mut tx, &self.prefix, node, chunk, now, &at).await?;
        }
        tx.commit().await?;
        drop(w);
        if wake::anyone_waits() {
            // The waiters of this process look at these jobs again (those whose result was
            // refused are still running, and the waiter finds that).
            let ids: Vec<i64> =
                acks.iter().filter(|a| AckPlan::of(&a.kind).state.is_final()).map(|a| a.id).collect();
            if !ids.is_empty() {
                wake::finished(&self.file, ids);
            }
        }
        Ok(changed)
    }

    async fn stage(&self, limit: u32) -> Result<StageReport> {
        let p = &self.prefix;
        let now = now_ms();
        let mut w = self.write().await?;
        let queues: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "UPDATE {p}jobs SET state = 'available'
             WHERE id IN (SELECT id FROM {p}jobs
                          WHERE state IN ('scheduled', 'retryable') AND scheduled_at <= ?1
                          ORDER BY scheduled_at LIMIT ?2)
             RETURNING queue"
        )))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *w)
        .await?;
        drop(w);
        let next: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT min(scheduled_at) FROM {p}jobs WHERE state IN ('scheduled', 'retryable') AND scheduled_at > ?1"
        )))
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let staged = queues.len() as u64;
        let mut distinct = queues;
        distinct.sort();
        distinct.dedup();
        self.wake_for(distinct.clone());
        Ok(StageReport {
            staged,
            queues: distinct,
            next_due_in: next.map(|t| Duration::from_millis((t - now_ms()).max(0) as u64)),
        })
    }

    async fn now(&self) -> Result<DateTime<Utc>> {
        Ok(Utc::now())
    }

    async fn heartbeat(&self, beat: &Heartbeat<'_>) -> Result<()> {
        let p = &self.prefix;
        let now = now_ms();
        let mut w = self.write().await?;
        // `connected_since` starts again after a gap longer than ?4 ms (see `RescueRequest`).
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {p}nodes (name, queues, started_at, heartbeat_at, connected_since) VALUES (?1, ?2, ?3, ?3, ?3)
             ON CONFLICT (name) DO UPDATE SET queues = excluded.queues, heartbeat_at = excluded.heartbeat_at,
                 connected_since = CASE WHEN {p}nodes.heartbeat_at < ?3 - ?4 THEN ?3 ELSE {p}nodes.connected_since END"
        )))
        .bind(beat.node)
        .bind(serde_json::Value::from(beat.queues.to_vec()).to_string())
        .bind(now)
        .bind(ms(beat.reconnect_gap))
        .execute(&mut *w)
        .await?;
        Ok(())
    }

    async fn remove_node(&self, node: &str) -> Result<()> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {p}nodes WHERE name = ?1")))
            .bind(node)
            .execute(&mut *w)
            .await?;
        Ok(())
    }

    async fn live_nodes(&self, ttl: Duration) -> Result<Vec<NodeRow>> {
        let p = &self.prefix;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT name, queues, started_at, heartbeat_at FROM {p}nodes WHERE heartbeat_at > ?1 ORDER BY name"
        )))
        .bind(now_ms() - ms(ttl))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let queues: String = r.try_get("queues")?;
                Ok(NodeRow {
                    name: r.try_get("name")?,
                    queues: serde_json::from_str(&queues).map_err(|e| Error::Unexpected(e.to_string()))?,
                    started_at: row::time(r.try_get("started_at")?)?,
                    heartbeat_at: row::time(r.try_get("heartbeat_at")?)?,
                })
            })
            .collect()
    }

    async fn lead(&self, node: &str, ttl: Duration) -> Result<bool> {
        let p = &self.prefix;
        let now = now_ms();
        let mut w = self.write().await?;
        let won: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "INSERT INTO {p}leader (id, node, elected_at, expires_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET
                 node = excluded.node,
                 expires_at = excluded.expires_at,
                 elected_at = CASE WHEN node = excluded.node THEN elected_at ELSE excluded.elected_at END
             WHERE node = excluded.node OR expires_at < ?2
             RETURNING node"
        )))
        .bind(node)
        .bind(now)
        .bind(now + ms(ttl))
        .fetch_optional(&mut *w)
        .await?;
        Ok(won.is_some())
    }

    async fn resign(&self, node: &str) -> Result<()> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        let gone = sqlx::query(AssertSqlSafe(format!("DELETE FROM {p}leader WHERE node = ?1")))
            .bind(node)
            .execute(&mut *w)
            .await?
            .rows_affected();
        drop(w);
        if gone > 0 {
            wake::signal(&self.file, [Signal::LeaderResigned]);
        }
        Ok(())
    }

    async fn leader(&self) -> Result<Option<String>> {
        let p = &self.prefix;
        Ok(sqlx::query_scalar(AssertSqlSafe(format!("SELECT node FROM {p}leader WHERE expires_at > ?1")))
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn rescue(&self, r: &RescueRequest<'_>) -> Result<RescueReport> {
        let p = &self.prefix;
        let now = now_ms();
        let cutoff = now - ms(r.node_ttl);
        let limit = r.limit;
        let at = Utc::now().to_rfc3339();
        let mut w = self.write().await?;
        let mut tx = w.transaction().await?;
        // Only a rescuer connected now, and for a whole TTL (see `RescueRequest`).
        let judge: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM {p}nodes WHERE name = ?1 AND heartbeat_at > ?2 AND connected_since <= ?3"
        )))
        .bind(r.rescuer)
        .bind(now - ms(r.reconnect_gap))
        .bind(cutoff)
        .fetch_one(&mut *tx)
        .await?;
        if judge == 0 {
            return Ok(RescueReport::default());
        }
        let back = MOVE_BACK.replace("{why}", "stopped heartbeating");
        let moved: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "UPDATE {p}jobs SET {back}
             WHERE id IN (
                 SELECT id FROM {p}jobs j WHERE state = 'executing'
                   AND NOT EXISTS (SELECT 1 FROM {p}nodes n WHERE n.name = j.attempted_by AND n.heartbeat_at > ?1)
                 LIMIT ?4)
             RETURNING state, queue"
        )))
        .bind(cutoff)
        .bind(now)
        .bind(&at)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {p}nodes WHERE heartbeat_at <= ?1")))
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        drop(w);
        Ok(self.report_moved(moved))
    }

    async fn release_node(&self, node: &str) -> Result<RescueReport> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        let back = MOVE_BACK.replace("{why}", "restarted");
        let moved: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "UPDATE {p}jobs SET {back}
             WHERE state = 'executing' AND attempted_by = ?1
             RETURNING state, queue"
        )))
        .bind(node)
        .bind(now_ms())
        .bind(Utc::now().to_rfc3339())
        .fetch_all(&mut *w)
        .await?;
        drop(w);
        Ok(self.report_moved(moved))
    }

    async fn executing(&self, node: &str) -> Result<Vec<ExecutingRow>> {
        let p = &self.prefix;
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT id, queue, coalesce(attempted_at, 0) FROM {p}jobs WHERE state = 'executing' AND attempted_by = ?1"
        )))
        .bind(node)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id, queue, claim)| ExecutingRow { id, queue, claim }).collect())
    }

    async fn hand_back(&self, request: &HandBack<'_>) -> Result<Vec<i64>> {
        let HandBack { node, claims, reason } = *request;
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let p = &self.prefix;
        // Pairs of [id, claim stamp]: only a row still under that very claim goes back.
        let ids_json = serde_json::to_string(&claims.iter().map(|(id, c)| [*id, *c]).collect::<Vec<_>>())?;
        let mut w = self.write().await?;
        let moved: Vec<(i64, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "UPDATE {p}jobs SET state = 'available', attempt = max(attempt - 1, 0),
                 errors = json_insert(errors, '$[#]', json_object('attempt', attempt, 'node', attempted_by, 'started_at', attempted_at, 'at', ?3, 'error', ?4))
             WHERE state = 'executing' AND attempted_by = ?1
               AND EXISTS (SELECT 1 FROM json_each(?2) c
                           WHERE json_extract(c.value, '$[0]') = id AND json_extract(c.value, '$[1]') = coalesce(attempted_at, 0))
             RETURNING id, queue"
        )))
        .bind(node)
        .bind(ids_json)
        .bind(Utc::now().to_rfc3339())
        .bind(reason)
        .fetch_all(&mut *w)
        .await?;
        drop(w);
        let queues: Vec<String> = moved.iter().map(|m| m.1.clone()).collect();
        self.wake_for(queues);
        Ok(moved.into_iter().map(|m| m.0).collect())
    }

    async fn prune(&self, retention: &Retention, limit: u32) -> Result<u64> {
        let p = &self.prefix;
        let now = now_ms();
        let mut w = self.write().await?;
        let done = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {p}jobs WHERE id IN (
                 SELECT id FROM {p}jobs
                 WHERE (state = 'completed' AND completed_at < ?1)
                    OR (state = 'cancelled' AND cancelled_at < ?2)
                    OR (state = 'discarded' AND discarded_at < ?3)
                 LIMIT ?4)"
        )))
        .bind(now - ms(retention.completed))
        .bind(now - ms(retention.cancelled))
        .bind(now - ms(retention.discarded))
        .bind(i64::from(limit))
        .execute(&mut *w)
        .await?;
        Ok(done.rows_affected())
    }

    async fn prune_rate_logs(&self) -> Result<u64> {
        // As on PostgreSQL (see its statement): a partition's log with no start inside its
        // queue's window and the longest guard (1 s).
        let p = &self.prefix;
        let mut w = self.write().await?;
        let done = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {p}rate_logs
             WHERE key <> ''
               AND NOT EXISTS (
                   SELECT 1 FROM json_each({p}rate_logs.starts)
                   WHERE value > ?1 - 1000 - coalesce((SELECT q.rate_window_ms FROM {p}queues q
                                                       WHERE q.name = {p}rate_logs.queue AND q.rate_per_partition), 0))"
        )))
        .bind(now_ms())
        .execute(&mut *w)
        .await?;
        Ok(done.rows_affected())
    }

    async fn vacuum_jobs(&self, _min_dead: u64) -> Result<Option<u64>> {
        // SQLite changes rows in place and reuses freed pages: there are no dead row versions.
        Ok(None)
    }

    async fn cron_last(&self, name: &str) -> Result<Option<DateTime<Utc>>> {
        let p = &self.prefix;
        let last: Option<i64> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT last_slot FROM {p}cron WHERE name = ?1")))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        last.map(row::time).transpose()
    }

    async fn cron_fire(&self, fire: CronFire<'_>) -> Result<bool> {
        let CronFire { name, expected, new_last, jobs } = fire;
        let p = &self.prefix;
        let mut w = self.write().await?;
        let mut tx = w.transaction().await?;
        // Write first, so this transaction holds the write lock before it reads.
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {p}cron (name, last_slot, fired_at) VALUES (?1, -1, ?2) ON CONFLICT (name) DO NOTHING"
        )))
        .bind(name)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let current: i64 =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT last_slot FROM {p}cron WHERE name = ?1")))
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
        let current = if current == -1 { None } else { Some(row::time(current)?) };
        if current != expected {
            return Ok(false);
        }
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {p}cron SET last_slot = ?2, fired_at = ?3 WHERE name = ?1"
        )))
        .bind(name)
        .bind(new_last.timestamp_millis())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let out = insert::insert_jobs(&mut tx, p, jobs).await?;
        if let Some(newest) = out.iter().map(|j| j.job.id).max() {
            sqlx::query(AssertSqlSafe(format!("UPDATE {p}cron SET last_job_id = ?2 WHERE name = ?1")))
                .bind(name)
                .bind(newest)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        drop(w);
        wake::signal(&self.file, insert::signals_for(&out));
        Ok(true)
    }

    async fn queue_settings(&self) -> Result<Vec<QueueSettings>> {
        let p = &self.prefix;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT name, paused, concurrency, global_limit, rate_limit, rate_window_ms, rate_per_partition, partition_limit,
                    sequence_policy
             FROM {p}queues ORDER BY name"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(queue_settings_row).collect()
    }

    async fn step_output(&self, job: i64, name: &str) -> Result<Option<serde_json::Value>> {
        let p = &self.prefix;
        let text: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT output FROM {p}steps WHERE job_id = ?1 AND name = ?2"
        )))
        .bind(job)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        text.map(|t| serde_json::from_str(&t).map_err(Error::from)).transpose()
    }

    async fn record_step(&self, step: &crate::types::StepRecord<'_>) -> Result<bool> {
        let mut w = self.write().await?;
        record_step_on(&mut w, &self.prefix, step).await
    }

    async fn begin_job_tx(&self) -> Result<crate::transaction::OpenTx> {
        // Not through the engine's write lock: the job holds this transaction while its own code
        // runs, and the engine's writers wait on SQLite's lock (the busy timeout) meanwhile.
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(crate::transaction::OpenTx { conn: crate::transaction::Conn::Sqlite(tx), slot: None })
    }

    async fn complete_in_tx(&self, tx: &mut crate::Transaction, done: &TxCompletion<'_>) -> Result<bool> {
        let p = &self.prefix;
        let now = now_ms();
        let conn = lite(tx)?;
        let completed: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "UPDATE {p}jobs SET state = 'completed', completed_at = ?5
             WHERE id = ?1 AND state = 'executing' AND attempted_by = ?2 AND attempt = ?3
               AND coalesce(attempted_at, 0) = ?4
             RETURNING id"
        )))
        .bind(done.job)
        .bind(done.node)
        .bind(i64::from(done.attempt))
        .bind(done.claim)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
        if completed.is_none() {
            return Ok(false);
        }
        if let Some(output) = done.output {
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {p}results (job_id, output, recorded_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (job_id) DO UPDATE SET output = excluded.output, recorded_at = excluded.recorded_at"
            )))
            .bind(done.job)
            .bind(output.to_string())
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        Ok(true)
    }

    async fn step_output_in_tx(
        &self,
        tx: &mut crate::Transaction,
        job: i64,
        name: &str,
    ) -> Result<Option<serde_json::Value>> {
        let p = &self.prefix;
        let text: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT output FROM {p}steps WHERE job_id = ?1 AND name = ?2"
        )))
        .bind(job)
        .bind(name)
        .fetch_optional(lite(tx)?)
        .await?;
        text.map(|t| serde_json::from_str(&t).map_err(Error::from)).transpose()
    }

    async fn record_step_in_tx(
        &self,
        tx: &mut crate::Transaction,
        step: &crate::types::StepRecord<'_>,
    ) -> Result<bool> {
        record_step_on(lite(tx)?, &self.prefix, step).await
    }

    fn completed_in_tx(&self, job: i64) {
        if wake::anyone_waits() {
            wake::finished(&self.file, vec![job]);
        }
    }

    async fn get_job(&self, id: i64) -> Result<Option<JobRow>> {
        let p = &self.prefix;
        let cols = row::JOB_COLUMNS;
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {cols} FROM {p}jobs WHERE id = ?1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row::job_row).transpose()
    }

    async fn cancel_job(&self, id: i64) -> Result<Option<JobState>> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        let mut tx = w.transaction().await?;
        let old: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT state FROM {p}jobs WHERE id = ?1 AND state NOT IN ('completed', 'discarded', 'cancelled')"
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(old) = old else { return Ok(None) };
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {p}jobs SET state = 'cancelled', cancelled_at = ?2,
                 errors = json_insert(errors, '$[#]', json_object('attempt', attempt, 'node', attempted_by, 'started_at', attempted_at, 'at', ?3, 'error', 'cancelled by request'))
             WHERE id = ?1"
        )))
        .bind(id)
        .bind(now_ms())
        .bind(Utc::now().to_rfc3339())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // Only runtimes of this process can be told to stop a running job.
        wake::signal(&self.file, [Signal::CancelJob(id)]);
        wake::finished(&self.file, vec![id]);
        Ok(Some(old.parse().map_err(Error::Unexpected)?))
    }
}

#[async_trait]
impl Notifications for SqliteEngine {
    async fn listen(&self, signals: mpsc::UnboundedSender<Signal>, stop: CancellationToken) {
        let id = wake::register(&self.file, signals);
        stop.cancelled().await;
        wake::unregister(&self.file, id);
    }

    async fn watch(&self, id: i64) -> Result<Option<JobState>> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        let state: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "UPDATE {p}jobs SET awaited = CASE WHEN state IN ('completed', 'discarded', 'cancelled') THEN awaited ELSE 1 END
             WHERE id = ?1 RETURNING state"
        )))
        .bind(id)
        .fetch_optional(&mut *w)
        .await?;
        state.map(|s| s.parse().map_err(Error::Unexpected)).transpose()
    }

    async fn listen_finished(
        &self,
        finished: mpsc::UnboundedSender<Vec<i64>>,
        ready: tokio::sync::oneshot::Sender<()>,
        stop: CancellationToken,
    ) {
        let id = wake::register_finished(&self.file, finished);
        let _ = ready.send(());
        stop.cancelled().await;
        wake::unregister_finished(&self.file, id);
    }
}

/// The tables of one setting per queue and partition (`partition_weights`,
/// `sequence_policies`): `(queue, key, <column>, updated_at)`, no row being the default.
impl SqliteEngine {
    /// Stores `value` as `partition`'s setting in `queue`, or with `None` deletes its row.
    async fn set_partition_setting<T>(
        &self,
        table: &str,
        column: &str,
        queue: &str,
        partition: &str,
        value: Option<T>,
    ) -> Result<()>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send,
    {
        let p = &self.prefix;
        let query = match value {
            Some(value) => sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {p}{table} (queue, key, {column}, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (queue, key) DO UPDATE SET {column} = excluded.{column}, updated_at = excluded.updated_at"
            )))
            .bind(queue)
            .bind(partition)
            .bind(value)
            .bind(now_ms()),
            None => sqlx::query(AssertSqlSafe(format!("DELETE FROM {p}{table} WHERE queue = ?1 AND key = ?2")))
                .bind(queue)
                .bind(partition),
        };
        let mut w = self.write().await?;
        query.execute(&mut *w).await?;
        Ok(())
    }

    /// The rows of `queue` (of every queue with `None`), by queue and key.
    async fn partition_settings<T>(
        &self,
        table: &str,
        column: &str,
        queue: Option<&str>,
    ) -> Result<Vec<(String, String, T)>>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send + Unpin,
    {
        let p = &self.prefix;
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT queue, key, {column} FROM {p}{table} WHERE ?1 IS NULL OR queue = ?1 ORDER BY queue, key"
        )))
        .bind(queue)
        .fetch_all(&self.pool)
        .await?)
    }
}

#[async_trait]
impl Administration for SqliteEngine {
    async fn run_query(
        &self,
        m: &crate::types::JobMatch,
        op: crate::types::QueryOp,
    ) -> Result<crate::types::QueryOutput> {
        // Through the write lock: most operations change rows.
        let schema = self.prefix.strip_suffix('_').unwrap_or(&self.prefix).to_string();
        let mut w = self.write().await?;
        <sqlx::Sqlite as crate::engine::QueryDatabase>::run_query(&mut w, &schema, m, op).await
    }

    async fn cron_entries(&self) -> Result<Vec<crate::types::CronEntryRow>> {
        self.cron_entry_rows().await
    }

    async fn save_cron_entry(&self, entry: &crate::types::CronEntryWrite) -> Result<()> {
        self.save_cron_row(entry).await
    }

    async fn remove_cron_entry(&self, name: &str) -> Result<bool> {
        self.remove_cron_row(name).await
    }

    async fn pause_cron_entry(&self, name: &str, paused: bool) -> Result<bool> {
        self.pause_cron_row(name, paused).await
    }

    async fn run_cron_entry(&self, name: &str) -> Result<Option<InsertedJob>> {
        self.run_cron_row(name).await
    }

    async fn workers(&self) -> Result<Vec<crate::types::WorkerRow>> {
        self.worker_rows().await
    }

    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<JobRow>> {
        let p = &self.prefix;
        let cols = row::JOB_COLUMNS;
        let listing = sqlx::query(AssertSqlSafe(format!(
            "SELECT {cols} FROM {p}jobs WHERE {FILTER} AND (?7 IS NULL OR id < ?7) ORDER BY id DESC LIMIT ?8"
        )));
        let rows = bind_filter!(listing, filter)
            .bind(page.before_id)
            .bind(i64::from(page.limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row::job_row).collect()
    }

    async fn retry_job(&self, id: i64) -> Result<bool> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        let queue: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "UPDATE {p}jobs SET state = 'available', max_attempts = max(max_attempts, attempt + 1),
                 scheduled_at = ?2, discarded_at = NULL, cancelled_at = NULL
             WHERE id = ?1 AND state IN ('discarded', 'cancelled')
             RETURNING queue"
        )))
        .bind(id)
        .bind(now_ms())
        .fetch_optional(&mut *w)
        .await?;
        drop(w);
        let retried = queue.is_some();
        self.wake_for(queue);
        Ok(retried)
    }

    async fn retry_jobs(&self, filter: &JobFilter) -> Result<u64> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        let retry = sqlx::query_scalar(AssertSqlSafe(format!(
            "UPDATE {p}jobs SET state = 'available', max_attempts = max(max_attempts, attempt + 1),
                 scheduled_at = ?7, discarded_at = NULL, cancelled_at = NULL
             WHERE state IN ('discarded', 'cancelled') AND {FILTER}
             RETURNING queue"
        )));
        let queues: Vec<String> = bind_filter!(retry, filter).bind(now_ms()).fetch_all(&mut *w).await?;
        drop(w);
        let n = queues.len() as u64;
        let mut distinct = queues;
        distinct.sort();
        distinct.dedup();
        self.wake_for(distinct);
        Ok(n)
    }

    async fn delete_job(&self, id: i64) -> Result<bool> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        let done =
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {p}jobs WHERE id = ?1 AND state <> 'executing'")))
                .bind(id)
                .execute(&mut *w)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn update_queue_settings(&self, update: &SettingsUpdate<'_>) -> Result<QueueSettings> {
        let SettingsUpdate { queue, change, allow_unknown } = *update;
        change.check(queue)?;
        let p = &self.prefix;
        let limit = |value: Option<Option<u32>>| (value.is_some(), value.flatten().map(i64::from));
        let (set_concurrency, concurrency) = limit(change.concurrency);
        let (set_global, global) = limit(change.global_limit);
        let (set_partition, partition) = limit(change.partition_limit);
        // One statement on the engine's one write path, so concurrent changes of different fields
        // cannot undo each other; a field the change does not name keeps its stored value.
        // Nothing is written for an unknown queue unless ?9 allows it.
        let mut w = self.write().await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {p}queues (name, paused, concurrency, global_limit, rate_limit, rate_window_ms, rate_per_partition,
                                    partition_limit, sequence_policy, updated_at)
             SELECT ?1, CASE WHEN ?2 THEN ?3 END, CASE WHEN ?4 THEN ?5 END, CASE WHEN ?6 THEN ?7 END,
                    CASE WHEN ?10 THEN ?11 END, CASE WHEN ?10 THEN ?12 END, ?10 AND coalesce(?15, 0),
                    CASE WHEN ?13 THEN ?14 END, CASE WHEN ?16 THEN ?17 END, ?8
             WHERE ?9
                OR EXISTS (SELECT 1 FROM {p}queues WHERE name = ?1)
                OR EXISTS (SELECT 1 FROM {p}nodes, json_each({p}nodes.queues) WHERE json_each.value = ?1)
                OR EXISTS (SELECT 1 FROM {p}jobs WHERE queue = ?1)
             ON CONFLICT (name) DO UPDATE SET
                 paused = CASE WHEN ?2 THEN excluded.paused ELSE paused END,
                 concurrency = CASE WHEN ?4 THEN excluded.concurrency ELSE concurrency END,
                 global_limit = CASE WHEN ?6 THEN excluded.global_limit ELSE global_limit END,
                 rate_limit = CASE WHEN ?10 THEN excluded.rate_limit ELSE rate_limit END,
                 rate_window_ms = CASE WHEN ?10 THEN excluded.rate_window_ms ELSE rate_window_ms END,
                 rate_per_partition = CASE WHEN ?10 THEN excluded.rate_per_partition ELSE rate_per_partition END,
                 partition_limit = CASE WHEN ?13 THEN excluded.partition_limit ELSE partition_limit END,
                 sequence_policy = CASE WHEN ?16 THEN excluded.sequence_policy ELSE sequence_policy END,
                 updated_at = excluded.updated_at
             RETURNING name, paused, concurrency, global_limit, rate_limit, rate_window_ms, rate_per_partition,
                       partition_limit, sequence_policy"
        )))
        .bind(queue)
        .bind(change.paused.is_some())
        .bind(change.paused)
        .bind(set_concurrency)
        .bind(concurrency)
        .bind(set_global)
        .bind(global)
        .bind(now_ms())
        .bind(allow_unknown)
        .bind(change.rate_limit.is_some())
        .bind(change.rate_limit.flatten().map(|r| i64::from(r.limit)))
        .bind(change.rate_limit.flatten().map(|r| r.window_ms()))
        .bind(set_partition)
        .bind(partition)
        .bind(change.rate_limit.flatten().map(|r| r.per_partition))
        .bind(change.sequence.is_some())
        .bind(change.sequence.flatten().map(SequencePolicy::as_str))
        .fetch_optional(&mut *w)
        .await?;
        drop(w);
        let Some(row) = row else { return Err(Error::UnknownQueue(queue.to_string())) };
        wake::signal(&self.file, [Signal::QueueSettings(queue.to_string())]);
        queue_settings_row(&row)
    }

    async fn set_partition_weight(&self, queue: &str, partition: &str, weight: Option<u32>) -> Result<()> {
        crate::types::check_partition_weight(partition, weight)?;
        self.set_partition_setting("partition_weights", "weight", queue, partition, weight.map(i64::from))
            .await
    }

    async fn partition_weights(&self, queue: Option<&str>) -> Result<Vec<PartitionWeight>> {
        let rows = self.partition_settings::<i64>("partition_weights", "weight", queue).await?;
        Ok(rows
            .into_iter()
            .map(|(queue, partition, weight)| PartitionWeight { queue, partition, weight: weight as u32 })
            .collect())
    }

    async fn set_sequence_policy(
        &self,
        queue: &str,
        partition: &str,
        policy: Option<SequencePolicy>,
    ) -> Result<()> {
        crate::insert::check_partition_key(partition)?;
        let policy = policy.map(SequencePolicy::as_str);
        self.set_partition_setting("sequence_policies", "policy", queue, partition, policy).await
    }

    async fn sequence_policies(&self, queue: Option<&str>) -> Result<Vec<SequenceOverride>> {
        let rows = self.partition_settings::<String>("sequence_policies", "policy", queue).await?;
        rows.into_iter()
            .map(|(queue, partition, policy)| {
                Ok(SequenceOverride { queue, partition, policy: policy.parse()? })
            })
            .collect()
    }

    async fn throughput(&self, window: Duration, queue: Option<&str>) -> Result<Vec<MinuteStats>> {
        let p = &self.prefix;
        let now = Utc::now();
        let since = now - chrono::Duration::from_std(window).unwrap_or_default();
        let rows: Vec<(String, Option<i64>, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT state, completed_at, errors FROM {p}jobs WHERE attempted_at >= ?1 AND (?2 IS NULL OR queue = ?2)"
        )))
        .bind(since.timestamp_millis())
        .bind(queue)
        .fetch_all(&self.pool)
        .await?;
        // One node's worth of rows: bucketing here keeps the SQL plain.
        let minute = |t: DateTime<Utc>| t.timestamp().div_euclid(60);
        let first = minute(since);
        let mut out: Vec<MinuteStats> = (first..=minute(now))
            .map(|m| MinuteStats {
                minute: DateTime::from_timestamp(m * 60, 0).unwrap_or(now),
                completed: 0,
                failed: 0,
            })
            .collect();
        for (state, completed_at, errors) in rows {
            if let (true, Some(ms)) = (state == "completed", completed_at) {
                let t = row::time(ms)?;
                if t >= since
                    && let Some(slot) = out.get_mut((minute(t) - first) as usize)
                {
                    slot.completed += 1;
                }
            }
            let errors: Vec<serde_json::Value> = serde_json::from_str(&errors).unwrap_or_default();
            for e in errors {
                if let Some(t) = e["at"].as_str().and_then(|a| DateTime::parse_from_rfc3339(a).ok()) {
                    let t = t.with_timezone(&Utc);
                    if t >= since
                        && let Some(slot) = out.get_mut((minute(t) - first) as usize)
                    {
                        slot.failed += 1;
                    }
                }
            }
        }
        Ok(out)
    }

    async fn get_result(&self, id: i64) -> Result<Option<serde_json::Value>> {
        let p = &self.prefix;
        let text: Option<String> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT output FROM {p}results WHERE job_id = ?1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        text.map(|t| serde_json::from_str(&t).map_err(Error::from)).transpose()
    }

    async fn count_by_state(&self) -> Result<Vec<StateCount>> {
        let p = &self.prefix;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT queue, state, count(*) AS n FROM {p}jobs GROUP BY queue, state ORDER BY queue, state"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| StateCount::from_stored(r.try_get("queue")?, r.try_get("state")?, r.try_get("n")?))
            .collect()
    }
}

impl Engine for SqliteEngine {
    fn name(&self) -> &'static str {
        <sqlx::Sqlite as InsertDatabase>::ENGINE
    }

    fn schema(&self) -> &str {
        self.prefix.strip_suffix('_').unwrap_or(&self.prefix)
    }
}

#[async_trait]
impl TestSupport for SqliteEngine {
    async fn make_due(&self, queue: &str) -> Result<u64> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        let done = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {p}jobs SET state = 'available', scheduled_at = ?2
             WHERE queue = ?1 AND state IN ('scheduled', 'retryable')"
        )))
        .bind(queue)
        .bind(now_ms())
        .execute(&mut *w)
        .await?;
        Ok(done.rows_affected())
    }

    async fn claim(&self, ids: &[i64], node: &str) -> Result<Vec<FetchedJob>> {
        let p = &self.prefix;
        let claim = now_ms();
        let mut w = self.write().await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {p}jobs SET state = 'executing', attempt = attempt + 1, attempted_at = ?3, attempted_by = ?2
             WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'available' AND attempt < max_attempts
             RETURNING {FETCHED_COLUMNS}, queue"
        )))
        .bind(serde_json::Value::from(ids.to_vec()).to_string())
        .bind(node)
        .bind(claim)
        .fetch_all(&mut *w)
        .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let queue: String = row.try_get("queue")?;
            jobs.push(row::fetched_job(row, &queue, claim)?);
        }
        jobs.sort_by_key(|j| ids.iter().position(|i| *i == j.id));
        Ok(jobs)
    }
}

/// One row of `queues`.
fn queue_settings_row(r: &sqlx::sqlite::SqliteRow) -> Result<QueueSettings> {
    Ok(QueueSettings {
        name: r.try_get("name")?,
        paused: r.try_get::<Option<bool>, _>("paused")?,
        concurrency: r.try_get::<Option<i64>, _>("concurrency")?.map(|n| n as u32),
        global_limit: r.try_get::<Option<i64>, _>("global_limit")?.map(|n| n as u32),
        rate_limit: RateLimit::from_columns(
            r.try_get("rate_limit")?,
            r.try_get("rate_window_ms")?,
            r.try_get("rate_per_partition")?,
        ),
        partition_limit: r.try_get::<Option<i64>, _>("partition_limit")?.map(|n| n as u32),
        sequence: r.try_get::<Option<String>, _>("sequence_policy")?.map(|p| p.parse()).transpose()?,
    })
}

/// The WHERE clause of listings: ?1 states as a JSON array, ?2 queue, ?3 worker, ?4 tag, ?5 args
/// pattern, ?6 id.
const FILTER: &str = "(json_array_length(?1) = 0 OR state IN (SELECT value FROM json_each(?1)))
     AND (?2 IS NULL OR queue = ?2)
     AND (?3 IS NULL OR worker = ?3)
     AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(tags) WHERE value = ?4))
     AND (?5 IS NULL OR id = ?6 OR args LIKE ?5 ESCAPE '\\')";

/// Binds ?1-?6 of [`FILTER`] on any kind of query.
macro_rules! bind_filter {
    ($query:expr, $filter:expr) => {
        $query
            .bind(
                serde_json::Value::from($filter.states.iter().map(|s| s.as_str()).collect::<Vec<_>>())
                    .to_string(),
            )
            .bind(&$filter.queue)
            .bind(&$filter.worker)
            .bind(&$filter.tag)
            .bind($filter.search.as_deref().map(crate::engine::common::like_pattern))
            .bind($filter.search.as_deref().and_then(|t| t.trim().parse::<i64>().ok()))
    };
}
use bind_filter;

impl InsertDatabase for sqlx::Sqlite {
    const ENGINE: &'static str = "sqlite";

    async fn insert_jobs<'c, A>(db: A, schema: &str, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>>
    where
        A: sqlx::Acquire<'c, Database = Self> + Send,
    {
        validate_schema(schema)?;
        let prefix = format!("{schema}_");
        // A transaction (a savepoint inside the caller's), so a bulk insert is all or nothing.
        let mut tx = db.begin().await?;
        let out = insert::insert_jobs(&mut tx, &prefix, jobs).await?;
        let file = database_file(&mut *tx).await?;
        tx.commit().await?;
        // Inside the caller's transaction this is before their commit: a woken runtime may find
        // nothing yet and will see the job on its next poll.
        wake::signal(&file, insert::signals_for(&out));
        Ok(out)
    }
}

impl crate::engine::QueryDatabase for sqlx::Sqlite {
    async fn run_query<'a>(
        conn: &'a mut SqliteConnection,
        schema: &'a str,
        m: &'a crate::types::JobMatch,
        op: crate::types::QueryOp,
    ) -> Result<crate::types::QueryOutput> {
        query::run(conn, schema, m, op).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::AckKind;

    fn ack(id: i64) -> Ack {
        Ack { id, attempt: 1, claim: None, kind: AckKind::Complete }
    }

    #[test]
    fn results_for_one_row_go_to_different_statements_in_their_order() {
        let acks: Vec<Ack> = [1, 2, 1, 3, 2].into_iter().map(ack).collect();
        let ids: Vec<Vec<i64>> =
            distinct_chunks(&acks).iter().map(|c| c.iter().map(|a| a.id).collect()).collect();
        assert_eq!(ids, vec![vec![1, 2], vec![1, 3, 2]]);
    }

    #[test]
    fn a_long_batch_is_cut_at_the_statement_size() {
        let acks: Vec<Ack> = (0..2500).map(ack).collect();
        let sizes: Vec<usize> = distinct_chunks(&acks).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![ACKS_PER_STATEMENT, ACKS_PER_STATEMENT, 2500 - 2 * ACKS_PER_STATEMENT]);
        assert!(distinct_chunks(&[]).is_empty());
    }
}
