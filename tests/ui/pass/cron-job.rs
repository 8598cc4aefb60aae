#![deny(warnings)]

use jobsmith::{Job, JobContext, job};

/// Runs at 02:00 New York time, every day.
#[job(queue = "maintenance", cron = "0 2 * * *", timezone = "America/New_York")]
async fn nightly_report(ctx: JobContext) -> Result<(), String> {
    let _ = ctx;
    Ok(())
}

/// Every ten seconds, in UTC.
#[job(cron = "*/10 * * * * *")]
async fn heartbeat_check() -> Result<(), String> {
    Ok(())
}

fn main() {
    let spec = NightlyReport::OPTIONS.cron.expect("cron set");
    assert_eq!((spec.expr, spec.timezone), ("0 2 * * *", "America/New_York"));
    assert_eq!(HeartbeatCheck::OPTIONS.cron.map(|c| c.timezone), Some("UTC"));
    let _ = (nightly_report, heartbeat_check);
}
