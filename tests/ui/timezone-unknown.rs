use jobsmith::job;

#[job(cron = "0 2 * * *", timezone = "America/Springfield")]
async fn nightly_report() -> Result<(), String> {
    Ok(())
}

fn main() {}
