use jobsmith::job;

#[job]
async fn send_reminder(appointment_id: i64) -> Result<(), String> {
    let _ = appointment_id;
    Ok(())
}

fn main() {
    // A misspelled field, and a value of the wrong type: both compile errors.
    let _ = SendReminder::query().appointmentid(7);
    let _ = SendReminder::query().appointment_id("7");
}
