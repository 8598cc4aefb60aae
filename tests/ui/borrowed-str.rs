use jobsmith::job;

#[job]
async fn send_reminder(email: &str) -> Result<(), String> {
    let _ = email;
    Ok(())
}

fn main() {}
