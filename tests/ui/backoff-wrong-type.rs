use std::time::Duration;

use jobsmith::job;

fn slow_backoff(attempt: u64) -> Duration {
    Duration::from_secs(attempt * 60)
}

#[job(backoff = slow_backoff)]
async fn send_reminder(appointment_id: i64) -> Result<(), String> {
    let _ = appointment_id;
    Ok(())
}

fn main() {}
