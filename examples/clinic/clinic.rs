//! The clinic's rules: which reminders an appointment gets, what happens to them when the
//! appointment moves or is cancelled, and how likely a patient is not to show up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jobsmith::prelude::*;
use jobsmith::{Change, JobState};
use serde::{Deserialize, Serialize};

use crate::BoxError;
use crate::db::{Sql, Tx};
use crate::jobs::SendReminder;
use crate::store;

/// The reminders every appointment gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ReminderKind {
    /// 24 hours before.
    DayBefore,
    /// 2 hours before.
    TwoHoursBefore,
}

impl ReminderKind {
    /// Both kinds, earliest first.
    pub(crate) const ALL: [ReminderKind; 2] = [ReminderKind::DayBefore, ReminderKind::TwoHoursBefore];

    /// How long before the appointment the reminder goes out.
    pub(crate) fn lead(self) -> Duration {
        match self {
            ReminderKind::DayBefore => Duration::from_secs(24 * 3600),
            ReminderKind::TwoHoursBefore => Duration::from_secs(2 * 3600),
        }
    }

    /// For the email's subject: "in 24 hours".
    pub(crate) fn label(self) -> &'static str {
        match self {
            ReminderKind::DayBefore => "in 24 hours",
            ReminderKind::TwoHoursBefore => "in 2 hours",
        }
    }

    /// The name in the job's args and in its email's meta.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ReminderKind::DayBefore => "day_before",
            ReminderKind::TwoHoursBefore => "two_hours_before",
        }
    }

    /// When a reminder of this kind is due for an appointment at `starts_at` (unix seconds).
    pub(crate) fn due_at(self, starts_at: i64) -> i64 {
        starts_at - self.lead().as_secs() as i64
    }
}

/// Turns clinic time (when something should happen) into the time a job is scheduled for.
///
/// In production the two are the same (a speedup of 1). The demo compresses the future after its start by a
/// constant factor, so a reminder due in 24 hours runs in a few seconds while every time the
/// clinic stores and shows stays real.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: DateTime<Utc>,
    speedup: i32,
}

impl Clock {
    /// From now on, `speedup` clinic seconds pass per real second (1: real time).
    pub(crate) fn compressed(speedup: i32) -> Self {
        Clock { origin: Utc::now(), speedup: speedup.max(1) }
    }

    /// Now, in unix seconds (clinic time and real time agree on the present).
    pub(crate) fn now(&self) -> i64 {
        Utc::now().timestamp()
    }

    /// When a job due at clinic time `at` (unix seconds) should run.
    pub(crate) fn run_at(&self, at: i64) -> DateTime<Utc> {
        let at = DateTime::from_timestamp(at, 0).unwrap_or(self.origin);
        self.origin + (at - self.origin) / self.speedup
    }
}

/// A reminder job booked for an appointment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BookedReminder {
    /// Which one.
    pub(crate) kind: ReminderKind,
    /// Its job.
    pub(crate) job_id: i64,
    /// The clinic time it is due, unix seconds.
    pub(crate) due_at: i64,
}

/// This clinic's id among the clinics that share one database: the partition of its reminders
/// on the `events` queue (see `main.rs`, which gives each clinic at most 25 running at once).
pub(crate) const CLINIC_ID: &str = "downtown";

/// Books, moves and cancels appointments, keeping their reminder jobs in step.
///
/// The clinic keeps no job ids: its reminders are found by a typed query on the reminder job's
/// args (`SendReminder::query().appointment_id(id)`), inside the same transaction as the
/// clinic's own write, so an appointment and its reminders always change together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clinic<'a> {
    sql: &'a Sql,
    clock: &'a Clock,
}

impl<'a> Clinic<'a> {
    /// The clinic on this database.
    pub(crate) fn new(sql: &'a Sql, clock: &'a Clock) -> Self {
        Clinic { sql, clock }
    }

    /// Books an appointment and its reminders, in one transaction: either the appointment exists
    /// with its reminders queued, or neither does.
    pub(crate) async fn book(
        &self,
        patient_id: i64,
        starts_at: i64,
    ) -> Result<(i64, Vec<BookedReminder>), BoxError> {
        let mut tx = self.sql.begin().await?;
        let id = store::insert_appointment(&mut tx, patient_id, starts_at, self.clock.now()).await?;
        let mut booked = Vec::new();
        for kind in ReminderKind::ALL {
            if let Some(reminder) = self.book_reminder(&mut tx, id, kind, starts_at).await? {
                booked.push(reminder);
            }
        }
        tx.commit().await?;
        Ok((id, booked))
    }

