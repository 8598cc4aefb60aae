//! Metrics, through the `metrics` facade: the application installs any recorder (Prometheus,
//! StatsD, ...) and jobsmith's counters, histograms and gauges flow to it. Names and labels are
//! listed in `docs/observability.md`; keep the two in step.

use std::collections::HashSet;
use std::time::Duration;

use crate::types::{AckKind, StateCount};

/// Counter: jobs inserted (new rows, not unique conflicts). Labels: queue, worker.
pub const INSERTED: &str = "jobsmith_jobs_inserted_total";
/// Counter: attempts that completed the job. Labels: queue, worker.
pub const COMPLETED: &str = "jobsmith_jobs_completed_total";
/// Counter: failed attempts (errors, panics, timeouts), whether retried or discarded.
pub const FAILED: &str = "jobsmith_jobs_failed_total";
/// Counter: failed attempts that will be retried.
pub const RETRIED: &str = "jobsmith_jobs_retried_total";
/// Counter: jobs discarded (out of attempts, undecodable, or `Outcome::Discard`).
pub const DISCARDED: &str = "jobsmith_jobs_discarded_total";
/// Counter: jobs cancelled while running or by `Outcome::Cancel`.
pub const CANCELLED: &str = "jobsmith_jobs_cancelled_total";
/// Counter: jobs snoozed.
pub const SNOOZED: &str = "jobsmith_jobs_snoozed_total";
/// Counter: jobs rescued from dead nodes (no labels: rescue works across queues).
pub const RESCUED: &str = "jobsmith_jobs_rescued_total";
/// Histogram (seconds): from due (`scheduled_at`) to start. Labels: queue, worker.
pub const QUEUE_WAIT: &str = "jobsmith_job_queue_wait_seconds";
/// Histogram (seconds): run time of an attempt. Labels: queue, worker.
pub const RUN_TIME: &str = "jobsmith_job_run_seconds";
/// Gauge: jobs per state per queue, refreshed by the leader. Labels: queue, state.
pub const JOBS: &str = "jobsmith_jobs";

pub(crate) fn inserted(queue: &str, worker: &str, count: u64) {
    metrics::counter!(INSERTED, "queue" => queue.to_string(), "worker" => worker.to_string())
        .increment(count);
}

/// Records one finished attempt.
pub(crate) fn finished(queue: &str, worker: &str, kind: &AckKind, wait: Duration, run: Duration) {
    let labels = [("queue", queue.to_string()), ("worker", worker.to_string())];
    metrics::histogram!(QUEUE_WAIT, &labels).record(wait.as_secs_f64());
    metrics::histogram!(RUN_TIME, &labels).record(run.as_secs_f64());
    let names: &[&'static str] = match kind {
        AckKind::Complete | AckKind::Record { .. } | AckKind::Committed => &[COMPLETED],
        AckKind::Retry { .. } => &[FAILED, RETRIED],
        // A discard after a failure is also a failed attempt; `Outcome::Discard` counts as failed
        // too, since the job cannot succeed.
        AckKind::Discard { .. } => &[FAILED, DISCARDED],
        AckKind::Cancel { .. } => &[CANCELLED],
        AckKind::Snooze { .. } => &[SNOOZED],
        AckKind::HandBack { .. } | AckKind::Release => &[],
    };
    for name in names {
        metrics::counter!(*name, &labels).increment(1);
    }
}

pub(crate) fn rescued(n: u64) {
    metrics::counter!(RESCUED).increment(n);
}

/// Sets the per-state gauges; pairs seen before but absent now go to zero.
pub(crate) fn state_gauges(counts: &[StateCount], previous: &mut HashSet<(String, String)>) {
    let mut now = HashSet::new();
    for c in counts {
        let key = (c.queue.clone(), c.state.as_str().to_string());
        metrics::gauge!(JOBS, "queue" => key.0.clone(), "state" => key.1.clone()).set(c.count as f64);
        now.insert(key);
    }
    for (queue, state) in previous.difference(&now) {
        metrics::gauge!(JOBS, "queue" => queue.clone(), "state" => state.clone()).set(0.0);
    }
    *previous = now;
}

/// Counter: passes of a background service. Labels: service (stager, reconciler, heartbeat,
/// rescuer, pruner, cron, gauges), outcome (`ok`, `error`).
pub const SERVICE_PASSES: &str = "jobsmith_service_passes_total";
/// Counter: rows a background service's passes changed (staged, handed back, rescued, pruned,
/// inserted by cron). Labels: service.
pub const SERVICE_ROWS: &str = "jobsmith_service_rows_total";

/// Records one pass of a background service.
pub(crate) fn service_pass(service: &'static str, ok: bool, rows: u64) {
    let outcome = if ok { "ok" } else { "error" };
    metrics::counter!(SERVICE_PASSES, "service" => service, "outcome" => outcome).increment(1);
    if rows > 0 {
        metrics::counter!(SERVICE_ROWS, "service" => service).increment(rows);
    }
}
