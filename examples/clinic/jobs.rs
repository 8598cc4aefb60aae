//! The clinic's background jobs. Each is an `async fn` under `#[job]`, which generates a struct of
//! its args (`SendReminder { appointment_id, kind, starts_at }`) to insert, and registers the fn
//! with every runtime of this binary.
//!
//! | job | queue | what it does |
//! | --- | --- | --- |
//! | [`send_reminder`] | `events` | checks the appointment, queues the reminder email |
//! | [`send_email`] | `mailers` | "sends" an email (prints it) |
//! | [`score_no_show_risk`] | `maintenance` | scores every upcoming appointment (cron, daily) |
//! | [`no_show_report`] | `maintenance` | the no-show report, handed back as the job's result |
//! | [`sync_benefits`] | `benefits` | fetches a patient's benefits from their insurer's API (at most two at once per insurer) |

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use jobsmith::{JobContext, JobExt, JobTx, Outcome, State, job};
use serde::{Deserialize, Serialize};

use crate::clinic::{self, Clock, ReminderKind, show_time};
use crate::db::{Sql, Tx};
use crate::store::{self, Benefits, RiskScore, Status};
use crate::{BoxError, benefits_api};

/// What the jobs need besides their args, given to the runtime with
/// `RuntimeBuilder::state(Clinic { .. })` and taken by each job as a `State<Clinic>` parameter.
/// Args are plain data stored with each row, so a database handle or an API address cannot be
/// one. Cheap to clone: the database is a pool handle.
#[derive(Debug, Clone)]
pub(crate) struct Clinic {
    /// The clinic's database.
    pub(crate) sql: Sql,
    /// `host:port` of the insurer's benefits API.
    pub(crate) insurer: String,
    /// The clinic's time (compressed in the demo).
    pub(crate) clock: Clock,
}

/// Retry failed API calls after a fraction of a second instead of the default backoff, so the
/// demo shows a retry without waiting for it. A flag rather than state because a job type's
/// backoff is a plain `fn(attempt)`, declared with the type, which no runtime state reaches.
pub(crate) static FAST_RETRIES: AtomicBool = AtomicBool::new(false);

/// Prints what a job did, prefixed by its queue, so the demo's output reads as a log.
fn say(ctx: &JobContext, what: impl Display) {
    println!("  {:<13} {what}", format!("[{}]", ctx.queue));
}

/// Sends one appointment reminder by queueing its email.
///
/// Unique per appointment and kind while pending: booking the same reminder twice returns the
/// existing job instead of a second one. Its args name the appointment, not its time: the time
/// is read when the reminder runs, and the clinic moves the job's due time in the transaction
/// that moves the appointment (`Clinic::reschedule`), so the two never disagree. The clinic
/// keeps no job ids; it finds this job by its args (`SendReminder::query().appointment_id(id)`).
#[job(
    queue = "events",
    max_attempts = 3,
    unique(keys = ["appointment_id", "kind"], states = [available, scheduled, executing, retryable])
)]
pub(crate) async fn send_reminder(
    ctx: JobContext,
    State(clinic): State<Clinic>,
    appointment_id: i64,
    kind: ReminderKind,
) -> Result<Outcome, BoxError> {
    let mut tx = clinic.sql.begin().await?;
    // Locks the appointment's row until this transaction ends, so a move or cancel of it (which
    // writes the row) happens wholly before or after this reminder.
    let Some(appointment) = store::lock_appointment(&mut tx, appointment_id).await? else {
        return Ok(Outcome::Cancel(format!("appointment {appointment_id} does not exist")));
    };
    if appointment.status == Status::Cancelled {
        let reason = format!("appointment {appointment_id} was cancelled");
        say(&ctx, format!("reminder {} not sent: {reason}", kind.as_str()));
        return Ok(Outcome::Cancel(reason));
    }
    let starts_at = appointment.starts_at;
    // Moved later while this job was starting (its update then found it running): wait for the
    // new time instead of reminding of the old one.
    let due = clinic.clock.run_at(kind.due_at(starts_at)) - Utc::now();
    if let Ok(wait) = due.to_std()
        && wait > Duration::from_secs(1)
    {
        return Ok(Outcome::Snooze(wait));
    }

    let patient = &appointment.patient;
    // One email per reminder, even when this job is retried after its email committed: the email
    // names the reminder in its meta, and is looked for in this same transaction.
    let meta =
        serde_json::json!({ "appointment_id": appointment_id, "reminder": kind, "starts_at": starts_at });
    let already = SendEmail::query()
        .meta("appointment_id", appointment_id)
        .meta("reminder", kind)
        .meta("starts_at", starts_at);
    if tx.count_jobs(already).await? > 0 {
        return Ok(Outcome::Complete);
    }
    let email = SendEmail {
        to: patient.email.clone(),
        subject: format!("Your appointment {}", kind.label()),
        body: format!("Dear {}, see you on {}.", patient.name, show_time(starts_at)),
    };
    let email_job = tx.insert_job(email.build_insert().meta(meta)).await?.job.id;
    tx.commit().await?;
    say(
        &ctx,
        format!(
            "reminder {} for appointment {appointment_id} ({}): email job {email_job} queued",
            kind.as_str(),
            patient.name
        ),
    );
    Ok(Outcome::Complete)
}

