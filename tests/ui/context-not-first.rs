use jobsmith::{JobContext, job};

#[job]
async fn send_reminder(appointment_id: i64, ctx: JobContext) -> Result<(), String> {
    let _ = (appointment_id, ctx);
    Ok(())
}

fn main() {}
