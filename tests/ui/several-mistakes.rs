// Independent mistakes are all reported at once, each at its own tokens.
use jobsmith::job;

#[job(queue = "", priority = -1, tags = ["ok", 7])]
async fn send_reminder(appointment_id: &str) -> Result<(), String> {
    let _ = appointment_id;
    Ok(())
}

fn main() {}
