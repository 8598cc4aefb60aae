//! The reconciler: on every node with queues, every `rescue_interval`, hands back the claims this
//! node lost (see `runtime/claims.rs` for why this is safe).

use std::time::Duration;

use super::Service;
use crate::error::{Error, Result};
use crate::runtime::claims::{RECONCILE_DEADLINE, Reconciler as Ledger};
use crate::runtime::config::Config;
use crate::runtime::shared::Shared;

/// The reconciler's settings.
#[derive(Debug, Clone)]
pub(crate) struct ReconcilerConfig {
    /// Time between two passes: the runtime's rescue interval.
    pub(crate) interval: Duration,
    /// The longest one pass may take.
    pub(crate) deadline: Duration,
}

impl From<&Config> for ReconcilerConfig {
    fn from(config: &Config) -> Self {
        ReconcilerConfig { interval: config.rescue_interval, deadline: RECONCILE_DEADLINE }
    }
}

/// See the module doc.
pub(crate) struct ClaimsReconciler {
    pub(crate) config: ReconcilerConfig,
    /// What the last pass suspected.
    pub(crate) ledger: Ledger,
}

/// The jobs one pass handed back.
#[derive(Debug)]
pub(crate) struct ReconcilerReport {
    /// Their ids.
    pub(crate) handed_back: Vec<i64>,
}

impl super::Report for ReconcilerReport {
    fn rows(&self) -> u64 {
        self.handed_back.len() as u64
    }
}

impl Service for ClaimsReconciler {
    const NAME: &'static str = "reconciler";
    type Report = ReconcilerReport;

    fn interval(&self) -> Duration {
        self.config.interval
    }

    async fn run_once(&mut self, shared: &Shared) -> Result<ReconcilerReport> {
        let deadline = self.config.deadline;
        match tokio::time::timeout(deadline, self.ledger.round(shared)).await {
            Ok(handed_back) => Ok(ReconcilerReport { handed_back: handed_back? }),
            Err(_) => {
                Err(Error::Unexpected(format!("claim reconciliation did not complete within {deadline:?}")))
            }
        }
    }
}
