//! Every SQL statement of the clinic, one function each, all run inside a caller's transaction
//! ([`Tx`]) so the caller decides what commits together.
//!
//! Written once for both engines: `$n` placeholders, times as BIGINT unix seconds, and only SQL
//! that PostgreSQL and SQLite share (`RETURNING`, `ON CONFLICT ... DO UPDATE`).

use crate::db::Tx;

/// A patient.
#[derive(Debug, Clone)]
pub(crate) struct Patient {
    /// Id, also the insurer's member id in this example.
    pub(crate) id: i64,
    /// Full name.
    pub(crate) name: String,
    /// Where reminders go.
    pub(crate) email: String,
    /// Appointments missed before.
    pub(crate) prior_no_shows: i64,
}

/// Whether an appointment still takes place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// It takes place at `starts_at`.
    Booked,
    /// It was cancelled.
    Cancelled,
}

/// An appointment with its patient.
#[derive(Debug, Clone)]
pub(crate) struct Appointment {
    /// Id.
    pub(crate) id: i64,
    /// Start, unix seconds.
    pub(crate) starts_at: i64,
    /// Booked or cancelled.
    pub(crate) status: Status,
    /// How often it was moved.
    pub(crate) reschedules: i64,
    /// Who comes.
    pub(crate) patient: Patient,
}

/// A no-show risk score.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RiskScore {
    /// 0 (will come) to 100 (will not).
    pub(crate) score: i64,
    /// When it was computed, unix seconds.
    pub(crate) scored_at: i64,
    /// The job that computed it.
    pub(crate) job_id: i64,
}

/// A patient's benefits as last synced from the insurer.
#[derive(Debug, Clone)]
pub(crate) struct Benefits {
    /// Plan name.
    pub(crate) plan: String,
    /// Co-payment per visit.
    pub(crate) copay_cents: i64,
}

type AppointmentRow = (i64, i64, String, i64, i64, String, String, i64);

/// `SELECT` of an appointment and its patient, as an [`AppointmentRow`], followed by `$rest`.
macro_rules! select_appointments {
    ($rest:literal) => {
        concat!(
            "SELECT a.id, a.starts_at, a.status, a.reschedules, p.id, p.name, p.email, p.prior_no_shows
             FROM clinic_appointments a JOIN clinic_patients p ON p.id = a.patient_id ",
            $rest
        )
    };
}

fn appointment_from_row(row: AppointmentRow) -> Appointment {
    let (id, starts_at, status, reschedules, patient_id, name, email, prior_no_shows) = row;
    Appointment {
        id,
        starts_at,
        status: if status == "cancelled" { Status::Cancelled } else { Status::Booked },
        reschedules,
        patient: Patient { id: patient_id, name, email, prior_no_shows },
    }
}

/// Adds or updates a patient.
pub(crate) async fn save_patient(tx: &mut Tx<'_>, p: &Patient) -> sqlx::Result<()> {
    tx.execute(
        "INSERT INTO clinic_patients (id, name, email, prior_no_shows) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE
         SET name = excluded.name, email = excluded.email, prior_no_shows = excluded.prior_no_shows",
        &[p.id.into(), p.name.as_str().into(), p.email.as_str().into(), p.prior_no_shows.into()],
    )
    .await?;
    Ok(())
}

/// Books an appointment; returns its id.
pub(crate) async fn insert_appointment(
    tx: &mut Tx<'_>,
    patient_id: i64,
    starts_at: i64,
    now: i64,
) -> sqlx::Result<i64> {
    let row: Option<(i64,)> = tx
        .fetch_optional(
            "INSERT INTO clinic_appointments (patient_id, starts_at, booked_at) VALUES ($1, $2, $3)
             RETURNING id",
            &[patient_id.into(), starts_at.into(), now.into()],
        )
        .await?;
    Ok(row.ok_or(sqlx::Error::RowNotFound)?.0)
}

/// One appointment with its patient.
pub(crate) async fn appointment(tx: &mut Tx<'_>, id: i64) -> sqlx::Result<Option<Appointment>> {
    let row: Option<AppointmentRow> =
        tx.fetch_optional(select_appointments!("WHERE a.id = $1"), &[id.into()]).await?;
    Ok(row.map(appointment_from_row))
}

/// An appointment, its row locked until the transaction ends (a write of nothing, so it works
/// the same on both engines), so a move or cancel of it waits for the caller or goes first.
pub(crate) async fn lock_appointment(tx: &mut Tx<'_>, id: i64) -> sqlx::Result<Option<Appointment>> {
    tx.execute("UPDATE clinic_appointments SET reschedules = reschedules WHERE id = $1", &[id.into()])
        .await?;
    appointment(tx, id).await
}