/// Sends an email. Here it prints it: the example has no mail server.
#[job(queue = "mailers", max_attempts = 5)]
pub(crate) async fn send_email(
    ctx: JobContext,
    to: String,
    subject: String,
    body: String,
) -> Result<(), BoxError> {
    say(&ctx, format!("email to {to}: \"{subject}\" {body}"));
    Ok(())
}

/// Scores the no-show risk of every upcoming appointment. Runs from a cron entry: daily at 02:00
/// in the clinic's time zone (every 2 seconds in the demo).
///
/// The scores are written in the job's own transaction (`tx`), which the runtime commits with
/// the job's completion: a run cut short (a crash, a rescue) leaves no half-written scores, and a
/// slot's scores are written by exactly one run.
#[job(queue = "maintenance", max_attempts = 3)]
pub(crate) async fn score_no_show_risk(ctx: JobContext, tx: &mut JobTx) -> Result<(), BoxError> {
    // Read the clock first: a score stamped `scored_at` saw every change made before it.
    let now = Utc::now().timestamp();
    let mut tx = Tx::of_job(tx);
    let upcoming = store::upcoming_appointments(&mut tx, now).await?;
    let mut scores = Vec::new();
    for appointment in &upcoming {
        let score =
            RiskScore { score: clinic::no_show_risk(appointment, now), scored_at: now, job_id: ctx.id };
        store::save_risk_score(&mut tx, appointment.id, score).await?;
        scores.push(format!("appointment {} -> {}", appointment.id, score.score));
    }
    // The runtime puts the cron slot that inserted this job in its meta.
    let slot = ctx.meta.get("cron_slot").and_then(|s| s.as_str()).unwrap_or("none");
    say(&ctx, format!("no-show risk (cron slot {slot}): scored {} [{}]", upcoming.len(), scores.join(", ")));
    Ok(())
}

/// The clinic's no-show report: what a manager's page shows, handed back by [`no_show_report`]
/// as its recorded result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NoShowSummary {
    /// Appointments booked.
    pub(crate) booked: i64,
    /// Appointments cancelled.
    pub(crate) cancelled: i64,
    /// The upcoming appointment most at risk of a no-show, and its score.
    pub(crate) riskiest: Option<(i64, i64)>,
}

