//! The vacuumer (leader only, PostgreSQL): vacuums the jobs table once it holds many dead row
//! versions. Every job leaves several (its claim, its result and its pruning are updates that
//! are never HOT), and autovacuum, waking once a minute by default, does not keep up with
//! thousands of jobs a second: the table and its fetch index would grow without bound
//! (docs/benchmarks.md, `RuntimeBuilder::vacuum`).

use std::time::Duration;

use super::Service;
use crate::error::Result;
use crate::runtime::shared::Shared;

/// See the module doc.
pub(crate) struct Vacuumer {
    /// Dead row versions at which to vacuum.
    pub(crate) min_dead: u64,
    /// Time between two looks.
    pub(crate) interval: Duration,
}

/// What one pass did.
#[derive(Debug, Default)]
pub(crate) struct VacuumReport {
    /// Dead row versions the table held when it was vacuumed; 0 when it was not.
    pub(crate) dead: u64,
}

impl super::Report for VacuumReport {
    fn log_at_info(&self) -> bool {
        false
    }

    fn rows(&self) -> u64 {
        self.dead
    }
}

impl Service for Vacuumer {
    const NAME: &'static str = "vacuumer";
    type Report = VacuumReport;

    fn interval(&self) -> Duration {
        self.interval
    }

    fn leader_only(&self) -> bool {
        true
    }

    async fn run_once(&mut self, shared: &Shared) -> Result<VacuumReport> {
        let dead = shared.engine.vacuum_jobs(self.min_dead).await?.unwrap_or(0);
        if dead > 0 {
            tracing::info!(target: "jobsmith", dead, "jobsmith vacuumed the jobs table");
        }
        Ok(VacuumReport { dead })
    }
}
