use jobsmith::job;

#[job(queue = "events")]
pub struct SendReminder {
    pub appointment_id: i64,
}

fn main() {}
