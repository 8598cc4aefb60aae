//! The PostgreSQL engine: every statement jobsmith runs on PostgreSQL.
//!
//! Statements are formatted once per schema (see `sql::Statements`) so two isolated instances
//! can share one database; all values travel as bind parameters.

mod cron;
mod migrate;
mod row;
mod sql;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backoff::reconnect_delay as backoff;
use crate::engine::ack_plan::AckPlan;
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

use crate::engine::common::validate_schema;
use crate::engine::common::{like_pattern, ms};
pub use migrate::{MIGRATIONS, migrate};
use sql::{FETCHED_COLUMNS, JOB_COLUMNS};

/// The PostgreSQL engine over a pool, for one schema.
#[derive(Debug, Clone)]
pub struct PostgresEngine {
    pool: PgPool,
    schema: String,
    sql: std::sync::Arc<sql::Statements>,
    /// Jobs' own transactions each hold a pool connection while the job runs: at most this many
    /// at once, so the pool always keeps [`KEPT_FOR_THE_RUNTIME`] connections for the runtime's
    /// heartbeats, fetches and acks (a node whose heartbeat waits for a connection looks dead).
    job_tx_slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// Set once this engine made sure the jobs table has planner statistics, before its first
    /// partitioned fetch (see `fetch_partitioned`).
    has_statistics: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Connections of the pool that jobs' own transactions never take (see `job_tx_slots`).
const KEPT_FOR_THE_RUNTIME: u32 = 3;

impl PostgresEngine {
    /// An engine for `schema` (see [`crate::insert::DEFAULT_SCHEMA`]).
    pub fn new(pool: PgPool, schema: &str) -> Result<Self> {
        validate_schema(schema)?;
        let max = pool.options().get_max_connections();
        let slots = max.saturating_sub(KEPT_FOR_THE_RUNTIME).max(1) as usize;
        Ok(Self {
            pool,
            schema: schema.to_string(),
            sql: std::sync::Arc::new(sql::Statements::new(schema)),
            job_tx_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(slots)),
            has_statistics: Default::default(),
        })
    }

    /// Takes `queue`'s advisory lock for the rest of `tx`: one fetcher of a queue with a global,
    /// rate or partition limit at a time across all nodes, and the rate log's writers with them.
    async fn lock_queue(&self, tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, queue: &str) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("jobsmith.{}.queue.{}", self.schema, queue))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// [`PostgresEngine::lock_queue`], and for the rest of the transaction prepared statements
    /// run their generic plan (`plan_cache_mode`, reset at the transaction's end). The
    /// partitioned fetch is planned once so: with its limits' parameters often NULL, a custom
    /// plan (folding them) looks cheaper than the generic one, so the server kept planning the
    /// statement afresh at every fetch (1.3-2.5 ms of planning, as long as running it; the
    /// partitioned burn-down at 1,000 partitions fell to 0.66x when the rate-limit terms were
    /// added). The generic plan runs as fast (measured with `EXPLAIN ANALYZE`).
    async fn lock_queue_generic_plans(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        queue: &str,
    ) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1)), set_config('plan_cache_mode', 'force_generic_plan', true)")
            .bind(format!("jobsmith.{}.queue.{}", self.schema, queue))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

/// A claim stamp (microseconds since the epoch) as the claim's time in RFC 3339 with every
/// microsecond, which the result statements compare with `attempted_at`.
fn claim_time(claim: Option<i64>) -> serde_json::Value {
    claim
        .and_then(DateTime::from_timestamp_micros)
        .map_or(serde_json::Value::Null, |t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into())
}

/// The input of a result statement: the ids, and each one's values in a JSON object keyed by id
/// (see `ack_completed` in `sql.rs`). A second result for an id already here is left out, so the
/// first wins, as when each result had its own statement.
#[derive(Default)]
struct AckInput {
    ids: Vec<i64>,
    guard: serde_json::Map<String, serde_json::Value>,
}

impl AckInput {
    fn push(&mut self, id: i64, values: serde_json::Value) {
        if let serde_json::map::Entry::Vacant(e) = self.guard.entry(id.to_string()) {
            e.insert(values);
            self.ids.push(id);
        }
    }

    /// A completion: [attempt, claim].
    fn completed(&mut self, ack: &Ack) {
        self.push(ack.id, serde_json::json!([ack.attempt, claim_time(ack.claim)]));
    }

    /// A completion with its result: [attempt, claim, result].
    fn recorded(&mut self, ack: &Ack, output: &serde_json::Value) {
        self.push(ack.id, serde_json::json!([ack.attempt, claim_time(ack.claim), output]));
    }

    /// Any result: [state, delay in ms, error, refund, attempt, claim, stamp column].
    fn general(&mut self, ack: &Ack) {
        let plan = AckPlan::of(&ack.kind);
        let values = serde_json::json!([
            plan.state.as_str(),
            plan.delay_ms(),
            plan.error,
            plan.refund_count(),
            ack.attempt,
            claim_time(ack.claim),
            plan.stamp_column(),
        ]);
        self.push(ack.id, values);
    }

    async fn write(self, pool: &sqlx::PgPool, sql: &str, node: &str) -> Result<u64> {
        if self.ids.is_empty() {
            return Ok(0);
        }
        Ok(sqlx::query(AssertSqlSafe(sql.to_string()))
            .bind(&self.ids)
            .bind(serde_json::Value::Object(self.guard))
            .bind(node)
            .execute(pool)
            .await?
            .rows_affected())
    }
}

