use jobsmith::{JobContext, job};

#[job]
async fn send_reminder(ctx: &JobContext, appointment_id: i64) -> Result<(), String> {
    let _ = (appointment_id, ctx);
    Ok(())
}

fn main() {}
