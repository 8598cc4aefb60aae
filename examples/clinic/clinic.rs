//! The clinic's rules: which reminders an appointment gets, what happens to them when the
//! appointment moves or is cancelled, and how likely a patient is not to show up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jobsmith::Runtime;
use jobsmith::prelude::*;
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

    /// The name stored in `clinic_reminders.kind` (the same as in the job's args).
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

/// Books, moves and cancels appointments, keeping their reminder jobs in step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clinic<'a> {
    sql: &'a Sql,
    runtime: &'a Runtime,
    clock: &'a Clock,
}

impl<'a> Clinic<'a> {
    /// The clinic on this database; `runtime` cancels reminder jobs.
    pub(crate) fn new(sql: &'a Sql, runtime: &'a Runtime, clock: &'a Clock) -> Self {
        Clinic { sql, runtime, clock }
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
        let reminders = self.book_reminders(&mut tx, id, starts_at).await?;
        tx.commit().await?;
        Ok((id, reminders))
    }

    /// Moves an appointment: its pending reminders are cancelled and new ones booked for the new
    /// time. Returns the cancelled reminder jobs and the new reminders.
    pub(crate) async fn reschedule(
        &self,
        id: i64,
        starts_at: i64,
    ) -> Result<(Vec<i64>, Vec<BookedReminder>), BoxError> {
        // 1. Move the appointment and withdraw its reminders in one transaction. From the commit
        //    on, an old reminder that runs anyway sees the new time and cancels itself.
        let mut tx = self.sql.begin().await?;
        if !store::move_appointment(&mut tx, id, starts_at).await? {
            return Err(format!("appointment {id} is not booked").into());
        }
        let old = store::withdraw_reminders(&mut tx, id).await?;
        tx.commit().await?;
        // 2. Cancel the old jobs. This frees their unique key (appointment, kind), which is why
        //    the new reminders cannot be booked in the first transaction: cancelling is the
        //    runtime's write, on its own connection, so it cannot join ours (on SQLite it would
        //    even wait for our lock).
        self.cancel_jobs(&old).await?;
        // 3. Book the new reminders. Should this fail, calling `reschedule` again books them.
        let mut tx = self.sql.begin().await?;
        let new = self.book_reminders(&mut tx, id, starts_at).await?;
        tx.commit().await?;
        Ok((old, new))
    }

    /// Cancels an appointment and its pending reminders; returns the cancelled reminder jobs.
    pub(crate) async fn cancel(&self, id: i64) -> Result<Vec<i64>, BoxError> {
        let mut tx = self.sql.begin().await?;
        if !store::cancel_appointment(&mut tx, id).await? {
            return Err(format!("appointment {id} is not booked").into());
        }
        let reminders = store::withdraw_reminders(&mut tx, id).await?;
        tx.commit().await?;
        // As in `reschedule`: if this process dies right here, the reminders still cancel
        // themselves when they run, because the appointment is cancelled.
        self.cancel_jobs(&reminders).await?;
        Ok(reminders)
    }

    /// Queues one reminder job per kind whose time has not passed, and records each next to the
    /// appointment, in the caller's transaction.
    async fn book_reminders(
        &self,
        tx: &mut Tx,
        appointment_id: i64,
        starts_at: i64,
    ) -> Result<Vec<BookedReminder>, BoxError> {
        let mut booked = Vec::new();
        for kind in ReminderKind::ALL {
            let due_at = kind.due_at(starts_at);
            if due_at <= self.clock.now() {
                continue; // booked at short notice: this reminder would come too late
            }
            let job = SendReminder { appointment_id, kind, starts_at };
            let inserted = tx.insert_job(job.schedule_at(self.clock.run_at(due_at))).await?;
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
            store::record_reminder(tx, inserted.job.id, appointment_id, kind.as_str(), due_at).await?;
            booked.push(BookedReminder { kind, job_id: inserted.job.id, due_at });
        }
        Ok(booked)
    }

    async fn cancel_jobs(&self, ids: &[i64]) -> Result<(), BoxError> {
        for id in ids {
            // `None` means the job already finished (it ran, or cancelled itself): nothing to do.
            self.runtime.cancel_job(*id).await?;
        }
        Ok(())
    }
}

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
