use jobsmith::job;

#[job(unique(keys = ["appointment_id", "appointment"]))]
async fn send_reminder(appointment_id: i64, kind: String) -> Result<(), String> {
    let _ = (appointment_id, kind);
    Ok(())
}

fn main() {}
