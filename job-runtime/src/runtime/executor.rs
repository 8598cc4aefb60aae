//! Runs one fetched job, as a pipeline of small steps: resolve the worker, decode the args, run
//! under the timeout with panics caught, and turn what happened into an [`AckKind`].

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tracing::Instrument;

use super::control::{JobControl, StopReason};
use super::queue::{Claimed, QueueState, RatedClaim};
use super::shared::Shared;
use crate::app_state::States;
use crate::backoff::default_backoff;
use crate::context::JobContext;
use crate::engine::{Ack, AckKind, FetchedJob};
use crate::outcome::{EncodedOutcome, Outcome};
use crate::registry::Registry;

/// Runs a claimed job (holding `slots` of the queue's slots: its weight) to its end and hands
/// the result to the completer; then, keeping the slots, the next job waiting in the queue's
/// prefetch buffer, if any fits them. Frees the slots last.
pub(crate) async fn execute(shared: Arc<Shared>, queue: Arc<QueueState>, claimed: Claimed, slots: usize) {
    let mut next = Some((claimed, slots));
    let mut held = slots;
    while let Some((Claimed { job, control, rated }, slots)) = next {
        held = slots;
        let (took, released) = execute_one(&shared, job, control, rated).await;
        if released {
            // Back in the queue with nothing to wake a producer: look for it again now.
            queue.hint_work();
        } else {
            queue.claim_ahead.job_ran(took);
        }
        next = queue.next_claimed(held);
    }
    queue.finished(held);
}

/// Runs one job and sends its result; returns how long it held the slot, and whether it was
/// released unstarted instead of run: a job past its `start_by` (see [`RatedClaim::start_by`]).
async fn execute_one(
    shared: &Shared,
    job: FetchedJob,
    control: JobControl,
    rated: Option<RatedClaim>,
) -> (Duration, bool) {
    // A job from the buffer is registered already (so a cancel reached it while it waited); one
    // started straight from a fetch registers here.
    shared.running_jobs.lock().expect("running map").insert(job.id, control.clone());
    let span = tracing::info_span!(target: "jobsmith",
        "jobsmith.job",
        job.id = job.id,
        job.worker = %job.worker,
        job.queue = %job.queue,
        job.attempt = job.attempt,
        node = %shared.node,
        job.args = tracing::field::Empty,
        outcome = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    // A child of the span that inserted the job, when its meta carries one (feature `otel`).
    crate::trace_context::continue_in(&span, &job.meta);
    // Args may hold personal data: only with `RuntimeBuilder::log_args(true)`.
    if shared.config.log_args {
        span.record("job.args", tracing::field::display(&job.args));
    }
    let wait = (chrono::Utc::now() - job.scheduled_at).to_std().unwrap_or_default();
    let started = Instant::now();
    let limits = Limits { max_result_bytes: shared.config.max_result_bytes };
    let late = rated.as_ref().is_some_and(|r| Instant::now() > r.start_by);
    let kind = if late {
        // Claimed under a rate limit, but this node could not start it in time (it was starved
        // of CPU, say): run now, it could share a window with the next claims. Back to the queue.
        span.in_scope(|| tracing::debug!(target: "jobsmith", "rate-limited job not started in time"));
        AckKind::Release
    } else {
        run(&shared.registry, &shared.node, &shared.states, limits, Some(&shared.engine), &job, &control)
            .instrument(span.clone())
            .await
    };
    let run_time = started.elapsed();
    span.record("outcome", outcome_name(&kind));
    span.record("duration_ms", run_time.as_secs_f64() * 1000.0);
    crate::telemetry::finished(&job.queue, &job.worker, &kind, wait, run_time);
    span.in_scope(|| match &kind {
        AckKind::Complete | AckKind::Record { .. } | AckKind::Committed | AckKind::Snooze { .. } => {
            tracing::debug!(target: "jobsmith", "job finished")
        }
        AckKind::Retry { error, delay } => {
            tracing::warn!(target: "jobsmith", %error, retry_in_ms = delay.as_millis() as u64, "job failed; will retry")
        }
        AckKind::Discard { error } => tracing::warn!(target: "jobsmith", %error, "job discarded"),
        AckKind::Cancel { reason } => tracing::info!(target: "jobsmith", %reason, "job cancelled"),
        AckKind::HandBack { reason } => tracing::info!(target: "jobsmith", %reason, "job handed back"),
        AckKind::Release => tracing::info!(target: "jobsmith", "job released unstarted"),
    });
    shared.running_jobs.lock().expect("running map").remove(&job.id);
    if let (true, Some(rated)) = (late, rated) {
        shared.refund_rate_starts(&job.queue, rated.partition.as_deref(), vec![rated.stamp_ms]);
    }
    let ack = Ack { id: job.id, attempt: job.attempt, claim: Some(job.claim), kind };
    if ack.kind == AckKind::Committed {
        // Written already, in the job's own transaction: only the claim is let go.
        shared.claims.written(std::slice::from_ref(&ack));
    } else {
        shared.completer.send(ack);
    }
    (started.elapsed(), late)
}

fn outcome_name(kind: &AckKind) -> &'static str {
    match kind {
        AckKind::Complete | AckKind::Record { .. } | AckKind::Committed => "completed",
        AckKind::Retry { .. } => "retryable",
        AckKind::Discard { .. } => "discarded",
        AckKind::Cancel { .. } => "cancelled",
        AckKind::Snooze { .. } => "snoozed",
        AckKind::HandBack { .. } => "handed_back",
        AckKind::Release => "released",
    }
}

