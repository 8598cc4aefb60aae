//! The scripted run behind `--demo` (the default): book three appointments, move one, cancel one,
//! sync three patients' benefits, wait until every job that follows has finished, then print a
//! summary and check it. Time is compressed (one clinic hour passes in 100 ms), so reminders due
//! a day ahead run within seconds.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jobsmith::{Db, JobRow, JobState, Page, Runtime, TypedJob};

use crate::BoxError;
use crate::benefits_api::Insurer;
use crate::clinic::{BookedReminder, Clinic, Clock, show_time};
use crate::db::Sql;
use crate::jobs::{NoShowReport, SendEmail, SendReminder, SyncBenefits};
use crate::store::{self, Patient, Status};

/// Clinic seconds per real second: one hour in 100 ms.
pub(crate) const SPEEDUP: i32 = 36_000;

/// How long the demo waits for its jobs before it gives up (they need about 4 s).
const DEADLINE: Duration = Duration::from_secs(60);

const HOUR: i64 = 3600;

/// A demo patient: (id, name, email, prior no-shows).
type DemoPatient = (i64, &'static str, &'static str, i64);

/// The insurer of every demo patient (the benefits queue is partitioned by insurer).
const DEMO_INSURER: i64 = 1;

/// The demo's patients. The insurer knows 1 and 2 only (see `Insurer::demo`).
const PATIENTS: [DemoPatient; 3] = [
    (1, "Ada Lovelace", "ada@example.com", 0),
    (2, "Grace Hopper", "grace@example.com", 1),
    (3, "Linus Pauling", "linus@example.com", 2),
];