/// Booked appointments that start after `now`, soonest first.
pub(crate) async fn upcoming_appointments(tx: &mut Tx<'_>, now: i64) -> sqlx::Result<Vec<Appointment>> {
    let rows: Vec<AppointmentRow> = tx
        .fetch_all(
            select_appointments!("WHERE a.status = 'booked' AND a.starts_at > $1 ORDER BY a.starts_at, a.id"),
            &[now.into()],
        )
        .await?;
    Ok(rows.into_iter().map(appointment_from_row).collect())
}

/// Moves a booked appointment; false if there is no such booked appointment.
pub(crate) async fn move_appointment(tx: &mut Tx<'_>, id: i64, starts_at: i64) -> sqlx::Result<bool> {
    let changed = tx
        .execute(
            "UPDATE clinic_appointments SET starts_at = $2, reschedules = reschedules + 1
             WHERE id = $1 AND status = 'booked'",
            &[id.into(), starts_at.into()],
        )
        .await?;
    Ok(changed == 1)
}

/// Cancels a booked appointment; false if there is no such booked appointment.
pub(crate) async fn cancel_appointment(tx: &mut Tx<'_>, id: i64) -> sqlx::Result<bool> {
    let changed = tx
        .execute(
            "UPDATE clinic_appointments SET status = 'cancelled' WHERE id = $1 AND status = 'booked'",
            &[id.into()],
        )
        .await?;
    Ok(changed == 1)
}

/// Stores an appointment's latest risk score.
pub(crate) async fn save_risk_score(
    tx: &mut Tx<'_>,
    appointment_id: i64,
    score: RiskScore,
) -> sqlx::Result<()> {
    tx.execute(
        "INSERT INTO clinic_risk_scores (appointment_id, score, scored_at, job_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (appointment_id) DO UPDATE
         SET score = excluded.score, scored_at = excluded.scored_at, job_id = excluded.job_id",
        &[appointment_id.into(), score.score.into(), score.scored_at.into(), score.job_id.into()],
    )
    .await?;
    Ok(())
}

/// Forgets an appointment's risk score (a cancelled appointment has none).
pub(crate) async fn delete_risk_score(tx: &mut Tx<'_>, appointment_id: i64) -> sqlx::Result<()> {
    tx.execute("DELETE FROM clinic_risk_scores WHERE appointment_id = $1", &[appointment_id.into()]).await?;
    Ok(())
}

/// An appointment's latest risk score.
pub(crate) async fn risk_score(tx: &mut Tx<'_>, appointment_id: i64) -> sqlx::Result<Option<RiskScore>> {
    let row: Option<(i64, i64, i64)> = tx
        .fetch_optional(
            "SELECT score, scored_at, job_id FROM clinic_risk_scores WHERE appointment_id = $1",
            &[appointment_id.into()],
        )
        .await?;
    Ok(row.map(|(score, scored_at, job_id)| RiskScore { score, scored_at, job_id }))
}

/// How many appointments are booked and how many cancelled.
pub(crate) async fn appointment_counts(tx: &mut Tx<'_>) -> sqlx::Result<(i64, i64)> {
    let row: (i64, i64) = tx
        .fetch_optional(
            "SELECT coalesce(sum(CASE WHEN status = 'booked' THEN 1 ELSE 0 END), 0),
                    coalesce(sum(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END), 0)
             FROM clinic_appointments",
            &[],
        )
        .await?
        .unwrap_or((0, 0));
    Ok(row)
}

/// Stores a patient's benefits.
pub(crate) async fn save_benefits(
    tx: &mut Tx<'_>,
    patient_id: i64,
    b: &Benefits,
    now: i64,
) -> sqlx::Result<()> {
    tx.execute(
        "INSERT INTO clinic_benefits (patient_id, plan, copay_cents, synced_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (patient_id) DO UPDATE
         SET plan = excluded.plan, copay_cents = excluded.copay_cents, synced_at = excluded.synced_at",
        &[patient_id.into(), b.plan.as_str().into(), b.copay_cents.into(), now.into()],
    )
    .await?;
    Ok(())
}

/// A patient's benefits, if synced.
pub(crate) async fn benefits(tx: &mut Tx<'_>, patient_id: i64) -> sqlx::Result<Option<Benefits>> {
    let row: Option<(String, i64)> = tx
        .fetch_optional(
            "SELECT plan, copay_cents FROM clinic_benefits WHERE patient_id = $1",
            &[patient_id.into()],
        )
        .await?;
    Ok(row.map(|(plan, copay_cents)| Benefits { plan, copay_cents }))
}