/// Records a finished step while its run still holds the job (see `RuntimeOps::record_step`).
async fn record_step_on(
    conn: &mut sqlx::PgConnection,
    s: &str,
    step: &crate::types::StepRecord<'_>,
) -> Result<bool> {
    let kept: Option<i32> = sqlx::query_scalar(AssertSqlSafe(format!(
        "INSERT INTO {s}.steps (job_id, name, output)
         SELECT $1, $2, $3 WHERE EXISTS (
             SELECT 1 FROM {s}.jobs
             WHERE id = $1 AND state = 'executing' AND attempted_by = $4 AND attempt = $5
             FOR SHARE)
         ON CONFLICT (job_id, name) DO UPDATE SET output = EXCLUDED.output, recorded_at = now()
         RETURNING 1"
    )))
    .bind(step.job)
    .bind(step.name)
    .bind(step.output)
    .bind(step.node)
    .bind(step.attempt as i32)
    .fetch_optional(conn)
    .await?;
    Ok(kept.is_some())
}

/// The PostgreSQL connection of a job's transaction.
fn pg(tx: &mut crate::Transaction) -> Result<&mut sqlx::PgConnection> {
    let engine = tx.engine().name();
    tx.postgres().ok_or_else(|| {
        Error::Unexpected(format!("a job's transaction on `{engine}` reached the PostgreSQL engine"))
    })
}

