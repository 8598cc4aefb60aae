//! Background services: everything a node does on a timer rather than per job.
//!
//! Every service has one shape: a config with a default per field (made from the runtime's
//! [`Config`](super::config::Config)), a `run_once` that does one pass and returns a report of
//! what it did, and the one loop here ([`run`]) that calls it, records the report (tracing and
//! the `jobsmith_service_*` metrics), and waits for the next pass. A new service is one file
//! implementing [`Service`], and one line in `lifecycle.rs` that spawns it in the right phase.
//!
//! | service | file | runs on | what one pass does |
//! | --- | --- | --- | --- |
//! | stager | `stager.rs` | nodes with queues | makes due scheduled/retryable rows available |
//! | reconciler | `reconciler.rs` | nodes with queues | hands back claims this node lost |
//! | heartbeat | `heartbeat.rs` | every node | heartbeat row, leader lease |
//! | rescuer | `rescuer.rs` | the leader | jobs of dead nodes back to available |
//! | pruner | `pruner.rs` | the leader | deletes finished rows past retention |
//! | vacuumer | `vacuumer.rs` | the leader | vacuums the jobs table when autovacuum falls behind |
//! | cron | `cron.rs` | the leader | inserts the jobs of due cron slots |
//! | gauges | `gauges.rs` | the leader | refreshes the jobs-per-state gauges |

pub(crate) mod cron;
pub(crate) mod gauges;
pub(crate) mod heartbeat;
pub(crate) mod pruner;
pub(crate) mod reconciler;
pub(crate) mod rescuer;
pub(crate) mod stager;
pub(crate) mod vacuumer;

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use crate::backoff::reconnect_delay;
use crate::error::Result;

/// One background service. See the module doc.
pub(crate) trait Service: Send + 'static {
    /// The name in logs and in the `service` label of the metrics.
    const NAME: &'static str;
    /// What one pass did.
    type Report: Report;

    /// The time between two passes (a report may ask for the next one sooner).
    fn interval(&self) -> Duration;

    /// Whether the service works only while this node leads. Such a service also runs at once
    /// when the node becomes leader.
    fn leader_only(&self) -> bool {
        false
    }

    /// A notification that makes the service run its next pass now.
    fn wake<'a>(&self, _shared: &'a Shared) -> Option<&'a Notify> {
        None
    }

    /// One pass.
    fn run_once(&mut self, shared: &Shared) -> impl Future<Output = Result<Self::Report>> + Send;

    /// Once, after the last pass, when the service is stopped.
    fn stopped(&mut self, _shared: &Shared) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// What one pass of a service did.
pub(crate) trait Report: Debug + Send {
    /// Rows the pass changed (staged, rescued, pruned, inserted), counted in
    /// `jobsmith_service_rows_total`; a pass that changed rows is logged at info level.
    fn rows(&self) -> u64 {
        0
    }

    /// Whether a pass that changed rows is logged at info level by the loop. Services that log
    /// their own line (rescuer, pruner, cron) or change rows all the time (the stager) say no:
    /// their passes are logged at debug level.
    fn log_at_info(&self) -> bool {
        true
    }

    /// Run the next pass after this rather than after the service's interval, if sooner.
    fn run_again_in(&self) -> Option<Duration> {
        None
    }
}

impl Report for () {}

/// The one loop of every service: a pass (only while leading, for a leader-only service), its
/// report recorded, then a wait of the interval (or what the report asks, or a growing backoff
/// after a failure, never longer than the interval), until `stop` fires; then
/// [`Service::stopped`].
pub(crate) async fn run<S: Service>(mut service: S, shared: Arc<Shared>, stop: CancellationToken) {
    let mut failures = 0u32;
    loop {
        let mut wait = service.interval();
        if !service.leader_only() || shared.is_leader() {
            match service.run_once(&shared).await {
                Ok(report) => {
                    failures = 0;
                    record(S::NAME, &report);
                    if let Some(sooner) = report.run_again_in() {
                        wait = wait.min(sooner);
                    }
                }
                Err(e) => {
                    failures += 1;
                    crate::telemetry::service_pass(S::NAME, false, 0);
                    tracing::warn!(target: "jobsmith", error = %e, service = S::NAME, failures, "jobsmith service pass failed; will retry");
                    wait = wait.min(reconnect_delay(failures));
                }
            }
        }
        let wake = service.wake(&shared);
        let leader_wake = service.leader_only().then_some(&shared.leader_wake);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = notified(wake) => {}
            _ = notified(leader_wake) => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    service.stopped(&shared).await;
}

/// Waits for `notify`, or forever without one.
async fn notified(notify: Option<&Notify>) {
    match notify {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

/// A report reaches the metrics always, and the logs: debug for every pass, info when it changed
/// rows.
fn record<R: Report>(service: &'static str, report: &R) {
    let rows = report.rows();
    crate::telemetry::service_pass(service, true, rows);
    if rows > 0 && report.log_at_info() {
        tracing::info!(target: "jobsmith", service, rows, report = ?report, "jobsmith service pass");
    } else {
        tracing::debug!(target: "jobsmith", service, report = ?report, "jobsmith service pass");
    }
}
