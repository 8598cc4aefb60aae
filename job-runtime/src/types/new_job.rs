//! A job ready to insert, and what an insert returns.

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::JobRow;

/// The heaviest a job may be ([`crate::JobOptions::weight`], `InsertBuilder::weight`): the slots
/// of its queue one run takes. A job heavier than a node's whole limit runs alone there.
pub const MAX_WEIGHT: u16 = 1_000;

/// The longest a partition key may be, in bytes (`InsertBuilder::partition`).
pub const MAX_PARTITION_KEY_BYTES: usize = 200;

/// A job ready to insert: the encoded args and every per-row option. Made by
/// [`crate::insert::InsertBuilder::build`].
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The job type's name: borrowed for typed inserts, owned for a cron entry stored in the
    /// database (whose job type this process may not even link).
    pub(crate) worker: Cow<'static, str>,
    pub(crate) queue: String,
    pub(crate) args: serde_json::Value,
    pub(crate) meta: serde_json::Value,
    pub(crate) tags: Vec<String>,
    pub(crate) priority: u8,
    /// Slots of its queue one run takes (1 to `MAX_WEIGHT`, checked by the builder).
    pub(crate) weight: u16,
    /// The partition the job belongs to, if any (ADR 24).
    pub(crate) partition_key: Option<String>,
    pub(crate) max_attempts: u32,
    pub(crate) schedule: Schedule,
    pub(crate) unique_key: Option<Vec<u8>>,
    pub(crate) unique_states: Option<i32>,
    pub(crate) on_conflict: OnConflict,
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
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// The encoded args.
    pub fn args(&self) -> &serde_json::Value {
        &self.args
    }

    /// Whether `jobs` are a batch of one kind: all like the first (worker, queue, priority, weight
    /// and attempt count), due now, no meta, tags, partition or unique key. What `insert_all` of one job type
    /// usually sends, and what the engines insert with the args as the only per-row value.
    pub(crate) fn all_of_one_kind(jobs: &[NewJob]) -> bool {
        let Some(first) = jobs.first() else { return false };
        jobs.iter().all(|j| {
            j.worker == first.worker
                && j.queue == first.queue
                && j.priority == first.priority
                && j.weight == first.weight
                && j.partition_key.is_none()
                && j.max_attempts == first.max_attempts
                && j.schedule == Schedule::Now
                && j.unique_key.is_none()
                && j.tags.is_empty()
                && j.meta.as_object().is_some_and(|m| m.is_empty())
        })
    }

    /// Delay in milliseconds from the database's `now()` (0 for "now"), or the absolute time.
    pub(crate) fn schedule_parts(&self) -> (Option<i64>, Option<DateTime<Utc>>) {
        self.schedule.parts()
    }
}

impl Schedule {
    /// Delay in milliseconds from the database's `now()` (0 for "now"), or the absolute time.
    pub(crate) fn parts(self) -> (Option<i64>, Option<DateTime<Utc>>) {
        match self {
            Schedule::Now => (Some(0), None),
            Schedule::In(d) => (Some(d.as_millis().min(i64::MAX as u128) as i64), None),
            Schedule::At(t) => (None, Some(t)),
        }
    }
}

/// What an insert does when a unique job of the same key is already there (see
/// [`crate::UniqueOptions::on_conflict`]).
///
/// Replacing touches only a duplicate that waits (`available`, `scheduled`, `retryable`): one
/// that runs or has finished is kept as it is, and the insert reports a plain conflict. The
/// replacement happens under the unique index's row lock, so concurrent inserts of one key each
/// either add the row or replace it, one after another, and the last one's values stay. Repeats
/// of one key within a single `insert_all` batch are answered with the first and replace
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Keep the existing job as it is and return it (the default).
    #[default]
    Keep,
    /// Give the waiting duplicate the new job's args.
    ReplaceArgs,
    /// Give the waiting duplicate the new job's due time (debounce: "one digest 10 minutes after
    /// the last change" is `schedule_in(10 min)` with this policy).
    Reschedule,
    /// Both: the new args and the new due time.
    Replace,
}

impl OnConflict {
    /// As bits for the engines' statements: 1 replaces the args, 2 the due time.
    pub fn bits(self) -> i16 {
        match self {
            OnConflict::Keep => 0,
            OnConflict::ReplaceArgs => 1,
            OnConflict::Reschedule => 2,
            OnConflict::Replace => 3,
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
    /// True when that existing job waited and took the new job's args and/or due time (its
    /// [`OnConflict`] policy); `job` is then the row as replaced.
    pub replaced: bool,
}

impl InsertedJob {
    /// The new row of `job`, from its input and what only the database knew: its id, due time
    /// and the insert's now (its `inserted_at`; due after it means scheduled). Engines build it
    /// this way instead of reading back every column they just wrote.
    pub(crate) fn new_row(job: NewJob, id: i64, scheduled_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        use super::JobState;
        InsertedJob {
            job: JobRow {
                id,
                state: if scheduled_at > now { JobState::Scheduled } else { JobState::Available },
                queue: job.queue,
                worker: job.worker.to_string(),
                args: job.args,
                meta: job.meta,
                tags: job.tags,
                errors: Vec::new(),
                attempt: 0,
                max_attempts: job.max_attempts,
                priority: job.priority,
                weight: job.weight,
                partition_key: job.partition_key,
                inserted_at: now,
                scheduled_at,
                attempted_at: None,
                attempted_by: None,
                completed_at: None,
                discarded_at: None,
                cancelled_at: None,
                unreadable: None,
            },
            conflict: false,
            replaced: false,
        }
    }
}