#[async_trait]
impl RuntimeOps for PostgresEngine {
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
        migrate(&self.pool, &self.schema).await
    }

    async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>> {
        <sqlx::Postgres as InsertDatabase>::insert_jobs(&self.pool, &self.schema, jobs).await
    }

    async fn fetch(&self, r: &FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        // The statement and its arguments: queue, limit, node, [global limit], [cursor], weight cap.
        // Without a global limit and with every job counted as 1, no running sum of weights.
        let unweighted = r.global_limit.is_none() && r.weight_cap() == 1;
        let sql = match (r.global_limit, r.after, r.relaxed_commit) {
            (None, after, relaxed) if unweighted => {
                &self.sql.fetch_unweighted[usize::from(after.is_some()) + 2 * usize::from(relaxed)]
            }
            (None, None, false) => &self.sql.fetch,
            (None, Some(_), false) => &self.sql.fetch_after,
            (Some(_), None, false) => &self.sql.fetch_limited,
            (Some(_), Some(_), false) => &self.sql.fetch_limited_after,
            (None, None, true) => &self.sql.fetch_relaxed[0],
            (None, Some(_), true) => &self.sql.fetch_relaxed[1],
            (Some(_), None, true) => &self.sql.fetch_relaxed[2],
            (Some(_), Some(_), true) => &self.sql.fetch_relaxed[3],
        };
        let mut query =
            sqlx::query(AssertSqlSafe(sql.clone())).bind(r.queue).bind(i64::from(r.limit)).bind(r.node);
        if let Some(global) = r.global_limit {
            query = query.bind(i64::from(global));
        }
        if let Some(after) = r.after {
            query = query.bind(i16::from(after.priority)).bind(after.scheduled_at).bind(after.id);
        }
        if !unweighted {
            query = query.bind(r.weight_cap());
        }
        let rows = match r.global_limit {
            None => query.fetch_all(&self.pool).await?,
            Some(_) => {
                let mut tx = self.pool.begin().await?;
                self.lock_queue(&mut tx, r.queue).await?;
                let rows = query.fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows
            }
        };
        rows.iter().map(row::fetched_job).collect()
    }

    async fn fetch_rate_limited(&self, r: &FetchRequest<'_>, rate: RateLimit) -> Result<RateLimitedFetch> {
        let mut tx = self.pool.begin().await?;
        // The lock the global limit takes too: one fetcher of the queue at a time, so the log read
        // below (a snapshot taken after the lock) is the latest and no other start slips in.
        self.lock_queue(&mut tx, r.queue).await?;
        // Before the statement that stamps the claim is sent, after the lock is held: never later
        // than the stamp, however long this task waits for the answer.
        let claimed = std::time::Instant::now();
        let read = sqlx::query(AssertSqlSafe(self.sql.rate_log_read.clone()))
            .bind(r.queue)
            .bind(None::<&str>)
            .fetch_one(&mut *tx)
            .await?;
        let now: i64 = read.try_get("now_ms")?;
        let mut log = RateLog::recent(read.try_get("starts")?, rate, now);
        // Rows (starts) the window has room for; the request's limit stays in slots.
        let room = log.room(rate);
        let mut jobs = Vec::new();
        if room > 0 && r.limit > 0 {
            let at = DateTime::<Utc>::from_timestamp_millis(now)
                .ok_or_else(|| Error::Unexpected(format!("the server's clock reads {now} ms")))?;
            let mut query = sqlx::query(AssertSqlSafe(
                self.sql.fetch_rated[usize::from(r.global_limit.is_some())].clone(),
            ))
            .bind(r.queue)
            .bind(i64::from(r.limit))
            .bind(r.node);
            if let Some(global) = r.global_limit {
                query = query.bind(i64::from(global));
            }
            let rows = query.bind(at).bind(r.weight_cap()).bind(i64::from(room)).fetch_all(&mut *tx).await?;
            jobs = rows.iter().map(row::fetched_job).collect::<Result<Vec<_>>>()?;
            if !jobs.is_empty() {
                log.started(jobs.len(), now);
                sqlx::query(AssertSqlSafe(self.sql.rate_log_write.clone()))
                    .bind(r.queue)
                    .bind(log.starts())
                    .bind(None::<&str>)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        // Short because of the limit (not because the queue ran dry): say for how long.
        let clipped = room < r.limit && jobs.len() as u32 == room;
        let limited_for = if clipped { log.full_for(rate, now) } else { None };
        Ok(RateLimitedFetch { jobs, limited_for, claimed, stamp_ms: now })
    }

    async fn fetch_partitioned(
        &self,
        r: &FetchRequest<'_>,
        p: PartitionRequest<'_>,
    ) -> Result<PartitionedFetch> {
        // A jobs table never analyzed (a new install, autovacuum yet to run) has no statistics:
        // the planner then guesses a handful of rows and walks the partitions through the plain
        // fetch index, filtering every available row per partition (measured: 120 ms a fetch at
        // 20,000 jobs, 5 ms with statistics). So once per engine: analyze it if it never was.
        if !self.has_statistics.load(std::sync::atomic::Ordering::Relaxed) {
            let never: Option<bool> = sqlx::query_scalar(AssertSqlSafe(self.sql.never_analyzed.clone()))
                .fetch_optional(&self.pool)
                .await?;
            if never == Some(true) {
                sqlx::query(AssertSqlSafe(format!("ANALYZE {}.jobs", self.schema)))
                    .execute(&self.pool)
                    .await?;
            }
            self.has_statistics.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let mut tx = self.pool.begin().await?;
        // The lock the global limit takes too: one fetcher of the queue at a time, so the counts
        // of executing jobs per partition (and the partitions' rate logs) are the latest when the
        // statement reads them.
        self.lock_queue_generic_plans(&mut tx, r.queue).await?;
        // With a rate limit for each partition: the claim's instant and stamp, taken once the
        // lock is held, as in `fetch_rate_limited`.
        let stamp = match p.rate {
            Some(_) => {
                let claimed = std::time::Instant::now();
                let now: i64 =
                    sqlx::query_scalar("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint")
                        .fetch_one(&mut *tx)
                        .await?;
                Some(RatedStamp { claimed, stamp_ms: now })
            }
            None => None,
        };
        let stamp_at = stamp
            .map(|s| {
                DateTime::<Utc>::from_timestamp_millis(s.stamp_ms)
                    .ok_or_else(|| Error::Unexpected(format!("the server's clock reads {} ms", s.stamp_ms)))
            })
            .transpose()?;
        let since = match (p.rate, stamp) {
            (Some(rate), Some(s)) => Some(s.stamp_ms - rate.kept_for_ms()),
            _ => None,
        };
        let mut jobs = Vec::new();
        let mut partitions = Vec::new();
        // Where the fetch ended: the partition of the last job of a partition in turn order (of
        // the last pass that took any), and how many heads of its turn it had left.
        let mut last: Option<((i64, i32, i32, i64), String, u32)> = None;
        let mut filled = 0u32;
        let cap = r.weight_cap();
        // Passes share out what partitions with less than their share left; each sees the
        // earlier ones' claims, as the same transaction's.
        for pass in 0..crate::types::PARTITION_PASSES {
            let rows = sqlx::query(AssertSqlSafe(self.sql.fetch_partitioned.clone()))
                .bind(r.queue)
                .bind(r.limit.saturating_sub(filled).min(i32::MAX as u32) as i32)
                .bind(r.node)
                .bind(p.limit.map(|n| n.min(i32::MAX as u32) as i32))
                .bind(p.after)
                .bind(r.global_limit.map(|n| n.min(i32::MAX as u32) as i32))
                .bind(crate::types::UNPARTITIONED_LOOKAHEAD as i64)
                .bind(cap)
                .bind(p.rate.map(|rate| rate.limit as i32))
                .bind(since)
                .bind(stamp_at)
                // The cursor's turn is resumed once, by the first pass (as on SQLite).
                .bind(p.resume.filter(|_| pass == 0).map(|n| n.min(i32::MAX as u32) as i32))
                .bind(p.sequence.map(SequencePolicy::as_str))
                .fetch_all(&mut *tx)
                .await?;
            // Starts per partition of this pass, for the partitions' logs.
            let mut started: std::collections::BTreeMap<String, i32> = Default::default();
            let mut last_of_pass: Option<((i64, i32, i32, i64), String, u32)> = None;
            for row in &rows {
                let key: Option<String> = row.try_get("partition_key")?;
                if let Some(key) = &key {
                    // Counted only for the partitions' rate logs.
                    if stamp.is_some() {
                        *started.entry(key.clone()).or_default() += 1;
                    }
                    // Turn, walk order, then the head's place in its partition's turn.
                    let place = (
                        row.try_get("locked_turn")?,
                        row.try_get("locked_lap")?,
                        row.try_get("locked_ord")?,
                        row.try_get("locked_rn")?,
                    );
                    if last_of_pass.as_ref().is_none_or(|(at, _, _)| place > *at) {
                        let left: i64 = row.try_get("locked_turn_left")?;
                        last_of_pass = Some((place, key.clone(), left.max(0) as u32));
                    }
                }
                let job = row::fetched_job(row)?;
                filled += u32::from(job.weight).min(cap as u32);
                jobs.push(job);
                partitions.push(key);
            }
            if let (Some(stamp), Some(since), false) = (stamp, since, started.is_empty()) {
                // Logged before the next pass, which reads the logs again in this transaction.
                let (keys, counts): (Vec<String>, Vec<i32>) = started.into_iter().unzip();
                sqlx::query(AssertSqlSafe(self.sql.partition_rate_log_add.clone()))
                    .bind(r.queue)
                    .bind(stamp.stamp_ms)
                    .bind(keys)
                    .bind(counts)
                    .bind(since)
                    .execute(&mut *tx)
                    .await?;
            }
            if last_of_pass.is_some() {
                last = last_of_pass;
            }
            if rows.is_empty() || filled >= r.limit {
                break;
            }
        }
        // A short fetch may have passed partitions with work whose windows were full: say when
        // the first opens, so the producer looks then rather than at the next poll.
        let mut window_opens_in = None;
        if let (Some(rate), Some(stamp), Some(since), true) = (p.rate, stamp, since, filled < r.limit) {
            let oldest: Option<i64> =
                sqlx::query_scalar(AssertSqlSafe(self.sql.partition_window_opens.clone()))
                    .bind(r.queue)
                    .bind(since)
                    .bind(rate.limit.min(i32::MAX as u32) as i32)
                    .fetch_one(&mut *tx)
                    .await?;
            window_opens_in = oldest
                .map(|t| Duration::from_millis((t + rate.kept_for_ms() - stamp.stamp_ms).max(1) as u64));
        }
        tx.commit().await?;
        let (last_partition, last_turn_left) = match last {
            Some((_, key, left)) => (Some(key), left),
            None => (None, 0),
        };
        Ok(PartitionedFetch {
            jobs,
            last_partition,
            last_turn_left,
            partitions,
            rated: stamp,
            window_opens_in,
        })
    }

    async fn refund_rate_starts(&self, queue: &str, partition: Option<&str>, stamps: &[i64]) -> Result<()> {
        if stamps.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        // The fetch's lock: its read-modify-write of the log cannot overwrite this one.
        self.lock_queue(&mut tx, queue).await?;
        let read = sqlx::query(AssertSqlSafe(self.sql.rate_log_read.clone()))
            .bind(queue)
            .bind(partition)
            .fetch_one(&mut *tx)
            .await?;
        let mut log = RateLog::stored(read.try_get("starts")?);
        log.refund(stamps);
        sqlx::query(AssertSqlSafe(self.sql.rate_log_write.clone()))
            .bind(queue)
            .bind(log.starts())
            .bind(partition)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn ack(&self, node: &str, acks: &[Ack]) -> Result<u64> {
        // Completions (nearly all results) go through their own statement (see `ack_completed`),
        // everything else through the general one.
        let mut completed = AckInput::default();
        let mut records = Vec::new();
        let mut other = AckInput::default();
        for ack in acks {
            match &ack.kind {
                AckKind::Complete | AckKind::Committed => completed.completed(ack),
                AckKind::Record { .. } => records.push(ack),
                _ => other.general(ack),
            }
        }
        let mut written = completed.write(&self.pool, &self.sql.ack_completed, node).await?;
        for group in crate::engine::ack_plan::record_groups(records) {
            let mut recorded = AckInput::default();
            for ack in group {
                if let AckKind::Record { output } = &ack.kind {
                    recorded.recorded(ack, output);
                }
            }
            written += recorded.write(&self.pool, &self.sql.ack_recorded, node).await?;
        }
        Ok(written + other.write(&self.pool, &self.sql.ack, node).await?)
    }

    async fn stage(&self, limit: u32) -> Result<StageReport> {
        let row = sqlx::query(AssertSqlSafe(self.sql.stage.clone()))
            .bind(i64::from(limit))
            .bind(&self.sql.channel)
            .fetch_one(&self.pool)
            .await?;
        let staged: i64 = row.try_get("staged")?;
        let queues: Option<Vec<String>> = row.try_get("queues")?;
        let next_ms: Option<f64> = row.try_get("next_due_ms")?;
        Ok(StageReport {
            staged: staged as u64,
            queues: queues.unwrap_or_default(),
            next_due_in: next_ms.map(|m| Duration::from_secs_f64(m.max(0.0) / 1000.0)),
        })
    }

    async fn now(&self) -> Result<DateTime<Utc>> {
        Ok(sqlx::query_scalar("SELECT now()").fetch_one(&self.pool).await?)
    }

    async fn heartbeat(&self, beat: &Heartbeat<'_>) -> Result<()> {
        sqlx::query(AssertSqlSafe(self.sql.heartbeat.clone()))
            .bind(beat.node)
            .bind(beat.queues)
            .bind(ms(beat.reconnect_gap))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn remove_node(&self, node: &str) -> Result<()> {
        sqlx::query(AssertSqlSafe(self.sql.remove_node.clone())).bind(node).execute(&self.pool).await?;
        Ok(())
    }

    async fn live_nodes(&self, ttl: Duration) -> Result<Vec<NodeRow>> {
        let rows = sqlx::query(AssertSqlSafe(self.sql.live_nodes.clone()))
            .bind(ms(ttl))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(NodeRow {
                    name: r.try_get("name")?,
                    queues: r.try_get("queues")?,
                    started_at: r.try_get("started_at")?,
                    heartbeat_at: r.try_get("heartbeat_at")?,
                })
            })
            .collect()
    }

    async fn lead(&self, node: &str, ttl: Duration) -> Result<bool> {
        let won: Option<String> = sqlx::query_scalar(AssertSqlSafe(self.sql.lead.clone()))
            .bind(node)
            .bind(ms(ttl))
            .fetch_optional(&self.pool)
            .await?;
        Ok(won.is_some())
    }

    async fn resign(&self, node: &str) -> Result<()> {
        sqlx::query(AssertSqlSafe(self.sql.resign.clone()))
            .bind(node)
            .bind(&self.sql.channel)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn leader(&self) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(AssertSqlSafe(self.sql.leader.clone())).fetch_optional(&self.pool).await?)
    }

    async fn rescue(&self, r: &RescueRequest<'_>) -> Result<RescueReport> {
        let row = sqlx::query(AssertSqlSafe(self.sql.rescue.clone()))
            .bind(ms(r.node_ttl))
            .bind(i64::from(r.limit))
            .bind(&self.sql.channel)
            .bind(r.rescuer)
            .bind(ms(r.reconnect_gap))
            .fetch_one(&self.pool)
            .await?;
        rescue_report(&row)
    }

    async fn release_node(&self, node: &str) -> Result<RescueReport> {
        let row = sqlx::query(AssertSqlSafe(self.sql.release_node.clone()))
            .bind(node)
            .bind(&self.sql.channel)
            .fetch_one(&self.pool)
            .await?;
        rescue_report(&row)
    }

    async fn executing(&self, node: &str) -> Result<Vec<ExecutingRow>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(AssertSqlSafe(self.sql.executing.clone()))
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
        let (ids, stamps): (Vec<i64>, Vec<i64>) = claims.iter().copied().unzip();
        Ok(sqlx::query_scalar(AssertSqlSafe(self.sql.hand_back.clone()))
            .bind(node)
            .bind(ids)
            .bind(stamps)
            .bind(reason)
            .bind(&self.sql.channel)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn prune(&self, retention: &Retention, limit: u32) -> Result<u64> {
        let done = sqlx::query(AssertSqlSafe(self.sql.prune.clone()))
            .bind(ms(retention.completed))
            .bind(ms(retention.cancelled))
            .bind(ms(retention.discarded))
            .bind(i64::from(limit))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn prune_rate_logs(&self) -> Result<u64> {
        let done = sqlx::query(AssertSqlSafe(self.sql.prune_rate_logs.clone())).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    async fn vacuum_jobs(&self, min_dead: u64) -> Result<Option<u64>> {
        let dead: Option<i64> = sqlx::query_scalar(AssertSqlSafe(self.sql.dead_rows.clone()))
            .fetch_optional(&self.pool)
            .await?
            .flatten();
        let dead = dead.unwrap_or(0).max(0) as u64;
        if dead < min_dead {
            return Ok(None);
        }
        // The simple protocol: VACUUM runs outside any transaction block. A role that does not
        // own the table gets a warning from the server and nothing happens, which is no error.
        sqlx::raw_sql(AssertSqlSafe(self.sql.vacuum.clone())).execute(&self.pool).await?;
        Ok(Some(dead))
    }

    async fn cron_last(&self, name: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(sqlx::query_scalar(AssertSqlSafe(self.sql.cron_last.clone()))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn cron_fire(&self, fire: CronFire<'_>) -> Result<bool> {
        let CronFire { name, expected, new_last, jobs } = fire;
        let mut tx = self.pool.begin().await?;
        let current: Option<DateTime<Utc>> = sqlx::query_scalar(AssertSqlSafe(self.sql.cron_lock.clone()))
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if current != expected {
            return Ok(false);
        }
        let recorded = if current.is_none() {
            sqlx::query(AssertSqlSafe(self.sql.cron_first.clone()))
                .bind(name)
                .bind(new_last)
                .execute(&mut *tx)
                .await?
        } else {
            sqlx::query(AssertSqlSafe(self.sql.cron_update.clone()))
                .bind(name)
                .bind(new_last)
                .execute(&mut *tx)
                .await?
        };
        if recorded.rows_affected() != 1 {
            // Another node recorded the entry's first slot at the same moment.
            return Ok(false);
        }
        if !jobs.is_empty() {
            let inserted = insert::insert_jobs(&mut *tx, &self.schema, jobs).await?;
            if let Some(newest) = inserted.iter().map(|j| j.job.id).max() {
                Self::record_cron_job(&mut tx, &self.schema, name, newest).await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn queue_settings(&self) -> Result<Vec<QueueSettings>> {
        let rows = sqlx::query(AssertSqlSafe(self.sql.queue_settings.clone())).fetch_all(&self.pool).await?;
        rows.iter().map(queue_settings_row).collect()
    }

    async fn step_output(&self, job: i64, name: &str) -> Result<Option<serde_json::Value>> {
        let s = &self.schema;
        Ok(sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT output FROM {s}.steps WHERE job_id = $1 AND name = $2"
        )))
        .bind(job)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn record_step(&self, step: &crate::types::StepRecord<'_>) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        record_step_on(&mut conn, &self.schema, step).await
    }

    async fn begin_job_tx(&self) -> Result<crate::transaction::OpenTx> {
        let slot = self.job_tx_slots.clone().acquire_owned().await.expect("the semaphore is never closed");
        let tx = self.pool.begin().await?;
        Ok(crate::transaction::OpenTx { conn: crate::transaction::Conn::Postgres(tx), slot: Some(slot) })
    }

    async fn complete_in_tx(&self, tx: &mut crate::Transaction, done: &TxCompletion<'_>) -> Result<bool> {
        let s = &self.schema;
        let claim = DateTime::from_timestamp_micros(done.claim);
        // The guard of the batched acks, and the result of exactly the row it completed. The
        // row stays locked until the job's transaction ends, so a rescue or a cancel waits for it
        // and then finds the row completed (or, after a rollback, still executing).
        let completed: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "WITH done AS (
                UPDATE {s}.jobs SET state = 'completed', completed_at = now()
                WHERE id = $1 AND state = 'executing' AND attempted_by = $2 AND attempt = $3
                  AND attempted_at = $4
                RETURNING id
             ), kept AS (
                INSERT INTO {s}.results (job_id, output)
                SELECT id, $5 FROM done WHERE $5::jsonb IS NOT NULL
                ON CONFLICT (job_id) DO UPDATE SET output = EXCLUDED.output, recorded_at = now()
             )
             SELECT count(*) FROM done"
        )))
        .bind(done.job)
        .bind(done.node)
        .bind(done.attempt as i32)
        .bind(claim)
        .bind(done.output)
        .fetch_one(pg(tx)?)
        .await?;
        Ok(completed == 1)
    }

    async fn step_output_in_tx(
        &self,
        tx: &mut crate::Transaction,
        job: i64,
        name: &str,
    ) -> Result<Option<serde_json::Value>> {
        let s = &self.schema;
        Ok(sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT output FROM {s}.steps WHERE job_id = $1 AND name = $2"
        )))
        .bind(job)
        .bind(name)
        .fetch_optional(pg(tx)?)
        .await?)
    }

    async fn record_step_in_tx(
        &self,
        tx: &mut crate::Transaction,
        step: &crate::types::StepRecord<'_>,
    ) -> Result<bool> {
        record_step_on(pg(tx)?, &self.schema, step).await
    }

    async fn get_job(&self, id: i64) -> Result<Option<JobRow>> {
        let row =
            sqlx::query(AssertSqlSafe(self.sql.get_job.clone())).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(row::job_row).transpose()
    }

    async fn cancel_job(&self, id: i64) -> Result<Option<JobState>> {
        let old: Option<String> = sqlx::query_scalar(AssertSqlSafe(self.sql.cancel.clone()))
            .bind(id)
            .bind(&self.sql.channel)
            .fetch_optional(&self.pool)
            .await?;
        old.map(|s| s.parse().map_err(crate::error::Error::Unexpected)).transpose()
    }
}

#[async_trait]
impl Notifications for PostgresEngine {
    async fn listen(&self, signals: mpsc::UnboundedSender<Signal>, stop: CancellationToken) {
        let mut failures = 0u32;
        while !stop.is_cancelled() {
            // A fresh listener after any error: a terminated backend can leave the old one unusable.
            let mut listener = match PgListener::connect_with(&self.pool).await {
                Ok(mut l) => match l.listen(&self.sql.channel).await {
                    Ok(()) => l,
                    Err(e) => {
                        tracing::warn!(target: "jobsmith", error = %e, "jobsmith listener could not LISTEN; retrying");
                        failures += 1;
                        sleep_or_stop(backoff(failures), &stop).await;
                        continue;
                    }
                },
                Err(e) => {
                    tracing::warn!(target: "jobsmith", error = %e, "jobsmith listener could not connect; retrying");
                    failures += 1;
                    sleep_or_stop(backoff(failures), &stop).await;
                    continue;
                }
            };
            if failures > 0 {
                // Notifications sent while we were away are lost: make everyone look.
                let _ = signals.send(Signal::Resync);
            }
            failures = 0;
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return,
                    n = listener.try_recv() => n,
                };
                match next {
                    Ok(Some(n)) => {
                        if let Some(signal) = parse_payload(n.payload())
                            && signals.send(signal).is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => {
                        tracing::warn!(target: "jobsmith", "jobsmith listener lost its connection; reconnecting");
                        failures += 1;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(target: "jobsmith", error = %e, "jobsmith listener failed; reconnecting");
                        failures += 1;
                        break;
                    }
                }
            }
            sleep_or_stop(backoff(failures), &stop).await;
        }
    }

    async fn watch(&self, id: i64) -> Result<Option<JobState>> {
        let s = &self.schema;
        // Two statements, mark then read: a result that commits after the mark sees it (and the
        // trigger announces the job); one that committed before is what the read, a statement
        // of its own with a snapshot taken after the mark, sees.
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {s}.jobs SET awaited = true
             WHERE id = $1 AND NOT awaited AND state NOT IN ('completed', 'discarded', 'cancelled')"
        )))
        .bind(id)
        .execute(&self.pool)
        .await?;
        let state: Option<String> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT state::text FROM {s}.jobs WHERE id = $1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        state.map(|s| s.parse().map_err(Error::Unexpected)).transpose()
    }

    async fn listen_finished(
        &self,
        finished: mpsc::UnboundedSender<Vec<i64>>,
        ready: tokio::sync::oneshot::Sender<()>,
        stop: CancellationToken,
    ) {
        let channel = format!("{}_finished", self.schema);
        let mut ready = Some(ready);
        let mut failures = 0u32;
        while !stop.is_cancelled() {
            let listener = match PgListener::connect_with(&self.pool).await {
                Ok(mut l) => match l.listen(&channel).await {
                    Ok(()) => Some(l),
                    Err(e) => {
                        tracing::warn!(target: "jobsmith", error = %e, "jobsmith waiters could not LISTEN; retrying");
                        None
                    }
                },
                Err(e) => {
                    tracing::warn!(target: "jobsmith", error = %e, "jobsmith waiters could not connect; retrying");
                    None
                }
            };
            let Some(mut listener) = listener else {
                failures += 1;
                sleep_or_stop(backoff(failures), &stop).await;
                continue;
            };
            if let Some(ready) = ready.take() {
                let _ = ready.send(());
            }
            failures = 0;
            // Every waiter looks again after each (re)LISTEN: announcements sent before it, or
            // while the connection was away, are lost.
            if finished.send(Vec::new()).is_err() {
                return;
            }
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return,
                    n = listener.try_recv() => n,
                };
                match next {
                    Ok(Some(n)) => {
                        if let Ok(id) = n.payload().parse::<i64>()
                            && finished.send(vec![id]).is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => {
                        tracing::warn!(target: "jobsmith", "jobsmith waiters lost their listener; reconnecting");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(target: "jobsmith", error = %e, "jobsmith waiters' listener failed; reconnecting");
                        break;
                    }
                }
            }
            failures += 1;
            sleep_or_stop(backoff(failures), &stop).await;
        }
    }
}

