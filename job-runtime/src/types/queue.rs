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
