//! The engine seam: every SQL statement of jobsmith lives below this module, behind [`Engine`].
//!
//! The runtime (producers, executor, completer, stager, handle) only calls these operations, each
//! taking plain Rust values, so a new database is one new module and the shared conformance suite.

pub mod instrumented;
pub mod postgres;
pub mod sqlite;
pub(crate) mod unreadable;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
pub use crate::types::{
    Ack, AckKind, ExecutingRow, FetchCursor, FetchRequest, FetchedJob, Heartbeat, InsertedJob, JobFilter,
    JobRow, JobState, MinuteStats, NewJob, NodeRow, Page, QueueSettings, QueueSettingsChange, RescueReport,
    RescueRequest, Retention, Signal, StageReport, StateCount,
};

/// Every database operation the runtime needs. One implementation per database.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// A short name for logs: `postgres`, `sqlite`.
    fn name(&self) -> &'static str;

    /// True for the tracing wrapper, so nothing wraps an engine twice.
    fn is_instrumented(&self) -> bool {
        false
    }

    /// Applies the engine's migrations (idempotent, safe to run from several nodes at once).
    async fn migrate(&self) -> Result<()>;

    /// Inserts jobs through the engine's own pool, in one statement.
    async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>>;

    /// Marks available jobs as executing by the node and returns them, taking them in priority,
    /// scheduled_at, id order, honouring a global limit if one is given.
    async fn fetch(&self, request: &FetchRequest<'_>) -> Result<Vec<FetchedJob>>;

    /// Writes many results of `node`'s jobs at once; rows no longer `executing` by that node and
    /// attempt (cancelled, or rescued and run elsewhere) are left alone. Returns rows changed.
    async fn ack(&self, node: &str, acks: &[Ack]) -> Result<u64>;

    /// Moves due `scheduled`/`retryable` rows to `available`, at most `limit` per call.
    async fn stage(&self, limit: u32) -> Result<StageReport>;

    /// Cancels a job that has not finished; returns its state before, or `None` if it was already
    /// final or does not exist. An executing job is marked cancelled at once and its node is told.
    async fn cancel_job(&self, id: i64) -> Result<Option<JobState>>;

    /// Makes a discarded or cancelled job available again with one more attempt; `false` if the
    /// job is not in such a state.
    async fn retry_job(&self, id: i64) -> Result<bool>;

    /// One job by id.
    async fn get_job(&self, id: i64) -> Result<Option<JobRow>>;

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

    /// Hands back those of `claims` (id and claim stamp, as [`Engine::executing`] gave them) that
    /// are still `executing` by `node` under that very claim: `available` again with the attempt
    /// returned, the due time (and so the place in run order) kept, and an error entry `reason`;
    /// the queues are told. Returns the ids handed back. For claims the node lost: it never ran
    /// these jobs.
    async fn hand_back(&self, node: &str, claims: &[(i64, i64)], reason: &str) -> Result<Vec<i64>>;

    /// Deletes finished rows older than their retention, at most `limit` in one statement.
    async fn prune(&self, retention: &Retention, limit: u32) -> Result<u64>;

    /// The last slot cron entry `name` fired.
    async fn cron_last(&self, name: &str) -> Result<Option<DateTime<Utc>>>;

    /// In one transaction: if the entry's last slot is still `expected`, inserts `jobs` and
    /// records `new_last`; returns false (inserting nothing) if another node fired meanwhile.
    async fn cron_fire(
        &self,
        name: &str,
        expected: Option<DateTime<Utc>>,
        new_last: DateTime<Utc>,
        jobs: Vec<NewJob>,
    ) -> Result<bool>;

    /// Every persisted queue setting.
    async fn queue_settings(&self) -> Result<Vec<QueueSettings>>;

    /// Jobs matching `filter`, newest first, one page.
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<JobRow>>;

    /// Deletes a job that is not executing; false if it is executing or does not exist.
    async fn delete_job(&self, id: i64) -> Result<bool>;

    /// Retries every discarded or cancelled job matching `filter` (as [`Engine::retry_job`]);
    /// returns how many.
    async fn retry_jobs(&self, filter: &JobFilter) -> Result<u64>;

    /// Completed jobs and failed attempts per minute over the last `window`, oldest first.
    async fn throughput(&self, window: Duration) -> Result<Vec<MinuteStats>>;

    /// Makes every `scheduled` or `retryable` job of `queue` due now (testing helpers); returns
    /// how many.
    async fn make_due(&self, queue: &str) -> Result<u64>;

    /// Marks these jobs executing by `node` if they are `available`, and returns them (testing
    /// helpers run exactly the jobs they chose).
    async fn claim(&self, ids: &[i64], node: &str) -> Result<Vec<FetchedJob>>;

    /// Job counts per queue and state, for status views and tests.
    async fn count_by_state(&self) -> Result<Vec<StateCount>>;

    /// The instance this engine serves: the PostgreSQL schema, or on SQLite the table prefix
    /// without its trailing underscore. Errors name it (see [`crate::Error::NotMigrated`]).
    fn schema(&self) -> &str;

    /// Changes the fields of `queue`'s persisted settings that `change` names, and only those, in
    /// one atomic write (concurrent changes of different fields all survive), then tells every
    /// node. Returns the settings after the change.
    ///
    /// Refused with [`crate::Error::UnknownQueue`], storing nothing, when the queue is unknown and
    /// `allow_unknown` is false. A queue is known when it has job rows, has stored settings, or is
    /// listed by a node row (a live node, or a dead one until the leader forgets it).
    async fn update_queue_settings(
        &self,
        queue: &str,
        change: &QueueSettingsChange,
        allow_unknown: bool,
    ) -> Result<QueueSettings>;

    /// Delivers outside signals (inserts from other processes, cancels) to `signals` until
    /// `stop` fires, reconnecting as needed. Engines without notifications return at once.
    async fn listen(&self, signals: mpsc::UnboundedSender<Signal>, stop: CancellationToken);
}
