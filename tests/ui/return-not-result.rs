use jobsmith::job;

#[job]
async fn send_reminder(appointment_id: i64) -> i32 {
    appointment_id as i32
}

fn main() {}
