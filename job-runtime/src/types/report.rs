//! What engine passes report, and the signals that reach a node.

use std::time::Duration;

/// What one rescue pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RescueReport {
    /// Jobs of dead nodes made available again.
    pub rescued: u64,
    /// Jobs of dead nodes that had no attempt left and were discarded.
    pub discarded: u64,
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
    /// Jobs may have been cancelled while running (a cancel by query on SQLite, which cannot
    /// name them before its commit): stop the ones this node runs whose rows are no longer
    /// executing here.
    CancelsCommitted,
    /// The listener lost its connection and notifications may have been missed: look everywhere.
    Resync,
    /// A queue's persisted settings changed: reload them.
    QueueSettings(String),
    /// The leader resigned: try to take the lease now.
    LeaderResigned,
}