/// Builds the no-show report. Its result is recorded with its completion, so a caller that
/// inserted it (`db.enqueue(NoShowReport {})`) waits for it and reads it typed, from any process.
#[job(queue = "maintenance", max_attempts = 3)]
pub(crate) async fn no_show_report(State(clinic): State<Clinic>) -> Result<NoShowSummary, BoxError> {
    let now = Utc::now().timestamp();
    let mut tx = clinic.sql.read().await?;
    let (booked, cancelled) = store::appointment_counts(&mut tx).await?;
    let mut riskiest: Option<(i64, i64)> = None;
    for appointment in store::upcoming_appointments(&mut tx, now).await? {
        if let Some(risk) = store::risk_score(&mut tx, appointment.id).await?
            && riskiest.is_none_or(|(_, score)| risk.score > score)
        {
            riskiest = Some((appointment.id, risk.score));
        }
    }
    Ok(NoShowSummary { booked, cancelled, riskiest })
}

/// The insurer's answer to `GET /patients/{id}/benefits`.
#[derive(Debug, Deserialize)]
struct BenefitsReply {
    plan: String,
    copay_cents: i64,
}

/// Fetches a patient's benefits from the insurer and stores them.
///
/// Each answer maps to one ending: 200 completes; 429 snoozes for the `Retry-After` the insurer
/// asked for (a snooze does not use up an attempt); 404 discards, since asking again cannot help;
/// 5xx and network errors fail the attempt, so the runtime retries with backoff.
///
/// Partitioned by insurer: the `benefits` queue runs at most two syncs of one insurer at once and
/// starts at most ten a second of each insurer, across all nodes, and serves the insurers in
/// turn, so a big insurer's backlog of syncs does not hold back a small one's
/// (`RuntimeBuilder::partition_limit` and `RateLimit::for_each_partition` in `main.rs`).
#[job(queue = "benefits", max_attempts = 5, timeout = "30s", backoff = insurer_backoff, partition = "insurer_id")]
pub(crate) async fn sync_benefits(
    ctx: JobContext,
    State(clinic): State<Clinic>,
    insurer_id: i64,
    patient_id: i64,
) -> Result<Outcome, BoxError> {
    // The demo has one insurer; its id only partitions the queue.
    let _ = insurer_id;
    let path = format!("/patients/{patient_id}/benefits");
    let response = benefits_api::get(&clinic.insurer, &path).await?;
    match response.status {
        200 => {
            let reply: BenefitsReply = serde_json::from_str(&response.body)?;
            let benefits = Benefits { plan: reply.plan, copay_cents: reply.copay_cents };
            let mut tx = clinic.sql.begin().await?;
            store::save_benefits(&mut tx, patient_id, &benefits, Utc::now().timestamp()).await?;
            tx.commit().await?;
            say(
                &ctx,
                format!(
                    "benefits of patient {patient_id}: {} synced on attempt {}",
                    benefits.plan, ctx.attempt
                ),
            );
            Ok(Outcome::Complete)
        }
        429 => {
            let wait = response.retry_after.unwrap_or(Duration::from_secs(60));
            say(&ctx, format!("benefits of patient {patient_id}: insurer answered 429, snoozing {wait:?}"));
            Ok(Outcome::Snooze(wait))
        }
        404 => {
            say(&ctx, format!("benefits of patient {patient_id}: insurer answered 404, discarding"));
            Ok(Outcome::Discard(format!("the insurer does not know patient {patient_id}")))
        }
        status @ 400..=499 => {
            say(&ctx, format!("benefits of patient {patient_id}: insurer answered {status}, discarding"));
            Ok(Outcome::Discard(format!("the insurer rejected the request: {status}")))
        }
        status => {
            say(
                &ctx,
                format!(
                    "benefits of patient {patient_id}: insurer answered {status} on attempt {} of {}, will retry",
                    ctx.attempt, ctx.max_attempts
                ),
            );
            Err(format!("insurer answered {status}").into())
        }
    }
}

/// The delay after failed attempt `attempt` of [`sync_benefits`]: jobsmith's default (seconds to
/// minutes, with jitter), or 200 ms per attempt in the demo.
fn insurer_backoff(attempt: u32) -> Duration {
    if FAST_RETRIES.load(Ordering::Relaxed) {
        Duration::from_millis(200 * u64::from(attempt))
    } else {
        jobsmith::default_backoff(attempt)
    }
}
