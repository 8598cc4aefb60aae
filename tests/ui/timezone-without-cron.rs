use jobsmith::job;

#[job(timezone = "Europe/Paris")]
async fn nightly_report() -> Result<(), String> {
    Ok(())
}

fn main() {}
