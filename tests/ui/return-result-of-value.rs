use jobsmith::job;

#[job]
async fn count_reminders(appointment_id: i64) -> Result<i32, String> {
    Ok(appointment_id as i32)
}

fn main() {}
