use jobsmith::job;

#[job(cron = "0 2 * * *")]
async fn nightly_report(day: String) -> Result<(), String> {
    let _ = day;
    Ok(())
}

fn main() {}