/// The tables of one setting per queue and partition (`partition_weights`,
/// `sequence_policies`): `(queue, key, <column>, updated_at)`, no row being the default.
impl PostgresEngine {
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
        T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        let s = &self.schema;
        let query = match value {
            Some(value) => sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {s}.{table} (queue, key, {column}) VALUES ($1, $2, $3)
                 ON CONFLICT (queue, key) DO UPDATE SET {column} = EXCLUDED.{column}, updated_at = now()"
            )))
            .bind(queue)
            .bind(partition)
            .bind(value),
            None => {
                sqlx::query(AssertSqlSafe(format!("DELETE FROM {s}.{table} WHERE queue = $1 AND key = $2")))
                    .bind(queue)
                    .bind(partition)
            }
        };
        query.execute(&self.pool).await?;
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
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
    {
        let s = &self.schema;
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT queue, key, {column} FROM {s}.{table} WHERE $1::text IS NULL OR queue = $1 ORDER BY queue, key"
        )))
        .bind(queue)
        .fetch_all(&self.pool)
        .await?)
    }
}

#[async_trait]
impl Administration for PostgresEngine {
    async fn run_query(
        &self,
        m: &crate::types::JobMatch,
        op: crate::types::QueryOp,
    ) -> Result<crate::types::QueryOutput> {
        let mut conn = self.pool.acquire().await?;
        <sqlx::Postgres as crate::engine::QueryDatabase>::run_query(&mut conn, &self.schema, m, op).await
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
        let s = &self.schema;
        let listing = sqlx::query(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM {s}.jobs WHERE {FILTER} AND ($7::bigint IS NULL OR id < $7)
             ORDER BY id DESC LIMIT $8"
        )));
        let rows = bind_filter!(listing, filter)
            .bind(page.before_id)
            .bind(i64::from(page.limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row::job_row).collect()
    }

    async fn retry_job(&self, id: i64) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(self.sql.retry.clone()))
            .bind(id)
            .bind(&self.sql.channel)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    async fn retry_jobs(&self, filter: &JobFilter) -> Result<u64> {
        let s = &self.schema;
        let retry = sqlx::query_scalar(AssertSqlSafe(format!(
            "WITH upd AS (
                UPDATE {s}.jobs SET state = 'available', max_attempts = GREATEST(max_attempts, attempt + 1),
                    scheduled_at = now(), discarded_at = NULL, cancelled_at = NULL
                WHERE state IN ('discarded', 'cancelled') AND {FILTER}
                RETURNING queue
            ), notified AS (
                SELECT pg_notify($7, 'a:' || queue) FROM (SELECT DISTINCT queue FROM upd) q
            )
            SELECT (SELECT count(*) FROM upd) + 0 * (SELECT count(*) FROM notified)"
        )));
        let n: i64 = bind_filter!(retry, filter).bind(&self.sql.channel).fetch_one(&self.pool).await?;
        Ok(n as u64)
    }

    async fn delete_job(&self, id: i64) -> Result<bool> {
        let s = &self.schema;
        let done = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {s}.jobs WHERE id = $1 AND state <> 'executing'"
        )))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn update_queue_settings(&self, update: &SettingsUpdate<'_>) -> Result<QueueSettings> {
        let SettingsUpdate { queue, change, allow_unknown } = *update;
        change.check(queue)?;
        let limit = |value: Option<Option<u32>>| (value.is_some(), value.flatten().map(|n| n as i32));
        let (set_concurrency, concurrency) = limit(change.concurrency);
        let (set_global, global) = limit(change.global_limit);
        let (set_partition, partition) = limit(change.partition_limit);
        let row = sqlx::query(AssertSqlSafe(self.sql.update_queue_settings.clone()))
            .bind(queue)
            .bind(change.paused.is_some())
            .bind(change.paused)
            .bind(set_concurrency)
            .bind(concurrency)
            .bind(set_global)
            .bind(global)
            .bind(allow_unknown)
            .bind(&self.sql.channel)
            .bind(change.rate_limit.is_some())
            .bind(change.rate_limit.flatten().map(|r| r.limit as i32))
            .bind(change.rate_limit.flatten().map(|r| r.window_ms()))
            .bind(set_partition)
            .bind(partition)
            .bind(change.rate_limit.flatten().map(|r| r.per_partition))
            .bind(change.sequence.is_some())
            .bind(change.sequence.flatten().map(SequencePolicy::as_str))
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => queue_settings_row(&row),
            None => Err(Error::UnknownQueue(queue.to_string())),
        }
    }

    async fn set_partition_weight(&self, queue: &str, partition: &str, weight: Option<u32>) -> Result<()> {
        crate::types::check_partition_weight(partition, weight)?;
        self.set_partition_setting("partition_weights", "weight", queue, partition, weight.map(|w| w as i32))
            .await
    }

    async fn partition_weights(&self, queue: Option<&str>) -> Result<Vec<PartitionWeight>> {
        let rows = self.partition_settings::<i32>("partition_weights", "weight", queue).await?;
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
        let s = &self.schema;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "WITH since AS (SELECT now() - $1 * interval '1 millisecond' AS t),
             minutes AS (
                SELECT generate_series(date_trunc('minute', (SELECT t FROM since)), date_trunc('minute', now()),
                                       interval '1 minute') AS minute
             ), done AS (
                SELECT date_trunc('minute', completed_at) AS minute, count(*) AS n FROM {s}.jobs
                WHERE state = 'completed' AND completed_at >= (SELECT t FROM since)
                  AND ($2::text IS NULL OR queue = $2) GROUP BY 1
             ), failed AS (
                SELECT date_trunc('minute', (e->>'at')::timestamptz) AS minute, count(*) AS n
                FROM {s}.jobs j, unnest(j.errors) e
                WHERE j.attempted_at >= (SELECT t FROM since) AND (e->>'at')::timestamptz >= (SELECT t FROM since)
                  AND ($2::text IS NULL OR j.queue = $2)
                GROUP BY 1
             )
             SELECT m.minute, coalesce(d.n, 0) AS completed, coalesce(f.n, 0) AS failed
             FROM minutes m LEFT JOIN done d USING (minute) LEFT JOIN failed f USING (minute)
             ORDER BY m.minute"
        )))
        .bind(ms(window))
        .bind(queue)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MinuteStats {
                    minute: r.try_get("minute")?,
                    completed: r.try_get("completed")?,
                    failed: r.try_get("failed")?,
                })
            })
            .collect()
    }

    async fn get_result(&self, id: i64) -> Result<Option<serde_json::Value>> {
        let s = &self.schema;
        Ok(sqlx::query_scalar(AssertSqlSafe(format!("SELECT output FROM {s}.results WHERE job_id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn count_by_state(&self) -> Result<Vec<StateCount>> {
        self.counts(&self.sql.count_by_state).await
    }

    async fn count_unfinished(&self) -> Result<Vec<StateCount>> {
        self.counts(&self.sql.count_unfinished).await
    }
}

impl PostgresEngine {
    /// Runs a statement answering (queue, state, n) rows.
    async fn counts(&self, sql: &str) -> Result<Vec<StateCount>> {
        let rows = sqlx::query(AssertSqlSafe(sql.to_string())).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| StateCount::from_stored(r.try_get("queue")?, r.try_get("state")?, r.try_get("n")?))
            .collect()
    }
}

impl Engine for PostgresEngine {
    fn name(&self) -> &'static str {
        <sqlx::Postgres as InsertDatabase>::ENGINE
    }

    fn schema(&self) -> &str {
        &self.schema
    }
}

#[async_trait]
impl TestSupport for PostgresEngine {
    async fn make_due(&self, queue: &str) -> Result<u64> {
        let s = &self.schema;
        let done = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {s}.jobs SET state = 'available', scheduled_at = now()
             WHERE queue = $1 AND state IN ('scheduled', 'retryable')"
        )))
        .bind(queue)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn claim(&self, ids: &[i64], node: &str) -> Result<Vec<FetchedJob>> {
        let s = &self.schema;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {s}.jobs SET state = 'executing', attempt = attempt + 1, attempted_at = now(), attempted_by = $2
             WHERE id = ANY($1) AND state = 'available' AND attempt < max_attempts
             RETURNING {FETCHED_COLUMNS}"
        )))
        .bind(ids)
        .bind(node)
        .fetch_all(&self.pool)
        .await?;
        let mut jobs: Vec<FetchedJob> = rows.iter().map(row::fetched_job).collect::<Result<_>>()?;
        jobs.sort_by_key(|j| ids.iter().position(|i| *i == j.id));
        Ok(jobs)
    }
}