/// The limits a run is held to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// See [`crate::RuntimeBuilder::max_result_bytes`].
    pub(crate) max_result_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_result_bytes: crate::runtime::config::DEFAULT_MAX_RESULT_BYTES }
    }
}

/// Runs one job and says how it ended; shared by the runtime and the testing helpers.
pub(crate) async fn run(
    registry: &Registry,
    node: &str,
    states: &States,
    limits: Limits,
    engine: Option<&std::sync::Arc<dyn crate::engine::Engine>>,
    job: &FetchedJob,
    control: &JobControl,
) -> AckKind {
    // 0. Stopped before it started (cancelled, or the node stopping, while it waited in the
    //    prefetch buffer): it must not run at all.
    if control.token.is_cancelled() {
        return match control.reason() {
            Some(StopReason::Cancelled) => AckKind::Cancel { reason: "cancelled by request".into() },
            _ => AckKind::Release,
        };
    }

    // 1. A row whose columns could not be read (args nested deeper than JSON decoding allows,
    //    say) will read no better next time: discard it at once, saying why (ADR 10).
    if let Some(reason) = &job.unreadable {
        return AckKind::Discard {
            error: format!("the stored job could not be read, so it can never run: {reason}"),
        };
    }

    // 2. Resolve the worker. An unknown name is retried: a newer node may know it.
    let Some(worker) = registry.get(&job.worker) else {
        let error = format!(
            "unknown worker `{}`: no job type of that name is registered on node `{}`",
            job.worker, node
        );
        return failed(job, error, default_backoff);
    };

    // 3. Decode. Args that do not decode never will: discard at once, naming the field.
    let link = engine.map(|engine| {
        crate::run_link::RunLink::new(engine.clone(), node.to_string(), job.claim, limits.max_result_bytes)
    });
    let ctx = JobContext::new(
        job.id,
        job.attempt,
        job.max_attempts,
        job.queue.clone(),
        job.worker.clone(),
        job.inserted_at,
        job.scheduled_at,
        job.meta.clone(),
        job.tags.clone(),
        control.token.clone(),
        states.clone(),
    )
    .with_link(link.clone());
    // A job of a queue this node runs cannot lack its state (`start()` refused that); one of
    // another queue, inserted into a queue of this node, can: its `perform` then fails (a retry,
    // since another node may have the state, as for an unknown worker).
    let perform = match (worker.run)(job.args.clone(), ctx) {
        Ok(future) => future,
        Err(error) => return AckKind::Discard { error },
    };

    // 4. Perform, with panics caught and the timeout applied.
    let timeout = worker.options.timeout;
    let deadline = timeout.map(|limit| tokio::time::Instant::now() + limit);
    let mut guarded = std::pin::pin!(AssertUnwindSafe(perform).catch_unwind());
    let ended = tokio::select! {
        // Checked first: once the token fired (cancel or shutdown), whatever the job returns is a
        // reaction to being stopped, not a finished run.
        biased;
        _ = control.token.cancelled() => Ended::Stopped,
        r = &mut guarded => Ended::Returned(r),
        _ = sleep_until(deadline) => Ended::TimedOut,
    };
    if !matches!(ended, Ended::Returned(_)) {
        // The job gets a moment to notice its token and stop by itself (close a file, abort a
        // request); then its future is dropped whether or not it looked.
        control.stop(StopReason::Timeout);
        let _ = tokio::time::timeout(STOP_GRACE, &mut guarded).await;
    }

    // 5. Normalise what happened into a row update. A job whose own transaction committed its
    //    completion is completed, whatever happened after the commit (a timeout, a cancel).
    if link.as_ref().is_some_and(|l| l.committed()) {
        return AckKind::Committed;
    }
    match ended {
        Ended::Stopped => match control.reason() {
            Some(StopReason::Cancelled) => AckKind::Cancel { reason: "cancelled by request".into() },
            _ => AckKind::HandBack { reason: format!("node `{node}` shut down before the job finished") },
        },
        Ended::TimedOut => {
            let limit = timeout.unwrap_or_default();
            failed(job, format!("timed out after {}", fmt_duration(limit)), worker.backoff)
        }
        Ended::Returned(Err(panic)) => {
            failed(job, format!("panicked: {}", panic_message(&*panic)), worker.backoff)
        }
        Ended::Returned(Ok(Err(error))) => failed(job, error, worker.backoff),
        Ended::Returned(Ok(Ok(outcome))) => match outcome {
            Outcome::Complete => AckKind::Complete,
            Outcome::CompleteWith(output) => match result_too_large(&output, limits.max_result_bytes) {
                Some(error) => failed(job, error, worker.backoff),
                None => AckKind::Record { output },
            },
            Outcome::Snooze(delay) => AckKind::Snooze { delay },
            Outcome::Cancel(reason) => AckKind::Cancel { reason },
            Outcome::Discard(reason) => AckKind::Discard { error: reason },
        },
    }
}

