use jobsmith::job;

struct Reminders;

impl Reminders {
    #[job]
    async fn send(appointment_id: i64) -> Result<(), String> {
        let _ = appointment_id;
        Ok(())
    }
}

fn main() {}
