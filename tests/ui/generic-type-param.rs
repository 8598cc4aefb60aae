use jobsmith::job;

#[job]
async fn send_reminder<T: std::fmt::Display>(appointment_id: T) -> Result<(), String> {
    let _ = appointment_id.to_string();
    Ok(())
}

fn main() {}
