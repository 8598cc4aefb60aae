//! A job fn returning `Result<T, E>` records `T`: `Job::Output` is `T`. `Result<Outcome<T>, E>`
//! chooses the ending and records `T` with `Outcome::CompleteWith`; `Outcome` alone records
//! nothing, and neither does `()`.
use jobsmith::{Job, Outcome, job};

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub no_shows: u32,
}

#[job]
async fn count_reminders(appointment_id: i64) -> Result<i32, String> {
    Ok(appointment_id as i32)
}

#[job]
async fn monthly_report(month: u32) -> Result<Outcome<Report>, String> {
    if month > 12 { Ok(Outcome::Discard("no such month".into())) } else { Ok(Outcome::CompleteWith(Report { no_shows: 3 })) }
}

#[job]
async fn plain(n: i64) -> Result<Outcome, String> {
    let _ = n;
    Ok(Outcome::Complete)
}

#[job]
async fn with_anyhow_style(n: i64) -> std::io::Result<String> {
    Ok(n.to_string())
}

fn main() {
    let _: Option<<CountReminders as Job>::Output> = Some(3i32);
    let _: Option<<MonthlyReport as Job>::Output> = Some(Report { no_shows: 1 });
    let _: Option<<Plain as Job>::Output> = Some(());
    let _: Option<<WithAnyhowStyle as Job>::Output> = Some(String::new());
}