async fn sleep_or_stop(d: Duration, stop: &CancellationToken) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}

/// One row of `queues`.
fn queue_settings_row(r: &sqlx::postgres::PgRow) -> Result<QueueSettings> {
    Ok(QueueSettings {
        name: r.try_get("name")?,
        paused: r.try_get("paused")?,
        concurrency: r.try_get::<Option<i32>, _>("concurrency")?.map(|n| n as u32),
        global_limit: r.try_get::<Option<i32>, _>("global_limit")?.map(|n| n as u32),
        rate_limit: RateLimit::from_columns(
            r.try_get::<Option<i32>, _>("rate_limit")?.map(i64::from),
            r.try_get("rate_window_ms")?,
            r.try_get("rate_per_partition")?,
        ),
        partition_limit: r.try_get::<Option<i32>, _>("partition_limit")?.map(|n| n as u32),
        sequence: r.try_get::<Option<String>, _>("sequence_policy")?.map(|p| p.parse()).transpose()?,
    })
}

fn rescue_report(row: &sqlx::postgres::PgRow) -> Result<RescueReport> {
    Ok(RescueReport {
        rescued: row.try_get::<i64, _>("rescued")? as u64,
        discarded: row.try_get::<i64, _>("discarded")? as u64,
    })
}

/// The shared WHERE clause of listings: $1 states, $2 queue, $3 worker, $4 tag, $5 args
/// pattern, $6 id.
const FILTER: &str = "(cardinality($1::text[]) = 0 OR state::text = ANY($1::text[]))
    AND ($2::text IS NULL OR queue = $2)
    AND ($3::text IS NULL OR worker = $3)
    AND ($4::text IS NULL OR $4 = ANY(tags))
    AND ($5::text IS NULL OR id = $6 OR args::text ILIKE $5)";

