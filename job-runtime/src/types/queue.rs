//! A queue's persisted, cluster-wide settings.

use super::RateLimit;
use crate::error::Result;

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
    /// Most jobs started in any window, across all nodes.
    pub rate_limit: Option<RateLimit>,
    /// Most jobs of one partition executing at once, across all nodes; with it set, the queue
    /// takes its partitions in turn (ADR 24).
    pub partition_limit: Option<u32>,
    /// Set when the queue runs each partition as a sequence: one job at a time, in insertion
    /// order (ADR 27).
    pub sequence: Option<SequencePolicy>,
}

/// How a sequenced queue (see [`crate::RuntimeBuilder::sequence`]) treats a job of a sequence
/// that failed: the next job of its partition starts only after it finished, and a job waiting
/// for a retry has not finished. What differs is a job that was discarded (out of attempts).
///
/// ```
/// use jobsmith::SequencePolicy;
/// assert_eq!("continue".parse::<SequencePolicy>().unwrap(), SequencePolicy::ContinueAfterDiscard);
/// assert_eq!(SequencePolicy::WaitForRetries.to_string(), "wait");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SequencePolicy {
    /// A discarded job holds its sequence until it is retried (and completes), cancelled or
    /// deleted: nothing after it runs out of order. The default.
    #[default]
    WaitForRetries,
    /// A discarded job lets the next one of its sequence start.
    ContinueAfterDiscard,
}

impl SequencePolicy {
    /// As stored and written on the command line: `wait` or `continue`.
    pub fn as_str(self) -> &'static str {
        match self {
            SequencePolicy::WaitForRetries => "wait",
            SequencePolicy::ContinueAfterDiscard => "continue",
        }
    }
}

impl serde::Serialize for SequencePolicy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A failure policy chosen for one sequence (one partition of a sequenced queue), in place of
/// the queue's (see [`crate::Runtime::set_sequence_policy`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SequenceOverride {
    /// The queue.
    pub queue: String,
    /// The sequence: the partition's key.
    pub partition: String,
    /// What a discarded job of this sequence does, whatever the queue's policy.
    pub policy: SequencePolicy,
}

impl std::fmt::Display for SequencePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SequencePolicy {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "wait" => Ok(SequencePolicy::WaitForRetries),
            "continue" => Ok(SequencePolicy::ContinueAfterDiscard),
            other => Err(crate::error::Error::InvalidOption(format!(
                "a sequence policy is `wait` (a discarded job holds its sequence) or `continue`, got {other:?}"
            ))),
        }
    }
}

/// A change to one queue's persisted settings: `None` leaves a field as stored, `Some` sets it
/// (for the limits, `Some(None)` clears it, back to each node's own configuration). See
/// [`crate::engine::Administration::update_queue_settings`].
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
    /// Most jobs started in any window across all nodes (see [`RateLimit::check`]); `Some(None)`
    /// clears it.
    pub rate_limit: Option<Option<RateLimit>>,
    /// Most jobs of one partition executing at once across all nodes, at least 1; `Some(None)`
    /// clears it.
    pub partition_limit: Option<Option<u32>>,
    /// Runs each partition as a sequence with this policy; `Some(None)` clears it.
    pub sequence: Option<Option<SequencePolicy>>,
}

impl QueueSettingsChange {
    /// Refuses what the database would refuse, with a message instead of a constraint name.
    pub(crate) fn check(&self, queue: &str) -> Result<()> {
        if queue.is_empty() || queue.len() > 128 {
            return Err(crate::error::Error::InvalidOption(format!(
                "queue name must be 1 to 128 bytes, got {queue:?}"
            )));
        }
        for (what, value) in [
            ("concurrency", self.concurrency),
            ("global limit", self.global_limit),
            ("partition limit", self.partition_limit),
        ] {
            if let Some(Some(n)) = value
                && (n == 0 || n > i32::MAX as u32)
            {
                return Err(crate::error::Error::InvalidOption(format!(
                    "a queue's {what} must be 1 to {}, got {n}; pause the queue to stop it",
                    i32::MAX
                )));
            }
        }
        if let Some(Some(rate)) = self.rate_limit {
            rate.check()?;
        }
        Ok(())
    }
}
