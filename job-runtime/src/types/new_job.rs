//! A job ready to insert, and what an insert returns.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::JobRow;

/// A job ready to insert: the encoded args and every per-row option. Made by
/// [`crate::insert::InsertBuilder::build`].
#[derive(Debug, Clone)]
pub struct NewJob {
    pub(crate) worker: &'static str,
    pub(crate) queue: String,
    pub(crate) args: serde_json::Value,
    pub(crate) meta: serde_json::Value,
    pub(crate) tags: Vec<String>,
    pub(crate) priority: u8,
    pub(crate) max_attempts: u32,
    pub(crate) schedule: Schedule,
    pub(crate) unique_key: Option<Vec<u8>>,
    pub(crate) unique_states: Option<i32>,
}

/// When a new job becomes due. Relative delays are added to the database's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Schedule {
    Now,
    In(Duration),
    At(DateTime<Utc>),
}

impl NewJob {
    /// The queue this job goes to.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The worker name.
    pub fn worker(&self) -> &'static str {
        self.worker
    }

    /// The encoded args.
    pub fn args(&self) -> &serde_json::Value {
        &self.args
    }

    /// Delay in milliseconds from the database's `now()` (0 for "now"), or the absolute time.
    pub(crate) fn schedule_parts(&self) -> (Option<i64>, Option<DateTime<Utc>>) {
        match self.schedule {
            Schedule::Now => (Some(0), None),
            Schedule::In(d) => (Some(d.as_millis().min(i64::MAX as u128) as i64), None),
            Schedule::At(t) => (None, Some(t)),
        }
    }
}

/// The result of inserting one job.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertedJob {
    /// The stored row: the new one, or for a unique conflict the existing one.
    pub job: JobRow,
    /// True when a unique job of the same key already existed and no row was added.
    pub conflict: bool,
}