    /// Moves an appointment and its reminders, in one transaction: each pending reminder gets
    /// the new due time; a kind without one (already sent, or too late at booking) is booked
    /// anew. A reminder being sent at this very moment is not changed (the update says so): it
    /// locks the appointment, so it either went out before the move or reads the new time and
    /// waits for it.
    /// Returns the moved reminders, then the newly booked ones.
    pub(crate) async fn reschedule(
        &self,
        id: i64,
        starts_at: i64,
    ) -> Result<(Vec<BookedReminder>, Vec<BookedReminder>), BoxError> {
        let mut tx = self.sql.begin().await?;
        if !store::move_appointment(&mut tx, id, starts_at).await? {
            return Err(format!("appointment {id} is not booked").into());
        }
        let (mut moved, mut booked) = (Vec::new(), Vec::new());
        for kind in ReminderKind::ALL {
            let due_at = kind.due_at(starts_at);
            let pending = SendReminder::query().appointment_id(id).kind(kind);
            if due_at <= self.clock.now() {
                // Too late for this reminder at the new time: withdraw the old one.
                tx.cancel_jobs(pending).await?;
                continue;
            }
            let change = Change::new().schedule_at(self.clock.run_at(due_at));
            let update = tx.update_jobs(pending.clone(), change).await?;
            if update.changed == 1 {
                let job_id = tx.list_jobs(pending.states(WAITING)).await?.first().map_or(0, |j| j.row.id);
                moved.push(BookedReminder { kind, job_id, due_at });
            } else if update.started.is_empty()
                && let Some(reminder) = self.book_reminder(&mut tx, id, kind, starts_at).await?
            {
                booked.push(reminder);
            }
        }
        tx.commit().await?;
        Ok((moved, booked))
    }

    /// Cancels an appointment and its pending reminders and forgets its risk score, in one
    /// transaction; returns how many reminder jobs it cancelled.
    pub(crate) async fn cancel(&self, id: i64) -> Result<u64, BoxError> {
        let mut tx = self.sql.begin().await?;
        if !store::cancel_appointment(&mut tx, id).await? {
            return Err(format!("appointment {id} is not booked").into());
        }
        let cancelled = tx.cancel_jobs(SendReminder::query().appointment_id(id)).await?;
        store::delete_risk_score(&mut tx, id).await?;
        tx.commit().await?;
        Ok(cancelled)
    }

    /// Queues the reminder of `kind` if its time has not passed, in the caller's transaction.
    async fn book_reminder(
        &self,
        tx: &mut Tx<'_>,
        appointment_id: i64,
        kind: ReminderKind,
        starts_at: i64,
    ) -> Result<Option<BookedReminder>, BoxError> {
        let due_at = kind.due_at(starts_at);
        if due_at <= self.clock.now() {
            return Ok(None); // booked at short notice: this reminder would come too late
        }
        let job = SendReminder { appointment_id, kind };
        // Partitioned by clinic: clinics that share the database take turns on the queue, so
        // one clinic's campaign does not hold back another's reminders.
        let job = job.schedule_at(self.clock.run_at(due_at)).partition(CLINIC_ID);
        let inserted = tx.insert_job(job).await?;
        if inserted.conflict {
            // The job's unique key found a pending reminder of this kind: never send two.
            // Returning the error drops (rolls back) the whole transaction.
            return Err(format!(
                "appointment {appointment_id} already has a pending {} reminder (job {})",
                kind.as_str(),
                inserted.job.id
            )
            .into());
        }
        Ok(Some(BookedReminder { kind, job_id: inserted.job.id, due_at }))
    }
}

/// The states of a reminder that has not been sent yet.
const WAITING: [JobState; 3] = [JobState::Available, JobState::Scheduled, JobState::Retryable];

/// The no-show risk of an appointment, 0 to 100, from what the clinic knows `now` (unix seconds).
///
/// Deliberately simple and deterministic: patients who missed appointments before miss more,
/// appointments that were moved are missed more, and so are appointments booked far ahead.
pub(crate) fn no_show_risk(appointment: &store::Appointment, now: i64) -> i64 {
    let days_ahead = ((appointment.starts_at - now) / 86_400).clamp(0, 14);
    let score =
        10 + 25 * appointment.patient.prior_no_shows.min(3) + 10 * appointment.reschedules + 2 * days_ahead;
    score.clamp(0, 100)
}

/// A clinic time for people: `Tue 05 May 21:00 UTC`.
pub(crate) fn show_time(at: i64) -> String {
    DateTime::from_timestamp(at, 0)
        .map_or_else(|| at.to_string(), |t| t.format("%a %d %b %H:%M UTC").to_string())
}
