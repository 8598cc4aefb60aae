use jobsmith::job;

#[job]
async extern "C" fn send_reminder(appointment_id: i64) -> Result<(), String> {
    let _ = appointment_id;
    Ok(())
}

fn main() {}
