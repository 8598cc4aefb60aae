use jobsmith::job;

#[job(unique(states = [available, completed]))]
async fn send_reminder(appointment_id: i64) -> Result<(), String> {
    let _ = appointment_id;
    Ok(())
}

fn main() {}
