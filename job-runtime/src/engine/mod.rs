//! The engine seam: every SQL statement of jobsmith lives below this module, behind [`Engine`].
//!
//! The runtime (producers, executor, completer, stager, handle) only calls these operations, each
//! taking plain Rust values, so a new database is one new module and the shared conformance suite.

pub mod instrumented;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub(crate) mod unreadable;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::insert::{InsertedJob, NewJob};
use crate::state::JobState;

/// A row fetched for execution: what the executor needs, nothing more.
#[derive(Debug, Clone)]
pub struct FetchedJob {
    /// Row id.
    pub id: i64,
    /// Stored worker name.
    pub worker: String,
    /// Queue.
    pub queue: String,
    /// Args as stored.
    pub args: serde_json::Value,
    /// Metadata.
    pub meta: serde_json::Value,
    /// Tags.
    pub tags: Vec<String>,
    /// This attempt's number (already incremented by the fetch).
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When inserted.
    pub inserted_at: DateTime<Utc>,
    /// When due.
    pub scheduled_at: DateTime<Utc>,
    /// 0 (first) to 9.
    pub priority: u8,
    /// Why some column of the stored row could not be read (for example args nested deeper than
    /// JSON decoding allows), or `None`. Such a job never runs: the runtime discards it with this
    /// reason, and the unreadable fields hold placeholders (`null`, empty).
    pub unreadable: Option<String>,
    /// Which claim of the row this is (see [`ExecutingRow::claim`]); its result names it, so a
    /// result written twice cannot land on a later claim of the same row.
    pub claim: i64,
}

impl FetchedJob {
    /// A job of worker `w` in queue `q`, due now, for the runtime's unit tests.
    #[cfg(test)]
    pub(crate) fn for_test(id: i64, attempt: u32, max_attempts: u32) -> Self {
        let now = Utc::now();
        FetchedJob {
            id,
            worker: "w".into(),
            queue: "q".into(),
            args: serde_json::json!({}),
            meta: serde_json::json!({}),
            tags: vec![],
            attempt,
            max_attempts,
            inserted_at: now,
            scheduled_at: now,
            priority: 0,
            unreadable: None,
            claim: 0,
        }
    }

    /// This job's place in its queue's run order.
    pub fn position(&self) -> FetchCursor {
        FetchCursor { priority: self.priority, scheduled_at: self.scheduled_at, id: self.id }
    }
}

/// A place in a queue's run order (priority, then due time, then id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FetchCursor {
    /// 0 (first) to 9.
    pub priority: u8,
    /// When due.
    pub scheduled_at: DateTime<Utc>,
    /// Row id.
    pub id: i64,
}

/// How one execution ended, to be written back to its row.
#[derive(Debug, Clone, PartialEq)]
pub enum AckKind {
    /// `completed`.
    Complete,
    /// `retryable`, due after `delay`, with the error appended.
    Retry {
        /// Backoff before the next attempt.
        delay: Duration,
        /// What went wrong.
        error: String,
    },
    /// `discarded`, with the error appended.
    Discard {
        /// Why.
        error: String,
    },
    /// `cancelled`, with the reason appended.
    Cancel {
        /// Why.
        reason: String,
    },
    /// `scheduled` after `delay`; the attempt is given back.
    Snooze {
        /// How long to wait.
        delay: Duration,
    },
    /// `available` again at once with the attempt given back: the node stopped before the job
    /// finished, so another node (or this one after a restart) runs it.
    HandBack {
        /// Why, appended to the errors so the interruption is visible.
        reason: String,
    },
    /// `available` again at once with the attempt given back and nothing recorded: the job was
    /// claimed ahead of a free slot (see [`crate::RuntimeBuilder::prefetch`]) and never started.
    /// Its place in the run order is kept.
    Release,
}

/// One row's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    /// Row id.
    pub id: i64,
    /// The attempt this result belongs to: a result of an attempt that was rescued and run again
    /// elsewhere must not overwrite the newer run.
    pub attempt: u32,
    /// The claim this result belongs to ([`FetchedJob::claim`]), or `None` to fence by node and
    /// attempt only. A result whose first write committed but whose answer was lost is written
    /// again; the claim keeps that second write off a newer claim of the row by the same node in
    /// the same attempt (after a snooze or a release gave the attempt back).
    pub claim: Option<i64>,
    /// The ending.
    pub kind: AckKind,
}

