//! Cron entries as stored: the rows of `cron_entries` and `workers` (ADR 30).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{JobState, NewJob, OnConflict, Schedule};

/// Where a cron entry is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CronSource {
    /// In the leader's code (`RuntimeBuilder::cron`, `#[job(cron = ...)]`): shown everywhere,
    /// changed only by a deploy; it may be paused at run time.
    Code,
    /// Stored at run time (`Db::cron`, `jobsmith cron add`, the dashboard): added, changed,
    /// paused and removed without a restart.
    Database,
}

impl CronSource {
    /// `code` or `database`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            CronSource::Code => "code",
            CronSource::Database => "database",
        }
    }

    /// Reads the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "code" => Some(CronSource::Code),
            "database" => Some(CronSource::Database),
            _ => None,
        }
    }
}

/// What every job of a cron entry is inserted with (the entry's slot and name go into its meta
/// when it fires). Stored as JSON, so a process without the job type (the CLI, the dashboard) can
/// show and insert it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobTemplate {
    /// The job type's name (`Job::NAME`).
    pub worker: String,
    /// The queue.
    pub queue: String,
    /// The job's args, as its type encodes them.
    pub args: serde_json::Value,
    /// Metadata (an object).
    #[serde(default = "empty_object")]
    pub meta: serde_json::Value,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Priority, 0 (first) to 9.
    pub priority: u8,
    /// Attempts before discard.
    pub max_attempts: u32,
    /// Slots of its queue one run takes.
    #[serde(default = "one")]
    pub weight: u16,
    /// The partition, if any.
    #[serde(default)]
    pub partition_key: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

fn one() -> u16 {
    1
}

impl JobTemplate {
    /// The template of a built job (its schedule and uniqueness are the entry's business).
    pub fn of(job: &NewJob) -> Self {
        JobTemplate {
            worker: job.worker.to_string(),
            queue: job.queue.clone(),
            args: job.args.clone(),
            meta: job.meta.clone(),
            tags: job.tags.clone(),
            priority: job.priority,
            max_attempts: job.max_attempts,
            weight: job.weight,
            partition_key: job.partition_key.clone(),
        }
    }

    /// A job to insert now, from the template.
    pub fn to_job(&self) -> NewJob {
        NewJob {
            worker: Cow::Owned(self.worker.clone()),
            queue: self.queue.clone(),
            args: self.args.clone(),
            meta: if self.meta.is_object() { self.meta.clone() } else { empty_object() },
            tags: self.tags.clone(),
            priority: self.priority,
            weight: self.weight,
            partition_key: self.partition_key.clone(),
            max_attempts: self.max_attempts,
            schedule: Schedule::Now,
            unique_key: None,
            unique_states: None,
            on_conflict: OnConflict::default(),
        }
    }
}

/// A cron entry to store (add or replace) as a [`CronSource::Database`] entry, or to register
/// as the leader's [`CronSource::Code`] entry.
#[derive(Debug, Clone, PartialEq)]
pub struct CronEntryWrite {
    /// The entry's name, its key.
    pub name: String,
    /// The expression.
    pub expr: String,
    /// The IANA time zone.
    pub timezone: String,
    /// The catch-up policy, in its stored form (`run_once`, `skip`, `run_all:<max>`).
    pub missed: String,
    /// The job each slot inserts.
    pub job: JobTemplate,
}

/// A stored cron entry with its bookkeeping, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct CronEntryRow {
    /// The entry's name.
    pub name: String,
    /// Where it is defined.
    pub source: CronSource,
    /// The expression.
    pub expr: String,
    /// The IANA time zone.
    pub timezone: String,
    /// The catch-up policy, stored form.
    pub missed: String,
    /// Paused: its slots pass without inserting jobs.
    pub paused: bool,
    /// The job each slot inserts.
    pub job: JobTemplate,
    /// Why the leader cannot run it, if it cannot.
    pub error: Option<String>,
    /// The newest slot recorded (fired, or passed while paused).
    pub last_slot: Option<DateTime<Utc>>,
    /// The job the newest fired slot inserted, with its state (`None` once pruned).
    pub last_job: Option<(i64, Option<JobState>)>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

/// A job type a node runs, with its declared options, as the leader published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRow {
    /// `Job::NAME`.
    pub name: String,
    /// The declared queue.
    pub queue: String,
    /// The declared priority.
    pub priority: u8,
    /// The declared attempts.
    pub max_attempts: u32,
    /// The declared weight.
    pub weight: u16,
    /// The declared tags.
    pub tags: Vec<String>,
}