/// Binds $1-$6 of [`FILTER`] on any kind of query.
macro_rules! bind_filter {
    ($query:expr, $filter:expr) => {
        $query
            .bind($filter.states.iter().map(|s| s.as_str()).collect::<Vec<_>>())
            .bind(&$filter.queue)
            .bind(&$filter.worker)
            .bind(&$filter.tag)
            .bind($filter.search.as_deref().map(like_pattern))
            .bind($filter.search.as_deref().and_then(|t| t.trim().parse::<i64>().ok()))
    };
}
use bind_filter;

/// Notification payloads: `a:<queue>` work available, `s:` a scheduled insert, `c:<id>` cancel.
fn parse_payload(payload: &str) -> Option<Signal> {
    let (kind, rest) = payload.split_once(':')?;
    match kind {
        "a" => Some(Signal::Available(rest.to_string())),
        "s" => Some(Signal::Scheduled),
        "c" => rest.parse().ok().map(Signal::CancelJob),
        "q" => Some(Signal::QueueSettings(rest.to_string())),
        "l" => Some(Signal::LeaderResigned),
        _ => None,
    }
}

impl InsertDatabase for sqlx::Postgres {
    const ENGINE: &'static str = "postgres";

    async fn insert_jobs<'c, A>(db: A, schema: &str, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>>
    where
        A: sqlx::Acquire<'c, Database = Self> + Send,
    {
        validate_schema(schema)?;
        let mut conn = db.acquire().await?;
        insert::insert_jobs(&mut *conn, schema, jobs).await
    }
}

impl crate::engine::QueryDatabase for sqlx::Postgres {
    async fn run_query<'a>(
        conn: &'a mut sqlx::PgConnection,
        schema: &'a str,
        m: &'a crate::types::JobMatch,
        op: crate::types::QueryOp,
    ) -> Result<crate::types::QueryOutput> {
        query::run(conn, schema, m, op).await
    }
}

mod insert;
#[cfg(test)]
mod plan_tests;
mod query;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        assert_eq!(parse_payload("a:events"), Some(Signal::Available("events".into())));
        assert_eq!(parse_payload("a:with:colon"), Some(Signal::Available("with:colon".into())));
        assert_eq!(parse_payload("s:"), Some(Signal::Scheduled));
        assert_eq!(parse_payload("c:42"), Some(Signal::CancelJob(42)));
        assert_eq!(parse_payload("c:x"), None);
        assert_eq!(parse_payload("junk"), None);
    }
}
