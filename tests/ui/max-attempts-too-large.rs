use jobsmith::job;

// Above i32::MAX: the column is a 32-bit integer, so no insert could store it.
#[job(max_attempts = 3000000000)]
async fn send_reminder(appointment_id: i64) -> Result<(), String> {
    let _ = appointment_id;
    Ok(())
}

fn main() {}
