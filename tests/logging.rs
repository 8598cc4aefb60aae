//! Tracing: spans and events under the `jobsmith` target, and job args kept out of them unless
//! `log_args(true)` (args may hold personal data). Its own binary: it installs the global
//! subscriber.

#![allow(unreachable_pub)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobsmith::{Db, JobExt, JobState, job};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

/// Fails once, so the retry event is logged too.
#[job(max_attempts = 2, backoff = quick)]
async fn private_thing(ctx: jobsmith::JobContext, email: String) -> Result<(), String> {
    let _ = email;
    if ctx.attempt == 1 { Err("first try fails".into()) } else { Ok(()) }
}

fn quick(_: u32) -> Duration {
    Duration::from_millis(50)
}

async fn run(db: &Db, log_args: bool, email: &str) {
    let rt = db.runtime().queue("default", 1).log_args(log_args).start().await.unwrap();
    let id = db.insert(PrivateThing { email: email.into() }).await.unwrap().job.id;
    let deadline = Instant::now() + Duration::from_secs(60);
    while db.engine().get_job(id).await.unwrap().unwrap().state != JobState::Completed {
        assert!(Instant::now() < deadline, "the job did not complete");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rt.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_events_use_the_jobsmith_target_and_leave_args_out_by_default() {
    let out = Captured::default();
    let writer = out.clone();
    tracing_subscriber::fmt()
        .with_env_filter("off,jobsmith=debug")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();

    run(&db, false, "ada@private.example").await;
    let logs = out.text();
    for expected in
        ["jobsmith.job", "job inserted", "job failed; will retry", "first try fails", "jobsmith node started"]
    {
        assert!(logs.contains(expected), "missing `{expected}` in:\n{logs}");
    }
    assert!(!logs.contains("ada@private.example"), "args leaked into the logs:\n{logs}");

    run(&db, true, "bob@logged.example").await;
    assert!(out.text().contains("bob@logged.example"), "log_args(true) records the args");
}

/// A cron entry whose queue this node does not run is warned about at start: its jobs would wait
/// until some node runs that queue. Scoped to this test's thread (a current-thread runtime runs
/// `start` here), so it does not disturb the global subscriber of the test above.
#[tokio::test]
async fn a_cron_entry_for_a_queue_the_node_does_not_run_is_warned_about_at_start() {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("off,jobsmith=warn")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _scope = tracing::subscriber::set_default(subscriber);
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let job = || PrivateThing { email: "cron@private.example".into() };
    let rt = db
        .runtime()
        .queue("default", 1)
        .cron_from_attributes(false)
        .cron("0 0 1 1 *", job().on_queue("reports"))
        .cron("0 0 2 1 *", job())
        .start()
        .await
        .unwrap();
    rt.shutdown().await.unwrap();
    let logs = out.text();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "one warning, for the `reports` entry only:\n{logs}");
    for expected in ["0 0 1 1 *", "queue `reports`", "does not run"] {
        assert!(warnings[0].contains(expected), "missing `{expected}` in:\n{logs}");
    }
    assert!(!logs.contains("cron@private.example"), "args leaked into the logs:\n{logs}");
}
