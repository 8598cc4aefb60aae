use jobsmith::job;

#[job(aliases = ["old::Send", "old::Send"])]
async fn send_reminder(appointment_id: i64) -> Result<(), String> {
    let _ = appointment_id;
    Ok(())
}

fn main() {}
