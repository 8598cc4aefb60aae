//! The gauges (leader only): jobs per queue and state, refreshed by the leader alone so a cluster
//! does not run the count on every node.

use std::collections::HashSet;
use std::time::Duration;

use super::Service;
use crate::error::Result;
use crate::runtime::config::Config;
use crate::runtime::shared::Shared;

/// The gauges' settings.
#[derive(Debug, Clone)]
pub(crate) struct GaugesConfig {
    /// Time between two refreshes.
    pub(crate) interval: Duration,
}

impl From<&Config> for GaugesConfig {
    fn from(config: &Config) -> Self {
        GaugesConfig { interval: config.gauge_interval }
    }
}

/// See the module doc.
pub(crate) struct Gauges {
    pub(crate) config: GaugesConfig,
    /// The (queue, state) pairs set last time, so pairs that emptied are set to zero.
    pub(crate) previous: HashSet<(String, String)>,
}

/// What one refresh saw.
#[derive(Debug)]
pub(crate) struct GaugesReport {
    /// (queue, state) pairs with jobs.
    #[expect(dead_code, reason = "read through Debug, in the pass's log line")]
    pub(crate) series: usize,
}

impl super::Report for GaugesReport {}

impl Service for Gauges {
    const NAME: &'static str = "gauges";
    type Report = GaugesReport;

    fn interval(&self) -> Duration {
        self.config.interval
    }

    fn leader_only(&self) -> bool {
        true
    }

    async fn run_once(&mut self, shared: &Shared) -> Result<GaugesReport> {
        let counts = shared.engine.count_by_state().await?;
        crate::telemetry::state_gauges(&counts, &mut self.previous);
        Ok(GaugesReport { series: counts.len() })
    }
}
