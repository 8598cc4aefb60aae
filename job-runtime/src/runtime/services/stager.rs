//! The stager: makes due `scheduled` and `retryable` jobs available, and waits exactly until the
//! next one is due (or the poll interval, whichever is sooner), so due times hold across restarts
//! without a busy loop. Woken early when a result with a due time (retry, snooze) is written or a
//! scheduled job is inserted.

use std::time::Duration;

use tokio::sync::Notify;

use super::Service;
use crate::engine::StageReport;
use crate::error::Result;
use crate::runtime::config::Config;
use crate::runtime::shared::Shared;

/// The stager's settings.
#[derive(Debug, Clone)]
pub(crate) struct StagerConfig {
    /// The longest wait between two passes: the runtime's poll interval.
    pub(crate) poll_interval: Duration,
    /// Most rows one statement stages; a full batch runs the next pass at once.
    pub(crate) batch: u32,
}

impl From<&Config> for StagerConfig {
    fn from(config: &Config) -> Self {
        StagerConfig { poll_interval: config.poll_interval, batch: config.stage_batch }
    }
}

/// See the module doc.
pub(crate) struct Stager {
    pub(crate) config: StagerConfig,
}

/// One staging pass, and when the next is due.
#[derive(Debug)]
pub(crate) struct StagerReport {
    /// What the engine did.
    pub(crate) stage: StageReport,
    /// The batch was full: look again at once.
    full: bool,
}

impl super::Report for StagerReport {
    fn log_at_info(&self) -> bool {
        false
    }

    fn rows(&self) -> u64 {
        self.stage.staged
    }

    fn run_again_in(&self) -> Option<Duration> {
        if self.full {
            return Some(Duration::ZERO);
        }
        // +1 ms so a row due at exactly the deadline is due when we look.
        self.stage.next_due_in.map(|d| d + Duration::from_millis(1))
    }
}

impl Service for Stager {
    const NAME: &'static str = "stager";
    type Report = StagerReport;

    fn interval(&self) -> Duration {
        self.config.poll_interval
    }

    fn wake<'a>(&self, shared: &'a Shared) -> Option<&'a Notify> {
        Some(&shared.stager_wake)
    }

    async fn run_once(&mut self, shared: &Shared) -> Result<StagerReport> {
        let stage = shared.engine.stage(self.config.batch).await?;
        for name in &stage.queues {
            if let Some(q) = shared.queues.get(name) {
                q.hint_work();
            }
        }
        let full = stage.staged >= u64::from(self.config.batch);
        Ok(StagerReport { stage, full })
    }
}
