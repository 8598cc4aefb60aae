//! The job types the runtime tests use. Each carries its probe key.

use std::time::Duration;

use jobsmith::{JobContext, Outcome, job};

use super::probe::Probe;

/// Records its start and finishes, after `sleep_ms`.
#[job(queue = "default")]
pub async fn record(ctx: JobContext, probe: String, label: String, sleep_ms: u64) -> Result<(), String> {
    let p = Probe::get(&probe);
    p.enter(&label, ctx.attempt, &ctx.queue);
    if sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    }
    p.leave(&ctx.queue);
    Ok(())
}

/// Fails every attempt; retries after 300 ms.
#[job(max_attempts = 3, backoff = fast_backoff)]
pub async fn always_fails(ctx: JobContext, probe: String) -> Result<(), String> {
    Probe::get(&probe).enter("fail", ctx.attempt, &ctx.queue);
    Probe::get(&probe).leave(&ctx.queue);
    Err(format!("failure number {}", ctx.attempt))
}

/// The retry delay of the test jobs.
pub fn fast_backoff(_attempt: u32) -> Duration {
    Duration::from_millis(300)
}

/// Panics on the first attempt, then succeeds.
#[job(max_attempts = 2, backoff = fast_backoff)]
pub async fn panics_once(ctx: JobContext, probe: String) -> Result<(), String> {
    Probe::get(&probe).enter("panic", ctx.attempt, &ctx.queue);
    Probe::get(&probe).leave(&ctx.queue);
    if ctx.attempt == 1 {
        panic!("boom on attempt {}", ctx.attempt);
    }
    Ok(())
}

/// Runs past its timeout on the first attempt and notes that its token fired.
#[job(timeout = "200ms", max_attempts = 2, backoff = fast_backoff)]
pub async fn slow_once(ctx: JobContext, probe: String) -> Result<(), String> {
    let p = Probe::get(&probe);
    p.enter("slow", ctx.attempt, &ctx.queue);
    p.leave(&ctx.queue);
    if ctx.attempt == 1 {
        let token = ctx.cancellation_token().clone();
        let observer = p.clone();
        // The job's own future is dropped on timeout; a detached watcher shows the token fired.
        tokio::spawn(async move {
            token.cancelled().await;
            observer.observed_cancel.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    Ok(())
}

/// Returns the outcome named by `what`: complete, snooze, cancel or discard. Snoozes once.
#[job(max_attempts = 1)]
pub async fn choose(ctx: JobContext, probe: String, what: String) -> Result<Outcome, String> {
    let p = Probe::get(&probe);
    p.enter(&what, ctx.attempt, &ctx.queue);
    p.leave(&ctx.queue);
    Ok(match what.as_str() {
        "snooze" if p.start_count() == 1 => Outcome::Snooze(Duration::from_millis(300)),
        "snooze" | "complete" => Outcome::Complete,
        "cancel" => Outcome::Cancel("not needed any more".into()),
        _ => Outcome::Discard("cannot ever work".into()),
    })
}

/// Blocks until cancelled (by id, or by shutdown), noting that the token fired.
#[job(max_attempts = 5)]
pub async fn blocks(ctx: JobContext, probe: String) -> Result<(), String> {
    let p = Probe::get(&probe);
    p.enter("block", ctx.attempt, &ctx.queue);
    let token = ctx.cancellation_token().clone();
    let observer = p.clone();
    tokio::spawn(async move {
        token.cancelled().await;
        observer.observed_cancel.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    ctx.cancelled().await;
    p.leave(&ctx.queue);
    Ok(())
}

/// Args of a strict shape, for the undecodable-row test.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    DayBefore,
    HoursBefore,
}

/// A job whose args can be corrupted in the table.
#[job(queue = "events", max_attempts = 3)]
pub async fn send_reminder(appointment_id: i64, kind: Kind) -> Result<(), String> {
    let _ = (appointment_id, kind);
    Ok(())
}

/// A unique job: one per appointment, whatever the note.
#[job(unique(keys = ["appointment_id"]))]
pub async fn unique_reminder(appointment_id: i64, note: String) -> Result<(), String> {
    let _ = (appointment_id, note);
    Ok(())
}

/// Unique only while waiting or running, so a completed one does not block a new one.
#[job(unique(states = [available, scheduled, executing, retryable]))]
pub async fn unique_while_pending(n: i64) -> Result<(), String> {
    let _ = n;
    Ok(())
}

/// Declares defaults that inserts may override.
#[job(queue = "mailers", max_attempts = 7, priority = 4, tags = ["mail", "user"])]
pub async fn with_defaults(to: String) -> Result<(), String> {
    let _ = to;
    Ok(())
}

/// A tiny job for bulk inserts.
#[job]
pub async fn a(n: i64) -> Result<(), String> {
    let _ = n;
    Ok(())
}

/// Another tiny job for bulk inserts.
#[job(queue = "other")]
pub async fn b(s: String) -> Result<(), String> {
    let _ = s;
    Ok(())
}

/// Inserts a follow-up job through the database in its args' probe (for recursive drains).
#[job(queue = "chain", max_attempts = 2, backoff = fast_backoff)]
pub async fn chain(probe: String, left: u32) -> Result<(), String> {
    Probe::get(&probe).enter(&format!("chain{left}"), 1, "chain");
    Probe::get(&probe).leave("chain");
    if left > 0 {
        let db = super::testing_helpers::db_for(&probe);
        db.insert(Chain { probe, left: left - 1 }).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Works only when its args went through JSON: a float that survives, and a map key that must be a
/// string.
#[job]
pub async fn json_picky(values: std::collections::HashMap<String, f64>) -> Result<(), String> {
    if values.is_empty() { Err("no values".into()) } else { Ok(()) }
}

/// Waits for its token, then cleans up (records it) before returning: code that reacts to being
/// stopped gets to run.
#[job(timeout = "300ms", max_attempts = 1)]
pub async fn cleans_up(ctx: JobContext, probe: String, wait_for_timeout: bool) -> Result<(), String> {
    let p = Probe::get(&probe);
    p.enter("started", ctx.attempt, &ctx.queue);
    let _ = wait_for_timeout;
    ctx.cancelled().await;
    tokio::time::sleep(Duration::from_millis(20)).await; // some async cleanup
    p.enter("cleaned up", ctx.attempt, &ctx.queue);
    p.leave(&ctx.queue);
    p.leave(&ctx.queue);
    Ok(())
}

/// A digest per user that a duplicate pushes back: the debounce policy in the attribute.
#[job(unique(keys = ["user_id"], on_conflict = replace))]
pub async fn debounced_digest(user_id: i64, changes: u32) -> Result<(), String> {
    let _ = (user_id, changes);
    Ok(())
}