/// Runs the demo; `Ok(false)` if anything turned out other than expected.
pub(crate) async fn run(
    db: &Db,
    runtime: &Runtime,
    sql: &Sql,
    insurer: &Insurer,
    clock: &Clock,
) -> Result<bool, BoxError> {
    let started = Instant::now();
    let clinic = Clinic::new(sql, clock);

    let mut tx = sql.begin().await?;
    for (id, name, email, prior_no_shows) in PATIENTS {
        let patient = Patient { id, name: name.into(), email: email.into(), prior_no_shows };
        store::save_patient(&mut tx, &patient).await?;
    }
    tx.commit().await?;

    // Whole hours a day and a bit ahead: the earliest reminder is 8 clinic hours (0.8 s) away,
    // so moving and cancelling below happen well before any reminder is due.
    let base = (clock.now() / HOUR + 1) * HOUR;
    let ada = book(&clinic, PATIENTS[0], base + 32 * HOUR).await?;
    let grace = book(&clinic, PATIENTS[1], base + 33 * HOUR).await?;
    let linus = book(&clinic, PATIENTS[2], base + 34 * HOUR).await?;

    let moved_to = base + 35 * HOUR;
    let (moved, new) = clinic.reschedule(grace, moved_to).await?;
    let booked_anew = if new.is_empty() { String::new() } else { format!("; booked {}", list(&new)) };
    println!(
        "rescheduled appointment {grace} to {}: moved {}{booked_anew}",
        show_time(moved_to),
        list(&moved)
    );
    let cancelled = clinic.cancel(linus).await?;
    println!("cancelled appointment {linus} and its {cancelled} reminder jobs");

    // Printed first: the jobs start (and print) as soon as they are inserted.
    println!("queueing benefits sync for patients 1, 2, 3; the jobs report as they run:");
    let mut syncs = Vec::new();
    for (patient_id, ..) in PATIENTS {
        syncs.push((
            patient_id,
            db.insert(SyncBenefits { insurer_id: DEMO_INSURER, patient_id }).await?.job.id,
        ));
    }
    // Risk scores stamped later than this were computed after the last change above.
    let changes_done = clock.now();

    let appointments = [ada, grace, linus];
    let deadline = Instant::now() + DEADLINE;
    loop {
        let pending = pending(db, runtime, sql, &appointments, &syncs, changes_done).await?;
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            println!("UNEXPECTED: still waiting after {DEADLINE:?} for {}", pending.join(", "));
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A manager's page asks for the report and waits for it: a job whose result is recorded
    // with its completion, read back typed.
    let summary = db.enqueue(NoShowReport {}).await?.wait(DEADLINE).await?;

    println!("\nsummary after {:.1} s", started.elapsed().as_secs_f64());
    let mut problems = Vec::new();
    match &summary {
        Some(s) => println!(
            "  no-show report (an awaited job result): {} booked, {} cancelled, riskiest {}",
            s.booked,
            s.cancelled,
            s.riskiest
                .map_or_else(|| "none".to_string(), |(id, score)| format!("appointment {id} at {score}"))
        ),
        None => problems.push("the no-show report recorded no result".to_string()),
    }
    if summary.as_ref().is_some_and(|s| (s.booked, s.cancelled) != (2, 1)) {
        problems.push(format!("the no-show report counted {summary:?}, not 2 booked and 1 cancelled"));
    }
    print_job_counts(db).await?;
    for id in appointments {
        check_appointment(db, sql, id, &mut problems).await?;
    }
    for (patient_id, job_id) in syncs {
        check_benefits(runtime, sql, insurer, patient_id, job_id, &mut problems).await?;
    }
    for problem in &problems {
        println!("UNEXPECTED: {problem}");
    }
    Ok(problems.is_empty())
}

/// Books an appointment for `patient` at `starts_at` and says so; returns its id.
async fn book(clinic: &Clinic<'_>, patient: DemoPatient, starts_at: i64) -> Result<i64, BoxError> {
    let (patient_id, name, ..) = patient;
    let (id, reminders) = clinic.book(patient_id, starts_at).await?;
    println!("booked appointment {id} for {name} at {}: {}", show_time(starts_at), list(&reminders));
    Ok(id)
}

/// `2 reminders (day_before job 1 due Fri 01 May 15:00 UTC, ...)`.
fn list(reminders: &[BookedReminder]) -> String {
    let each: Vec<String> = reminders
        .iter()
        .map(|r| format!("{} job {} due {}", r.kind.as_str(), r.job_id, show_time(r.due_at)))
        .collect();
    format!("{} reminders ({})", reminders.len(), each.join(", "))
}

/// What the demo still waits for: unfinished reminder, email and sync jobs, and booked
/// appointments without a risk score computed after `changes_done`.
async fn pending(
    db: &Db,
    runtime: &Runtime,
    sql: &Sql,
    appointments: &[i64],
    syncs: &[(i64, i64)],
    changes_done: i64,
) -> Result<Vec<String>, BoxError> {
    let mut pending = Vec::new();
    for &id in appointments {
        let (reminders, emails) = jobs_of(db, id).await?;
        let rows = reminders.iter().map(|r| &r.row).chain(emails.iter().map(|e| &e.row));
        pending.extend(rows.filter(|r| !r.state.is_final()).map(|r| format!("job {}", r.id)));
        let mut tx = sql.read().await?;
        let booked = store::appointment(&mut tx, id).await?.is_some_and(|a| a.status == Status::Booked);
        let scored = store::risk_score(&mut tx, id).await?.is_some_and(|s| s.scored_at > changes_done);
        if booked && !scored {
            pending.push(format!("a risk score of appointment {id}"));
        }
    }
    for (_, job) in syncs {
        if !state(runtime, *job).await?.is_some_and(JobState::is_final) {
            pending.push(format!("job {job}"));
        }
    }
    Ok(pending)
}

/// An appointment's reminder jobs and the emails they queued, oldest first, found by typed
/// queries on the reminders' args and the emails' meta: the clinic keeps no job ids.
async fn jobs_of(
    db: &Db,
    id: i64,
) -> Result<(Vec<TypedJob<SendReminder>>, Vec<TypedJob<SendEmail>>), BoxError> {
    let mut reminders = SendReminder::query().appointment_id(id).list(db, Page::default()).await?;
    let mut emails = SendEmail::query().meta("appointment_id", id).list(db, Page::default()).await?;
    reminders.reverse();
    emails.reverse();
    Ok((reminders, emails))
}

async fn state(runtime: &Runtime, job: i64) -> Result<Option<JobState>, BoxError> {
    Ok(runtime.get_job(job).await?.map(|j| j.state))
}

async fn job(runtime: &Runtime, id: i64) -> Result<JobRow, BoxError> {
    runtime.get_job(id).await?.ok_or_else(|| format!("job {id} does not exist").into())
}

/// `jobs: default completed 2, discarded 1 | events ...`, over the whole database.
async fn print_job_counts(db: &Db) -> Result<(), BoxError> {
    let mut by_queue: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for count in db.engine().count_by_state().await? {
        by_queue.entry(count.queue).or_default().push(format!("{} {}", count.state, count.count));
    }
    let queues: Vec<String> =
        by_queue.into_iter().map(|(queue, states)| format!("{queue} {}", states.join(", "))).collect();
    println!("  jobs by queue and state: {}", queues.join(" | "));
    Ok(())
}

/// Prints an appointment's reminders and risk score, and checks them: a booked appointment had
/// one reminder of each kind sent (completed, with an email for its current time that
/// completed), a cancelled one had every reminder cancelled and no email.
async fn check_appointment(db: &Db, sql: &Sql, id: i64, problems: &mut Vec<String>) -> Result<(), BoxError> {
    let mut tx = sql.read().await?;
    let appointment = store::appointment(&mut tx, id).await?.ok_or("appointment vanished")?;
    let risk = store::risk_score(&mut tx, id).await?;
    drop(tx);
    let (reminders, emails) = jobs_of(db, id).await?;

    let booked = appointment.status == Status::Booked;
    let status = match (booked, appointment.reschedules) {
        (false, _) => "cancelled".to_string(),
        (true, 0) => "booked".to_string(),
        (true, n) => format!("booked, moved {n}x"),
    };
    println!(
        "  appointment {id} ({}) at {}: {status}",
        appointment.patient.name,
        show_time(appointment.starts_at)
    );
    let mut sent = Vec::new();
    for reminder in &reminders {
        let Ok(args) = &reminder.args else {
            problems.push(format!("reminder job {} has unreadable args", reminder.row.id));
            continue;
        };
        let kind = args.kind.as_str();
        let due = show_time(args.kind.due_at(appointment.starts_at));
        let mut line = format!(
            "    reminder of appointment {id} ({kind} due {due}): job {} {}",
            reminder.row.id, reminder.row.state
        );
        let email = emails
            .iter()
            .find(|e| e.row.meta["reminder"] == kind && e.row.meta["starts_at"] == appointment.starts_at);
        if let Some(email) = email {
            line.push_str(&format!(", email job {} {}", email.row.id, email.row.state));
        }
        let expected_ok = if booked {
            sent.push(kind);
            reminder.row.state == JobState::Completed
                && email.is_some_and(|e| e.row.state == JobState::Completed)
        } else {
            reminder.row.state == JobState::Cancelled && email.is_none()
        };
        println!("{line}");
        if !expected_ok {
            let want = if booked { "sent" } else { "cancelled" };
            problems.push(format!("reminder job {} of appointment {id} should be {want}", reminder.row.id));
        }
    }
    sent.sort_unstable();
    if booked && sent != ["day_before", "two_hours_before"] {
        problems.push(format!("appointment {id} got reminders {sent:?}, not one of each kind"));
    }
    if emails.len() != sent.len() {
        problems.push(format!(
            "appointment {id} got {} emails for {} reminders sent",
            emails.len(),
            sent.len()
        ));
    }
    // Cancelling forgets a score, but a scoring run that read the appointment while it was
    // still booked may commit its score after the cancellation: only booked ones are shown.
    match risk.filter(|_| booked) {
        Some(risk) => {
            println!("    no-show risk of appointment {id}: {} (cron job {})", risk.score, risk.job_id);
            // Scores are written in the scoring job's own transaction, which commits with its
            // completion: the job that wrote a score completed.
            let scorer = db.engine().get_job(risk.job_id).await?.map(|j| j.state);
            if scorer != Some(JobState::Completed) {
                problems.push(format!("the score of appointment {id} was written by job {} ({scorer:?}), which did not complete", risk.job_id));
            }
        }
        None if booked => problems.push(format!("appointment {id} has no risk score")),
        None => {}
    }
    Ok(())
}

/// Prints how a benefits sync ended and checks it against the insurer's habits: patient 1's
/// first request failed (retried, then completed), patient 2's was rate limited (snoozed, then
/// completed), patient 3 is unknown (discarded).
async fn check_benefits(
    runtime: &Runtime,
    sql: &Sql,
    insurer: &Insurer,
    patient_id: i64,
    job_id: i64,
    problems: &mut Vec<String>,
) -> Result<(), BoxError> {
    let sync = job(runtime, job_id).await?;
    let requests = insurer.requests(patient_id);
    let mut tx = sql.read().await?;
    let benefits = store::benefits(&mut tx, patient_id).await?;
    drop(tx);
    // (story, (state, attempts, errors recorded, requests the insurer saw)).
    let (story, expected) = match patient_id {
        1 => ("retried after a 500, then", (JobState::Completed, 2, 1, 2)),
        2 => ("snoozed after a 429, then", (JobState::Completed, 1, 0, 2)),
        _ => ("answered 404, so", (JobState::Discarded, 1, 1, 1)),
    };
    let plan = benefits.map_or_else(String::new, |b| {
        format!(": {}, co-pay {}.{:02}", b.plan, b.copay_cents / 100, b.copay_cents % 100)
    });
    let actual = (sync.state, sync.attempt, sync.errors.len(), requests);
    println!(
        "  benefits sync of patient {patient_id}: {story} {} (job {job_id}, attempts {}, errors {}, requests {}){plan}",
        actual.0, actual.1, actual.2, actual.3
    );
    if actual != expected {
        problems.push(format!(
            "benefits sync of patient {patient_id}: expected (state, attempts, errors, requests) {expected:?}, got {actual:?}"
        ));
    }
    Ok(())
}
