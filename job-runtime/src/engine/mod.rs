//! The engine seam: every SQL statement of jobsmith lives below this module, behind [`Engine`].
//!
//! The runtime (producers, executor, completer, stager, handle) only calls these operations, each
//! taking plain Rust values, so a new database is one new module and the shared conformance suite.

pub mod instrumented;
pub mod postgres;
pub mod sqlite;

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
}

/// One row's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    /// Row id.
    pub id: i64,
    /// The ending.
    pub kind: AckKind,
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

    /// Applies the engine's migrations (idempotent, safe to run from several nodes at once).
    async fn migrate(&self) -> Result<()>;

    /// Inserts jobs through the engine's own pool, in one statement.
    async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>>;

    /// Marks up to `limit` available jobs of `queue` as executing by `node` and returns them, in
    /// priority, scheduled_at, id order.
    async fn fetch(&self, queue: &str, limit: u32, node: &str) -> Result<Vec<FetchedJob>>;

    /// Writes many results in one statement; rows no longer `executing` (cancelled or rescued in
    /// the meantime) are left alone. Returns how many rows changed.
    async fn ack(&self, acks: &[Ack]) -> Result<u64>;

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

    /// Job counts per queue and state, for status views and tests.
    async fn count_by_state(&self) -> Result<Vec<StateCount>>;

    /// Delivers outside signals (inserts from other processes, cancels) to `signals` until
    /// `stop` fires, reconnecting as needed. Engines without notifications return at once.
    async fn listen(&self, signals: mpsc::UnboundedSender<Signal>, stop: CancellationToken);
}
