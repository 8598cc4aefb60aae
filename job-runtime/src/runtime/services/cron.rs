//! Cron (leader only): inserts the jobs of every due slot of every entry, and wakes for the next
//! slot of any entry.

use std::sync::Arc;
use std::time::Duration;

use super::Service;
use crate::cron::{CronEntry, due_slots};
use crate::error::Result;
use crate::runtime::config::Config;
use crate::runtime::shared::Shared;
use crate::types::CronFire;

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
    pub(crate) entries: Arc<Vec<CronEntry>>,
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
        let mut report = CronReport::default();
        let now = shared.engine.now().await?;
        for entry in self.entries.iter() {
            let last = shared.engine.cron_last(entry.name()).await?;
            let due = due_slots(entry.schedule(), last, now, entry.missed_policy());
            if let Some(new_last) = due.last {
                let jobs = due.fire.iter().map(|slot| entry.job_for(*slot)).collect::<Vec<_>>();
                let n = jobs.len();
                let fire = CronFire { name: entry.name(), expected: last, new_last, jobs };
                if shared.engine.cron_fire(fire).await? && n > 0 {
                    report.inserted += n as u64;
                    tracing::info!(target: "jobsmith", entry = entry.name(), slots = n, "jobsmith cron fired");
                    report.fired.push(entry.name().to_string());
                }
            }
            if let Some(t) = entry.schedule().next_after(now) {
                let d = (t - now).to_std().unwrap_or_default();
                report.next_in = Some(report.next_in.map_or(d, |n| n.min(d)));
            }
        }
        Ok(report)
    }
}
