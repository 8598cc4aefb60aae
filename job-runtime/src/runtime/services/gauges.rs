//! The gauges (leader only): jobs per queue and state, refreshed by the leader alone so a cluster
//! does not run the count on every node. The states a job can still leave are counted on every
//! pass, through the partial indexes; the finished states, which mean reading every finished row
//! (millions, with a long retention), only on every [`FULL_EVERY`]th pass, their last counts
//! reported in between.

use std::collections::HashSet;
use std::time::Duration;

use super::Service;
use crate::error::Result;
use crate::runtime::config::Config;
use crate::runtime::shared::Shared;
use crate::types::StateCount;

/// Every how many passes the finished states are counted too (5 minutes at the default interval).
pub(crate) const FULL_EVERY: u32 = 30;

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
    /// The finished states' counts of the last full pass.
    pub(crate) finished: Vec<StateCount>,
    /// Passes until the next full one (0: this one).
    pub(crate) until_full: u32,
}

impl Gauges {
    pub(crate) fn new(config: GaugesConfig) -> Self {
        Gauges { config, previous: HashSet::new(), finished: Vec::new(), until_full: 0 }
    }
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
        let counts = if self.until_full == 0 {
            let all = shared.engine.count_by_state().await?;
            self.finished = all.iter().filter(|c| c.state.is_final()).cloned().collect();
            self.until_full = FULL_EVERY;
            all
        } else {
            let mut counts = shared.engine.count_unfinished().await?;
            counts.extend(self.finished.iter().cloned());
            counts
        };
        self.until_full -= 1;
        crate::telemetry::state_gauges(&counts, &mut self.previous);
        Ok(GaugesReport { series: counts.len() })
    }
}
