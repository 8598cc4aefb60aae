use jobsmith::job;

#[job(queue = "events", max_attempts = 3, queue = "reminders")]
async fn send_reminder(appointment_id: i64) -> Result<(), String> {
    let _ = appointment_id;
    Ok(())
}

fn main() {}
