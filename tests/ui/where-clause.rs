use jobsmith::job;

#[job]
async fn send_reminder(appointment_id: i64) -> Result<(), String>
where
    i64: Copy,
{
    let _ = appointment_id;
    Ok(())
}

fn main() {}
