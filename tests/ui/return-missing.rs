use jobsmith::job;

#[job]
async fn send_reminder(appointment_id: i64) {
    let _ = appointment_id;
}

fn main() {}
