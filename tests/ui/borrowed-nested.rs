use jobsmith::job;

#[job]
async fn send_reminder(recipients: Vec<&'static str>) -> Result<(), String> {
    let _ = recipients;
    Ok(())
}

fn main() {}
