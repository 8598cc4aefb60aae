use jobsmith::job;

struct Reminders;

impl Reminders {
    #[job(queue = "events")]
    async fn send(self, appointment_id: i64) -> Result<(), String> {
        let _ = appointment_id;
        Ok(())
    }
}

fn main() {}
