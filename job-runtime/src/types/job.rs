//! Rows as the engines return them: stored jobs, fetched jobs, node rows, counts.

use chrono::{DateTime, Utc};

use super::JobState;

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
    /// Slots of its queue one run takes (1 unless the job says otherwise; see
    /// [`crate::JobOptions::weight`]).
    pub weight: u16,
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
            weight: 1,
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
    /// Slots of its queue one run takes (see [`crate::JobOptions::weight`]).
    pub weight: u16,
    /// The partition it belongs to, if any (see [`crate::JobOptions::partition_by`]).
    pub partition_key: Option<String>,
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

impl StateCount {
    /// A count as both engines read it: the state as its stored name.
    pub(crate) fn from_stored(queue: String, state: &str, count: i64) -> crate::error::Result<Self> {
        let state = state.parse().map_err(crate::error::Error::Unexpected)?;
        Ok(StateCount { queue, state, count })
    }
}
