//! Cron (leader only): inserts the jobs of every due slot of every entry, in code and stored in
//! the database, and wakes for the next slot of any entry.
//!
//! Each pass reads the stored entries (one query), so an entry added, changed, paused or removed
//! at run time is picked up within a pass, without a restart. The leader publishes its code
//! entries and job types when it takes the lead and every minute after (ADR 30).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::Service;
use crate::cron::{CronEntry, due_slots};
use crate::error::Result;
use crate::runtime::config::Config;
use crate::runtime::shared::Shared;
use crate::types::{CronEntryRow, CronFire, CronSource, WorkerRow};

/// How often a leader publishes its catalog again while it leads (it always does on taking the
/// lead): a catalog another leader wrote in between is put right within this time.
const PUBLISH_EVERY: Duration = Duration::from_secs(60);

/// A gap between passes longer than this means the lead was lost and taken again.
const LEAD_GAP: Duration = Duration::from_secs(5);

/// Cron's settings.
#[derive(Debug, Clone)]
pub(crate) struct CronConfig {
    /// The longest time between two looks (a pass also wakes for the next slot).
    pub(crate) interval: Duration,
}

impl From<&Config> for CronConfig {
    fn from(config: &Config) -> Self {
        CronConfig { interval: config.cron_interval }
    }
}

/// See the module doc.
pub(crate) struct Cron {
    pub(crate) config: CronConfig,
    /// The entries of this node's code.
    pub(crate) entries: Arc<Vec<CronEntry>>,
    /// When this node last published its catalog, and last ran a pass.
    pub(crate) published_at: Option<Instant>,
    pub(crate) last_pass: Option<Instant>,
}

impl Cron {
    pub(crate) fn new(config: CronConfig, entries: Arc<Vec<CronEntry>>) -> Self {
        Cron { config, entries, published_at: None, last_pass: None }
    }

    /// Writes this node's code entries and job types, when it has just taken the lead or a
    /// minute has passed.
    async fn publish_if_due(&mut self, shared: &Shared) -> Result<()> {
        let retaken = self.last_pass.is_none_or(|t| t.elapsed() > LEAD_GAP);
        self.last_pass = Some(Instant::now());
        if !retaken && self.published_at.is_some_and(|t| t.elapsed() < PUBLISH_EVERY) {
            return Ok(());
        }
        let code: Vec<_> = self.entries.iter().map(CronEntry::to_write).collect();
        let workers: Vec<WorkerRow> = shared
            .registry
            .iter()
            .map(|w| WorkerRow {
                name: w.name.to_string(),
                queue: w.options.queue.to_string(),
                priority: w.options.priority,
                max_attempts: w.options.max_attempts,
                weight: w.options.weight,
                tags: w.options.tags.iter().map(|t| t.to_string()).collect(),
            })
            .collect();
        shared.engine.publish_catalog(&code, &workers).await?;
        self.published_at = Some(Instant::now());
        Ok(())
    }
}

/// What one cron pass did.
#[derive(Debug, Default)]
pub(crate) struct CronReport {
    /// Jobs inserted.
    pub(crate) inserted: u64,
    /// Entries that fired.
    pub(crate) fired: Vec<String>,
    /// Time until the next slot of any entry.
    pub(crate) next_in: Option<Duration>,
}

impl super::Report for CronReport {
    fn log_at_info(&self) -> bool {
        false
    }

    fn rows(&self) -> u64 {
        self.inserted
    }

    fn run_again_in(&self) -> Option<Duration> {
        self.next_in
    }
}

impl Service for Cron {
    const NAME: &'static str = "cron";
    type Report = CronReport;

    fn interval(&self) -> Duration {
        self.config.interval
    }

    fn leader_only(&self) -> bool {
        true
    }

    async fn run_once(&mut self, shared: &Shared) -> Result<CronReport> {
        self.publish_if_due(shared).await?;
        let mut report = CronReport::default();
        let rows = shared.engine.cron_entries().await?;
        let now = shared.engine.now().await?;
        let stored: HashMap<&str, &CronEntryRow> = rows.iter().map(|r| (r.name.as_str(), r)).collect();
        for entry in self.entries.iter() {
            let row = stored.get(entry.name()).copied();
            let (last, paused) = (row.and_then(|r| r.last_slot), row.is_some_and(|r| r.paused));
            fire_due(shared, entry, last, paused, now, &mut report).await?;
        }
        for row in rows.iter().filter(|r| r.source == CronSource::Database) {
            match CronEntry::from_row(row, &shared.registry) {
                Ok(entry) => {
                    if row.error.is_some() {
                        shared.engine.set_cron_error(&row.name, None).await?;
                    }
                    fire_due(shared, &entry, row.last_slot, row.paused, now, &mut report).await?;
                }
                Err(why) => {
                    // Said once, on the row (the cron page and `jobsmith cron list` show it), not
                    // every second in the log.
                    if row.error.as_deref() != Some(why.as_str()) {
                        tracing::warn!(target: "jobsmith", entry = %row.name, error = %why, "jobsmith cron entry cannot run");
                        shared.engine.set_cron_error(&row.name, Some(&why)).await?;
                    }
                }
            }
        }
        Ok(report)
    }
}

/// Fires `entry`'s due slots (a paused entry records them as passed, inserting nothing), and
/// notes its next slot in the report.
async fn fire_due(
    shared: &Shared,
    entry: &CronEntry,
    last: Option<DateTime<Utc>>,
    paused: bool,
    now: DateTime<Utc>,
    report: &mut CronReport,
) -> Result<()> {
    let due = due_slots(entry.schedule(), last, now, entry.missed_policy());
    if let Some(new_last) = due.last {
        let jobs =
            if paused { Vec::new() } else { due.fire.iter().map(|slot| entry.job_for(*slot)).collect() };
        let n = jobs.len();
        let fire = CronFire { name: entry.name(), expected: last, new_last, jobs };
        if shared.engine.cron_fire(fire).await? && n > 0 {
            report.inserted += n as u64;
            tracing::info!(target: "jobsmith", entry = entry.name(), slots = n, "jobsmith cron fired");
            report.fired.push(entry.name().to_string());
        }
    }
    if !paused && let Some(t) = entry.schedule().next_after(now) {
        let d = (t - now).to_std().unwrap_or_default();
        report.next_in = Some(report.next_in.map_or(d, |n| n.min(d)));
    }
    Ok(())
}
