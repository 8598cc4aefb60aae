use jobsmith::job;

// A step larger than the seconds field's range would match second 0 only.
#[job(cron = "*/70 * * * * *")]
async fn heartbeat() -> Result<(), String> {
    Ok(())
}

fn main() {}
