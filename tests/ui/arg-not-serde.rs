use jobsmith::job;

#[derive(Debug, Clone)]
pub struct Appointment {
    pub id: i64,
}

#[job]
async fn send_reminder(appointment: Appointment) -> Result<(), String> {
    let _ = appointment;
    Ok(())
}

fn main() {}
