//! Makes due `scheduled` and `retryable` jobs available, sleeping exactly until the next one is
//! due (or the poll interval, whichever is sooner), so due times hold across restarts and
//! without a busy loop.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::backoff::reconnect_delay as backoff;

/// Rows staged per statement.
const STAGE_LIMIT: u32 = 5_000;

pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut failures = 0u32;
    loop {
        let wait = match shared.engine.stage(STAGE_LIMIT).await {
            Ok(report) => {
                failures = 0;
                for name in &report.queues {
                    if let Some(q) = shared.queues.get(name) {
                        q.hint_work();
                    }
                }
                if report.staged >= u64::from(STAGE_LIMIT) {
                    continue;
                }
                report.next_due_in.map_or(shared.config.poll_interval, |d| d.min(shared.config.poll_interval))
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(target: "jobsmith", error = %e, "jobsmith staging failed; backing off");
                backoff(failures)
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = shared.stager_wake.notified() => {}
            // +1 ms so a row due at exactly the deadline is due when we look.
            _ = tokio::time::sleep(wait + Duration::from_millis(1)) => {}
        }
    }
}