/// What a fetch asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest<'a> {
    /// Queue.
    pub queue: &'a str,
    /// Most rows to take.
    pub limit: u32,
    /// The fetching node, stored in `attempted_by`.
    pub node: &'a str,
    /// At most this many rows of the queue may be executing across all nodes.
    pub global_limit: Option<u32>,
    /// Only rows after this place in run order: where the last full fetch ended, while nothing
    /// has become available since. It lets the database start its index scan there instead of
    /// stepping again over the entries of every row already taken (they stay in the index until
    /// vacuum). An optimisation only: an engine may ignore it, and an answer shorter than asked
    /// makes the producer look again without it.
    pub after: Option<FetchCursor>,
    /// The claim may commit without waiting for its write-ahead log to reach disk (PostgreSQL:
    /// `synchronous_commit = off` for that one transaction). If the database server crashes
    /// within that moment, the claim is undone: the jobs are `available` again and may run a
    /// second time, even while this node still runs them. Engines that cannot relax a commit
    /// ignore it. See [`crate::RuntimeBuilder::relaxed_fetch_commit`].
    pub relaxed_commit: bool,
}

/// A node's heartbeat row.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    /// Node name.
    pub name: String,
    /// Queues it runs.
    pub queues: Vec<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
}

/// Cluster-wide settings of one queue, persisted so nodes started later apply them too. `None`
/// leaves each node's own configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// Queue name.
    pub name: String,
    /// Paused on every node.
    pub paused: Option<bool>,
    /// Concurrency on every node.
    pub concurrency: Option<u32>,
    /// Most jobs executing across all nodes.
    pub global_limit: Option<u32>,
}

/// A change to one queue's persisted settings: `None` leaves a field as stored, `Some` sets it
/// (for the limits, `Some(None)` clears it, back to each node's own configuration). See
/// [`Engine::update_queue_settings`].
///
/// ```
/// let change = jobsmith::QueueSettingsChange { concurrency: Some(Some(5)), ..Default::default() };
/// assert_eq!(change.paused, None, "the pause is left as it is");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueSettingsChange {
    /// Paused (`Some(true)`) or resumed (`Some(false)`) on every node.
    pub paused: Option<bool>,
    /// Concurrency on every node, at least 1; `Some(None)` clears it.
    pub concurrency: Option<Option<u32>>,
    /// Most jobs executing across all nodes, at least 1; `Some(None)` clears it.
    pub global_limit: Option<Option<u32>>,
}

impl QueueSettingsChange {
    /// Refuses what the database would refuse, with a message instead of a constraint name.
    pub(crate) fn check(&self, queue: &str) -> Result<()> {
        if queue.is_empty() || queue.len() > 128 {
            return Err(crate::Error::InvalidOption(format!(
                "queue name must be 1 to 128 bytes, got {queue:?}"
            )));
        }
        for (what, value) in [("concurrency", self.concurrency), ("global limit", self.global_limit)] {
            if let Some(Some(n)) = value
                && (n == 0 || n > i32::MAX as u32)
            {
                return Err(crate::Error::InvalidOption(format!(
                    "a queue's {what} must be 1 to {}, got {n}; pause the queue to stop it",
                    i32::MAX
                )));
            }
        }
        Ok(())
    }
}

/// One heartbeat of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat<'a> {
    /// The node.
    pub node: &'a str,
    /// The queues it runs.
    pub queues: &'a [String],
    /// A node whose previous heartbeat is older than this was disconnected: its
    /// `connected_since` starts again now (see [`RescueRequest`]).
    pub reconnect_gap: Duration,
}

/// What a rescue pass asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RescueRequest<'a> {
    /// The node doing the rescue. It rescues only if, by the database's clock at the moment the
    /// statement runs, its own heartbeat is younger than `reconnect_gap` and it has been connected
    /// (heartbeating without a gap longer than `reconnect_gap`) for at least `node_ttl`: right
    /// after an outage every heartbeat looks old, and a node still reconnecting cannot be told
    /// from a dead one.
    pub rescuer: &'a str,
    /// A node whose heartbeat is older than this is dead.
    pub node_ttl: Duration,
    /// See `rescuer`.
    pub reconnect_gap: Duration,
    /// Most jobs to move.
    pub limit: u32,
}

