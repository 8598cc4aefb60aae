use jobsmith::job;

#[job(max_attempts = 0)]
async fn send_reminder(appointment_id: i64) -> Result<(), String> {
    let _ = appointment_id;
    Ok(())
}

fn main() {}
