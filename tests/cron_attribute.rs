//! `#[job(cron = ...)]`: every runtime of the binary schedules it (its own test binary, since an
//! attribute cron is registered for every runtime in the process).

#![allow(unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jobsmith::{JobContext, JobState, job};

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// Every second, in a real time zone.
#[job(queue = "attr", cron = "* * * * * *", timezone = "Europe/Paris")]
async fn every_second(ctx: JobContext) -> Result<(), String> {
    assert_eq!(ctx.meta["cron"], serde_json::json!(ctx.worker));
    RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attribute_cron_fires_every_slot_and_can_be_turned_off() {
    let db = jobsmith::Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();

    // Turned off: nothing is inserted even across several slots.
    let off = db.runtime().queue("attr", 2).cron_from_attributes(false).start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await; // a negative check: two slots pass
    off.shutdown().await.unwrap();
    assert_eq!(db.engine().count_by_state().await.unwrap().len(), 0, "no cron job was inserted");

    let on = db.runtime().queue("attr", 2).start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while RUNS.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "the cron job did not run three times");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    on.shutdown().await.unwrap();
    let rows = db
        .engine()
        .list_jobs(&Default::default(), jobsmith::Page { limit: 100, before_id: None })
        .await
        .unwrap();
    let mut slots: Vec<String> =
        rows.iter().map(|r| r.meta["cron_slot"].as_str().unwrap().to_string()).collect();
    let n = slots.len();
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), n, "each slot once");
    assert!(rows.iter().filter(|r| r.state == JobState::Completed).count() >= 3);
}
