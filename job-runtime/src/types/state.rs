//! The states a job row moves through.

use std::fmt;
use std::str::FromStr;

/// A job row's state.
///
/// `available -> executing -> completed`, with `scheduled` and `retryable` waiting for their time,
/// and `discarded` / `cancelled` as the other final states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Ready to be fetched.
    Available,
    /// Waiting for its `scheduled_at`.
    Scheduled,
    /// Running on a node.
    Executing,
    /// Failed; waiting for its retry time.
    Retryable,
    /// Finished successfully.
    Completed,
    /// Failed for good (out of attempts, undecodable, or discarded on purpose).
    Discarded,
    /// Stopped on purpose.
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 7] = [
        JobState::Available,
        JobState::Scheduled,
        JobState::Executing,
        JobState::Retryable,
        JobState::Completed,
        JobState::Discarded,
        JobState::Cancelled,
    ];

    /// The lower-case name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobState::Available => "available",
            JobState::Scheduled => "scheduled",
            JobState::Executing => "executing",
            JobState::Retryable => "retryable",
            JobState::Completed => "completed",
            JobState::Discarded => "discarded",
            JobState::Cancelled => "cancelled",
        }
    }

    /// The bit of this state in a state set (used by unique jobs).
    pub const fn bit(self) -> i32 {
        1 << (self as i32)
    }

    /// Whether the row will never run again by itself.
    pub const fn is_final(self) -> bool {
        matches!(self, JobState::Completed | JobState::Discarded | JobState::Cancelled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown job state `{s}`"))
    }
}
