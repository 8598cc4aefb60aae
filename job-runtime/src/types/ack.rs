//! The result of one execution, as written back to its row.

use std::time::Duration;

/// How one execution ended, to be written back to its row.
#[derive(Debug, Clone, PartialEq)]
pub enum AckKind {
    /// `completed`.
    Complete,
    /// `completed`, with the job's result recorded in the same write (not at all if the
    /// completion is refused by its guard).
    Record {
        /// The result, encoded.
        output: serde_json::Value,
    },
    /// `completed` already: the job's own transaction wrote its completion (and result) when it
    /// committed (see [`crate::JobTx`]), so nothing is left to write. Written anyway, it is a
    /// completion whose guard finds the row no longer executing, and changes nothing.
    Committed,
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
    /// The claim this result belongs to ([`super::FetchedJob::claim`]), or `None` to fence by node and
    /// attempt only. A result whose first write committed but whose answer was lost is written
    /// again; the claim keeps that second write off a newer claim of the row by the same node in
    /// the same attempt (after a snooze or a release gave the attempt back).
    pub claim: Option<i64>,
    /// The ending.
    pub kind: AckKind,
}
