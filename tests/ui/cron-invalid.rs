use jobsmith::job;

#[job(cron = "0 25 * * *")]
async fn nightly_report() -> Result<(), String> {
    Ok(())
}

fn main() {}
