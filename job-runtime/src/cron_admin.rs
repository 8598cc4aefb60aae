//! Cron entries managed at run time ([`Db::cron`](crate::Db::cron),
//! [`Runtime::cron`](crate::Runtime::cron)): stored in the database beside the entries of the
//! leader's code, picked up by the leader within a second, shown by `jobsmith cron list` and the
//! dashboard's `/cron` page (ADR 30).

use chrono::{DateTime, Utc};

use crate::cron::{CronEntry, MissedSlots, Schedule};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::insert::{check_meta, check_priority, check_queue};
use crate::types::{CronEntryRow, CronEntryWrite, InsertedJob, JobTemplate, MAX_WEIGHT};

/// The longest name a cron entry may have, in bytes.
pub const MAX_CRON_NAME_BYTES: usize = 200;

/// Cron entries at run time, over one database. From [`Db::cron`](crate::Db::cron) or
/// [`Runtime::cron`](crate::Runtime::cron).
///
/// ```
/// # use jobsmith::prelude::*;
/// #[jobsmith::job]
/// async fn daily_report(clinic: String) -> Result<(), String> { Ok(()) }
/// # #[tokio::main] async fn main() -> jobsmith::Result<()> {
/// let db = jobsmith::Db::connect("sqlite::memory:").await?;
/// db.migrate().await?;
/// // Typed: the entry names its job type through the job's own struct.
/// let entry = jobsmith::cron::CronEntry::new("0 6 * * MON-FRI", DailyReport { clinic: "north".into() })?
///     .named("north-report")
///     .timezone("Europe/Paris")?;
/// db.cron().save(entry).await?;
/// db.cron().pause("north-report").await?;
/// let listed = db.cron().list().await?;
/// assert_eq!(listed[0].entry.name, "north-report");
/// assert!(listed[0].entry.paused && listed[0].next_slot.is_none());
/// assert_eq!(listed[0].description, "At 06:00 AM, Monday through Friday");
/// let job = db.cron().run_now("north-report").await?; // one job now, outside the schedule
/// assert_eq!(job.job.args["clinic"], "north");
/// # Ok(()) }
/// ```
#[derive(Clone, Copy)]
pub struct CronAdmin<'a> {
    engine: &'a dyn Engine,
}

impl std::fmt::Debug for CronAdmin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CronAdmin").field("engine", &self.engine.name()).finish()
    }
}

/// A cron entry as listed: the stored row, its expression in words, and its next slot.
#[derive(Debug, Clone, PartialEq)]
pub struct CronListing {
    /// The stored entry and its bookkeeping.
    pub entry: CronEntryRow,
    /// The expression in words ([`Schedule::describe`]).
    pub description: String,
    /// The next slot, `None` while paused (or when the stored expression no longer parses).
    pub next_slot: Option<DateTime<Utc>>,
}

/// A cron entry given as text, for tools that do not link the job type (the CLI, the
/// dashboard): the job type by name, its args as JSON, and options that default to the job
/// type's declared ones, as the leader published them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CronEntrySpec {
    /// The entry's name.
    pub name: String,
    /// The expression.
    pub expr: String,
    /// The IANA time zone; UTC when `None`.
    pub timezone: Option<String>,
    /// The catch-up policy; [`MissedSlots::RunOnce`] when `None`.
    pub missed: Option<MissedSlots>,
    /// The job type's name (`Job::NAME`, as `jobsmith cron workers` lists them).
    pub worker: String,
    /// The args, as the job type encodes them.
    pub args: serde_json::Value,
    /// Another queue than the declared one.
    pub queue: Option<String>,
    /// Another priority than the declared one.
    pub priority: Option<u8>,
    /// Other attempts than the declared ones.
    pub max_attempts: Option<u32>,
    /// Other tags than the declared ones.
    pub tags: Option<Vec<String>>,
    /// Metadata (an object).
    pub meta: Option<serde_json::Value>,
}

impl<'a> CronAdmin<'a> {
    /// Over `engine` (the dashboard and the CLI hold one).
    pub fn new(engine: &'a dyn Engine) -> Self {
        CronAdmin { engine }
    }

    /// Adds `entry` to the stored entries, or replaces the stored entry of its name (its pause
    /// and last slot stay). Refused when the leader's code has an entry of that name.
    pub async fn save(self, entry: CronEntry) -> Result<()> {
        check_name(entry.name())?;
        self.engine.save_cron_entry(&entry.to_write()).await
    }

