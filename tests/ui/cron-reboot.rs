use jobsmith::job;

#[job(cron = "@reboot")]
async fn warm_cache() -> Result<(), String> {
    Ok(())
}

fn main() {}
