//! What the runtime needs of an engine: migrate, insert, fetch, write results back, stage, keep
//! the cluster (heartbeats, leases, rescue), cron and the queues' settings.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::types::{
    Ack, CronEntryWrite, CronFire, ExecutingRow, FetchRequest, FetchedJob, HandBack, Heartbeat, InsertedJob,
    JobRow, JobState, NewJob, NodeRow, PartitionRequest, PartitionedFetch, QueueSettings, RateLimit,
    RateLimitedFetch, RescueReport, RescueRequest, Retention, StageReport, TxCompletion, WorkerRow,
};

/// The operations the runtime (producers, executor, completer, stager, cluster upkeep, handle)
/// calls. One implementation per database; part of [`super::Engine`].
#[async_trait]
pub trait RuntimeOps: Send + Sync + 'static {
    /// Applies the engine's migrations (idempotent, safe to run from several nodes at once).
    async fn migrate(&self) -> Result<()>;

    /// Inserts jobs through the engine's own pool, in one statement.
    async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>>;

    /// Told after a [`crate::Transaction`] committed, with the queues it inserted new jobs into
    /// (each once). Engines do nothing (their notifications already fire at the commit); the
    /// testing helpers' inline engine runs the jobs.
    async fn committed(&self, _queues: &[String]) -> Result<()> {
        Ok(())
    }

    /// Marks available jobs as executing by the node and returns them, taking them in priority,
    /// scheduled_at, id order, honouring a global limit if one is given.
    async fn fetch(&self, request: &FetchRequest<'_>) -> Result<Vec<FetchedJob>>;

    /// [`fetch`](Self::fetch) for a queue with a rate limit: under the queue's lock (one
    /// fetcher at a time across all nodes), takes at most as many jobs as may still start in
    /// the window that ends now, records their starts in the queue's log, and stamps them with
    /// the same instant (the database's clock), so `attempted_at` counts exactly what the limit
    /// counted. `request.after` and `request.relaxed_commit` are ignored. See ADR 22.
    async fn fetch_rate_limited(
        &self,
        request: &FetchRequest<'_>,
        rate: RateLimit,
    ) -> Result<RateLimitedFetch>;

    /// [`fetch`](Self::fetch) for a partitioned queue (ADR 24): under the queue's lock (one
    /// fetcher at a time across all nodes), takes jobs of the partitions that have fewer than
    /// `partitions.limit` executing and none whose window of `partitions.rate` is full (each
    /// start logged under its partition's key), in turn from the one after `partitions.after`: an equal
    /// share of `request.limit` each (the head of each partition in run order), so a
    /// partition's backlog holds back no other partition's jobs. Jobs of no partition among the
    /// first [`crate::UNPARTITIONED_LOOKAHEAD`] of the queue are one more partition. Honours
    /// `request.global_limit` (counted in jobs); ignores `after`, `weight_cap` and
    /// `relaxed_commit`.
    async fn fetch_partitioned(
        &self,
        request: &FetchRequest<'_>,
        partitions: PartitionRequest<'_>,
    ) -> Result<PartitionedFetch>;

    /// Takes back from `queue`'s rate log (or with `partition`, that partition's log) one start
    /// per stamp in `stamps` (see [`RateLimitedFetch::stamp_ms`]): jobs claimed under the limit
    /// that were released unstarted, so they do not use up the window (ADR 22). Under the
    /// queue's lock, as the fetch; stamps no longer in the log are ignored.
    async fn refund_rate_starts(&self, queue: &str, partition: Option<&str>, stamps: &[i64]) -> Result<()>;

    /// Writes many results of `node`'s jobs at once; rows no longer `executing` by that node and
    /// attempt (cancelled, or rescued and run elsewhere) are left alone. Returns rows changed.
    async fn ack(&self, node: &str, acks: &[Ack]) -> Result<u64>;

    /// Moves due `scheduled`/`retryable` rows to `available`, at most `limit` per call.
    async fn stage(&self, limit: u32) -> Result<StageReport>;

    /// The database's clock: leases, cron slots and due times use it, not each node's.
    async fn now(&self) -> Result<DateTime<Utc>>;

    /// Records that the node is alive and which queues it runs, and keeps its `connected_since`
    /// (reset when the previous heartbeat is older than the beat's `reconnect_gap`).
    async fn heartbeat(&self, beat: &Heartbeat<'_>) -> Result<()>;

    /// Removes a node's row on clean shutdown (its jobs were handed back already).
    async fn remove_node(&self, node: &str) -> Result<()>;

    /// Nodes whose heartbeat is younger than `ttl`.
    async fn live_nodes(&self, ttl: Duration) -> Result<Vec<NodeRow>>;

    /// Takes the leader lease if it is free or expired, or renews it if `node` holds it, for
    /// `ttl`. True when `node` leads afterwards.
    async fn lead(&self, node: &str, ttl: Duration) -> Result<bool>;

    /// Gives up the lease if `node` holds it, and tells the other nodes.
    async fn resign(&self, node: &str) -> Result<()>;

    /// The node holding a live lease.
    async fn leader(&self) -> Result<Option<String>>;

    /// Moves `executing` jobs of nodes whose heartbeat is older than `node_ttl` back to
    /// `available` (or `discarded` when out of attempts) with an error entry, and forgets those
    /// nodes; only while the rescuer itself has been connected for `node_ttl` (see
    /// [`RescueRequest`]). Jobs of live nodes are never touched.
    async fn rescue(&self, request: &RescueRequest<'_>) -> Result<RescueReport>;

    /// Takes back the `executing` jobs left by an earlier run of a node of this name (which must
    /// therefore be dead: node names are unique among running processes), like a rescue.
    async fn release_node(&self, node: &str) -> Result<RescueReport>;

    /// Every row `executing` by `node`, with the stamp of its claim (for reconciling the node's
    /// claims: see `runtime::claims`).
    async fn executing(&self, node: &str) -> Result<Vec<ExecutingRow>>;

    /// Hands back those of the request's `claims` (id and claim stamp, as
    /// [`RuntimeOps::executing`] gave them) that are still `executing` by its `node` under that
    /// very claim: `available` again with the attempt returned, the due time (and so the place in
    /// run order) kept, and an error entry `reason`; the queues are told. Returns the ids handed
    /// back. For claims the node lost: it never ran these jobs.
    async fn hand_back(&self, request: &HandBack<'_>) -> Result<Vec<i64>>;

    /// Deletes finished rows older than their retention, at most `limit` in one statement.
    async fn prune(&self, retention: &Retention, limit: u32) -> Result<u64>;

    /// Deletes the start logs of partitions (rate limits for each partition, ADR 25) that hold
    /// no start inside their queue's window and its longest guard: a partition that went idle
    /// would otherwise keep its row for ever, and the fetch's window-opening scan reads every
    /// row of the queue. A partition that starts again gets a new row. Returns the rows deleted.
    async fn prune_rate_logs(&self) -> Result<u64>;

    /// Vacuums the jobs table when it holds at least `min_dead` dead row versions, and returns
    /// how many it held then; `None` when it did not vacuum (too few, or an engine without dead
    /// row versions: SQLite changes rows in place).
    async fn vacuum_jobs(&self, min_dead: u64) -> Result<Option<u64>>;

    /// The last slot cron entry `name` fired.
    async fn cron_last(&self, name: &str) -> Result<Option<DateTime<Utc>>>;

    /// In one transaction: if the entry's last slot is still `expected`, inserts `jobs` and
    /// records `new_last` (see [`CronFire`]); returns false (inserting nothing) if another node
    /// fired meanwhile.
    async fn cron_fire(&self, fire: CronFire<'_>) -> Result<bool>;

    /// Leader: publishes the cron entries of its code (replacing the code entries published
    /// before, keeping each one's pause; a stored entry of the same name becomes a code entry)
    /// and the job types it runs, in one transaction.
    async fn publish_catalog(&self, code: &[CronEntryWrite], workers: &[WorkerRow]) -> Result<()>;

    /// Leader: records why cron entry `name` cannot run, or with `None` that it can.
    async fn set_cron_error(&self, name: &str, error: Option<&str>) -> Result<()>;

    /// Every persisted queue setting.
    async fn queue_settings(&self) -> Result<Vec<QueueSettings>>;

    /// One job by id.
    async fn get_job(&self, id: i64) -> Result<Option<JobRow>>;

    /// The value job `job`'s step `name` recorded in an earlier attempt, if any.
    async fn step_output(&self, job: i64, name: &str) -> Result<Option<serde_json::Value>>;

    /// Records a finished step, only while the job is still executing by `step.node` in
    /// `step.attempt`; false if it no longer is (the run is stale and its step is not kept).
    async fn record_step(&self, step: &crate::types::StepRecord<'_>) -> Result<bool>;

    /// Begins a transaction on the engine's own pool for a job that asked for one (see
    /// [`crate::JobTx`]). On SQLite it takes the database's write lock at once (`BEGIN
    /// IMMEDIATE`), so its first write never fails on a snapshot another writer moved past.
    async fn begin_job_tx(&self) -> Result<crate::transaction::OpenTx>;

    /// In the job's transaction `tx`: completes the job, and records `done.output` with it,
    /// only while its row is still `executing` by `done.node` in `done.attempt` under
    /// `done.claim` (the guard of the batched acks). False when the guard refused: this run no
    /// longer holds the job (rescued and run elsewhere, cancelled), and the caller rolls back.
    async fn complete_in_tx(&self, tx: &mut crate::Transaction, done: &TxCompletion<'_>) -> Result<bool>;

    /// [`RuntimeOps::step_output`], read in the job's transaction (so it sees the steps that
    /// transaction recorded).
    async fn step_output_in_tx(
        &self,
        tx: &mut crate::Transaction,
        job: i64,
        name: &str,
    ) -> Result<Option<serde_json::Value>>;

    /// [`RuntimeOps::record_step`] in the job's transaction: the step commits with the job's
    /// completion, or vanishes with its rollback.
    async fn record_step_in_tx(
        &self,
        tx: &mut crate::Transaction,
        step: &crate::types::StepRecord<'_>,
    ) -> Result<bool>;

    /// Told after a job's transaction committed its completion. PostgreSQL does nothing (its
    /// trigger's notification goes out with the commit); SQLite wakes this process's waiters.
    fn completed_in_tx(&self, _job: i64) {}

    /// Cancels a job that has not finished; returns its state before, or `None` if it was already
    /// final or does not exist. An executing job is marked cancelled at once and its node is told.
    async fn cancel_job(&self, id: i64) -> Result<Option<JobState>>;
}