    /// [`CronAdmin::save`] for an entry given as text. Refuses, storing nothing: a malformed
    /// expression, time zone or option, and a job type the leader did not publish (the error lists
    /// the ones it did). The args are checked against the job type by the leader, which holds it:
    /// an entry whose args do not decode shows the reason in its `error` and fires nothing.
    pub async fn save_spec(self, spec: CronEntrySpec) -> Result<()> {
        check_name(&spec.name)?;
        let timezone = spec.timezone.unwrap_or_else(|| "UTC".to_string());
        Schedule::parse(&spec.expr, &timezone)?;
        let workers = self.engine.workers().await?;
        let Some(declared) = workers.iter().find(|w| w.name == spec.worker) else {
            let known: Vec<&str> = workers.iter().map(|w| w.name.as_str()).collect();
            return Err(Error::InvalidOption(if known.is_empty() {
                format!(
                    "no job type named `{}` is known: no leader has published its job types yet (start a node)",
                    spec.worker
                )
            } else {
                format!("no job type named `{}`; the leader runs: {}", spec.worker, known.join(", "))
            }));
        };
        let queue = spec.queue.unwrap_or_else(|| declared.queue.clone());
        check_queue(&queue)?;
        let priority = spec.priority.unwrap_or(declared.priority);
        check_priority(priority)?;
        let max_attempts = spec.max_attempts.unwrap_or(declared.max_attempts);
        if !(1..=crate::MAX_ATTEMPTS_LIMIT).contains(&max_attempts) {
            return Err(Error::InvalidOption(format!(
                "max_attempts must be 1 to {}, got {max_attempts}",
                crate::MAX_ATTEMPTS_LIMIT
            )));
        }
        let meta = spec.meta.unwrap_or_else(|| serde_json::json!({}));
        check_meta(&meta)?;
        let job = JobTemplate {
            worker: declared.name.clone(),
            queue,
            args: spec.args,
            meta,
            tags: spec.tags.unwrap_or_else(|| declared.tags.clone()),
            priority,
            max_attempts,
            weight: declared.weight.clamp(1, MAX_WEIGHT),
            partition_key: None,
        };
        let missed = spec.missed.unwrap_or_default().to_string();
        let write = CronEntryWrite { name: spec.name, expr: spec.expr, timezone, missed, job };
        self.engine.save_cron_entry(&write).await
    }

    /// Removes the stored entry `name`; `false` if there is none. Refused for a code entry.
    pub async fn remove(self, name: &str) -> Result<bool> {
        self.engine.remove_cron_entry(name).await
    }

    /// Pauses entry `name` (stored or in code): its slots pass without jobs until it is resumed,
    /// and are not caught up afterwards. `false` if there is no such entry.
    pub async fn pause(self, name: &str) -> Result<bool> {
        self.engine.pause_cron_entry(name, true).await
    }

    /// Resumes entry `name`; `false` if there is no such entry.
    pub async fn resume(self, name: &str) -> Result<bool> {
        self.engine.pause_cron_entry(name, false).await
    }

    /// Inserts one job of entry `name` now, outside its schedule (its meta says
    /// `"cron_run_now": true`). Paused entries run too: it is an operator's explicit ask.
    pub async fn run_now(self, name: &str) -> Result<InsertedJob> {
        self.engine
            .run_cron_entry(name)
            .await?
            .ok_or_else(|| Error::InvalidOption(format!("there is no cron entry named `{name}`")))
    }

    /// Every entry, in code (as the leader last published them) and stored, by name.
    pub async fn list(self) -> Result<Vec<CronListing>> {
        let now = self.engine.now().await?;
        let rows = self.engine.cron_entries().await?;
        Ok(rows
            .into_iter()
            .map(|entry| {
                let schedule = Schedule::parse(&entry.expr, &entry.timezone).ok();
                let description = schedule.as_ref().map_or_else(|| entry.expr.clone(), Schedule::describe);
                let next_slot = schedule.filter(|_| !entry.paused).and_then(|s| s.next_after(now));
                CronListing { entry, description, next_slot }
            })
            .collect())
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > MAX_CRON_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(Error::InvalidOption(format!(
            "a cron entry's name must be 1 to {MAX_CRON_NAME_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}