/// Why `output` cannot be recorded: larger than `limit` bytes encoded, or holding a NUL
/// character (PostgreSQL's jsonb refuses `\u0000`, and a result must be storable on both engines).
pub(crate) fn result_too_large(output: &serde_json::Value, limit: usize) -> Option<String> {
    if has_nul(output) {
        return Some(
            "the job's result holds a NUL character (\\u0000), which the database cannot store".into(),
        );
    }
    let size = serde_json::to_string(output).map_or(usize::MAX, |s| s.len());
    (size > limit).then(|| {
        format!(
            "the job's result is {size} bytes encoded, over the limit of {limit} bytes \
             (RuntimeBuilder::max_result_bytes); record less, or store it elsewhere and return its key"
        )
    })
}

/// Whether a string (or key) anywhere in `value` holds a NUL character.
pub(crate) fn has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(has_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// How long a stopped job (timed out, cancelled, or still running at the end of the shutdown
/// grace period) may go on after its token fired, to stop by itself, before it is dropped.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(1);

/// How the job's future ended.
enum Ended {
    Returned(std::thread::Result<Result<EncodedOutcome, String>>),
    Stopped,
    TimedOut,
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A failed attempt: retry after the backoff, or discard when no attempt is left.
fn failed(job: &FetchedJob, error: String, backoff: fn(u32) -> Duration) -> AckKind {
    if job.attempt >= job.max_attempts {
        AckKind::Discard { error }
    } else {
        AckKind::Retry { delay: backoff(job.attempt), error }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(attempt: u32, max_attempts: u32) -> FetchedJob {
        FetchedJob::for_test(1, attempt, max_attempts)
    }

    #[test]
    fn a_failure_retries_until_the_last_attempt() {
        let backoff: fn(u32) -> Duration = |a| Duration::from_secs(u64::from(a));
        assert_eq!(
            failed(&job(2, 3), "boom".into(), backoff),
            AckKind::Retry { delay: Duration::from_secs(2), error: "boom".into() }
        );
        assert_eq!(failed(&job(3, 3), "boom".into(), backoff), AckKind::Discard { error: "boom".into() });
    }

    #[test]
    fn panic_payloads_become_messages() {
        let p = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(&*p), "static");
        let n = 7;
        let p = std::panic::catch_unwind(|| panic!("formatted {n}")).unwrap_err();
        assert_eq!(panic_message(&*p), "formatted 7");
    }

    #[test]
    fn durations_print_plainly() {
        assert_eq!(fmt_duration(Duration::from_secs(30)), "30s");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
    }
}
