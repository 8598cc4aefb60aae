//! The quickstart: declare jobs, insert them, run them to completion, exit.
//!
//! ```text
//! cargo run --example quickstart                                  # embedded SQLite, in memory
//! DATABASE_URL=postgres://postgres@127.0.0.1/test cargo run --example quickstart
//! ```
//! The engine is chosen from the URL; the program is the same on both.

use std::time::Duration;

use jobsmith::prelude::*;
use jobsmith::{JobState, Outcome, job};
use serde::{Deserialize, Serialize};

/// Which reminder to send.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ReminderKind {
    /// The day before.
    DayBefore,
    /// Two hours before.
    HoursBefore,
}

/// Sends an appointment reminder (here: prints it).
#[job(queue = "events", max_attempts = 3)]
async fn send_reminder(ctx: JobContext, appointment_id: i64, kind: ReminderKind) -> Result<(), String> {
    println!(
        "  [events]  reminder {kind:?} for appointment {appointment_id} (job {}, attempt {})",
        ctx.id, ctx.attempt
    );
    Ok(())
}

/// Fails the first time, as flaky network calls do; the runtime retries it after a short backoff.
#[job(queue = "default", max_attempts = 5, backoff = quick_retry)]
async fn sync_benefits(ctx: JobContext, patient_id: i64) -> Result<(), String> {
    if ctx.attempt == 1 {
        println!("  [default] benefits sync for patient {patient_id}: upstream error, will retry");
        return Err("upstream returned 503".into());
    }
    println!("  [default] benefits sync for patient {patient_id}: done on attempt {}", ctx.attempt);
    Ok(())
}

fn quick_retry(_attempt: u32) -> Duration {
    Duration::from_millis(500)
}

/// Asks to run again later without counting a failure.
#[job(queue = "mailers", max_attempts = 1)]
async fn send_digest(ctx: JobContext, user: String) -> Result<Outcome, String> {
    // A snoozed job has a later scheduled_at than its insert time.
    if ctx.scheduled_at == ctx.inserted_at {
        println!("  [mailers] digest for {user}: rate limited, snoozing 300 ms");
        return Ok(Outcome::Snooze(Duration::from_millis(300)));
    }
    println!("  [mailers] digest for {user}: sent");
    Ok(Outcome::Complete)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite::memory:".into());
    let db = jobsmith::Db::connect(&url).await.map_err(|e| format!("cannot open {url}: {e}"))?;
    db.migrate().await?;

    let runtime = db
        .runtime()
        .queue("default", 10)
        .queue("events", 50)
        .queue("mailers", 20)
        .queue("maintenance", 5)
        .start()
        .await?;
    println!("node {} started on {}", runtime.node_name(), db.engine().name());

    let ids = vec![
        db.insert(SendReminder { appointment_id: 7, kind: ReminderKind::DayBefore }).await?.job.id,
        db.insert(
            SendReminder { appointment_id: 7, kind: ReminderKind::HoursBefore }
                .schedule_in(Duration::from_secs(1)),
        )
        .await?
        .job
        .id,
        db.insert(SyncBenefits { patient_id: 42 }).await?.job.id,
        db.insert(SendDigest { user: "ada".into() }).await?.job.id,
    ];
    println!("inserted jobs {ids:?}");

    // Wait until every job has finished one way or another.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut done = 0;
        for id in &ids {
            if runtime.get_job(*id).await?.is_some_and(|j| j.state.is_final()) {
                done += 1;
            }
        }
        if done == ids.len() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err("jobs did not finish within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in &ids {
        let job = runtime.get_job(*id).await?.expect("job exists");
        println!("job {id} {:<14} {} after {} attempt(s)", short(&job.worker), job.state, job.attempt);
        if job.state != JobState::Completed {
            return Err(format!("job {id} ended {}", job.state).into());
        }
    }
    runtime.shutdown().await?;
    println!("all jobs completed; node stopped cleanly");
    Ok(())
}

fn short(worker: &str) -> &str {
    worker.rsplit("::").next().unwrap_or(worker)
}
