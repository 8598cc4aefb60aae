//! The pruner (leader only): deletes finished rows past their retention, in bounded batches so no
//! statement holds many locks or runs long.

use std::time::Duration;

use super::Service;
use crate::engine::Retention;
use crate::error::Result;
use crate::runtime::config::Config;
use crate::runtime::shared::Shared;

/// The pruner's settings.
#[derive(Debug, Clone)]
pub(crate) struct PrunerConfig {
    /// Time between two passes.
    pub(crate) interval: Duration,
    /// How long finished rows are kept, per final state.
    pub(crate) retention: Retention,
    /// Most rows one statement deletes; a full batch is followed by another in the same pass.
    pub(crate) batch: u32,
}

impl From<&Config> for PrunerConfig {
    fn from(config: &Config) -> Self {
        PrunerConfig {
            interval: config.prune_interval,
            retention: config.retention,
            batch: config.prune_batch,
        }
    }
}

/// See the module doc.
pub(crate) struct Pruner {
    pub(crate) config: PrunerConfig,
}

/// What one prune pass did.
#[derive(Debug, Default)]
pub(crate) struct PruneReport {
    /// Rows deleted.
    pub(crate) pruned: u64,
    /// Statements run.
    pub(crate) statements: u32,
    /// Idle partitions' rate logs deleted.
    pub(crate) rate_logs: u64,
}

impl super::Report for PruneReport {
    fn log_at_info(&self) -> bool {
        false
    }

    fn rows(&self) -> u64 {
        self.pruned + self.rate_logs
    }
}

impl Service for Pruner {
    const NAME: &'static str = "pruner";
    type Report = PruneReport;

    fn interval(&self) -> Duration {
        self.config.interval
    }

    fn leader_only(&self) -> bool {
        true
    }

    async fn run_once(&mut self, shared: &Shared) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        loop {
            let n = shared.engine.prune(&self.config.retention, self.config.batch).await?;
            report.pruned += n;
            report.statements += 1;
            if n < u64::from(self.config.batch) {
                break;
            }
            tokio::task::yield_now().await;
        }
        report.rate_logs = shared.engine.prune_rate_logs().await?;
        if report.pruned > 0 {
            tracing::info!(target: "jobsmith", pruned = report.pruned, "jobsmith pruned finished jobs");
        }
        Ok(report)
    }
}