/// A row `executing` by a node, as the node's claim reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExecutingRow {
    /// Row id.
    pub id: i64,
    /// Queue.
    pub queue: String,
    /// Which claim of the row this is: when the fetch took it, in microseconds since the epoch
    /// (milliseconds on SQLite). A later claim of the same row by the same node has another
    /// stamp, so a hand-back meant for a lost claim never touches a newer one.
    pub claim: i64,
}

/// What one rescue pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RescueReport {
    /// Jobs of dead nodes made available again.
    pub rescued: u64,
    /// Jobs of dead nodes that had no attempt left and were discarded.
    pub discarded: u64,
}

/// Which jobs a listing shows. Every field narrows; the default lists everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Any of these states (empty: all).
    pub states: Vec<JobState>,
    /// This queue.
    pub queue: Option<String>,
    /// This worker name.
    pub worker: Option<String>,
    /// Jobs carrying this tag.
    pub tag: Option<String>,
    /// A job id, or text that occurs in the args.
    pub search: Option<String>,
}

/// One page of a listing: newest first, ids below `before_id` when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Most rows.
    pub limit: u32,
    /// Only ids below this (the last id of the previous page).
    pub before_id: Option<i64>,
}

impl Default for Page {
    fn default() -> Self {
        Page { limit: 50, before_id: None }
    }
}

/// Jobs finished per minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteStats {
    /// Start of the minute.
    pub minute: DateTime<Utc>,
    /// Jobs completed in it.
    pub completed: i64,
    /// Failed attempts in it (retried or discarded).
    pub failed: i64,
}

/// How long finished rows are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `completed` rows.
    pub completed: Duration,
    /// `cancelled` rows.
    pub cancelled: Duration,
    /// `discarded` rows.
    pub discarded: Duration,
}

/// What one staging pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageReport {
    /// Rows moved from `scheduled`/`retryable` to `available`.
    pub staged: u64,
    /// The queues that got work.
    pub queues: Vec<String>,
    /// Time until the next row falls due, if any row waits.
    pub next_due_in: Option<Duration>,
}

/// A wake-up or command that reaches a node from outside (another process, or this one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Jobs became available on this queue.
    Available(String),
    /// A scheduled job was inserted: the stager should look at its due time.
    Scheduled,
    /// Cancel this job if it runs here.
    CancelJob(i64),
    /// The listener lost its connection and notifications may have been missed: look everywhere.
    Resync,
    /// A queue's persisted settings changed: reload them.
    QueueSettings(String),
    /// The leader resigned: try to take the lease now.
    LeaderResigned,
}

/// A stored job, as returned by insert and look-ups.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    /// Row id.
    pub id: i64,
    /// Current state.
    pub state: JobState,
    /// Queue.
    pub queue: String,
    /// Stored worker name.
    pub worker: String,
    /// Args as JSON.
    pub args: serde_json::Value,
    /// Metadata as JSON.
    pub meta: serde_json::Value,
    /// Tags.
    pub tags: Vec<String>,
    /// One entry per failed attempt: `{"attempt", "at", "error"}`.
    pub errors: Vec<serde_json::Value>,
    /// Attempts used.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// 0 (first) to 9.
    pub priority: u8,
    /// When inserted.
    pub inserted_at: DateTime<Utc>,
    /// When due.
    pub scheduled_at: DateTime<Utc>,
    /// When the last attempt started.
    pub attempted_at: Option<DateTime<Utc>>,
    /// The node of the last attempt.
    pub attempted_by: Option<String>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it was discarded.
    pub discarded_at: Option<DateTime<Utc>>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why some column of the stored row could not be read, or `None`. The row is still listed:
    /// an unreadable `args` holds the stored JSON as a string, other unreadable fields hold
    /// placeholders (`null`, empty).
    pub unreadable: Option<String>,
}

/// How many jobs of one queue are in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCount {
    /// Queue.
    pub queue: String,
    /// State.
    pub state: JobState,
    /// Rows.
    pub count: i64,
}

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
