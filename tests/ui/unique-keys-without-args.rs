use jobsmith::job;

#[job(unique(by = [worker, queue], keys = ["appointment_id"]))]
async fn send_reminder(appointment_id: i64) -> Result<(), String> {
    let _ = appointment_id;
    Ok(())
}

fn main() {}
