use jobsmith::job;

#[job]
async fn send_reminder(message: impl Into<String>) -> Result<(), String> {
    let _ = message.into();
    Ok(())
}

fn main() {}
