//! Awaiting a job: `db.wait::<J>(id, timeout)` / `db.enqueue(job)?.wait(timeout)` returns the
//! typed result, or the final error, or a timeout that leaves the job going; woken by the
//! engine's announcements (the tests set the safety-net re-read to an hour, so only an
//! announcement can wake them in time).

use std::time::Duration;

use jobsmith::prelude::*;
use jobsmith::{Db, Error, JobState, Registry, WorkerEntry};

use super::harness::{LONG, TestDb, wait_for};
use super::results::{Sum, Total};

/// Fails for good on its one attempt.
#[jobsmith::job(queue = "waiting", max_attempts = 1)]
pub async fn hopeless(n: i64) -> Result<i64, String> {
    Err(format!("no luck with {n}"))
}

/// Completes once `gate` (a file path) exists, so the test decides when.
#[jobsmith::job(queue = "waiting-gated")]
pub async fn gated(gate: String) -> Result<String, String> {
    while !std::path::Path::new(&gate).exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(format!("passed {gate}"))
}

const AN_HOUR: Duration = Duration::from_secs(3600);

/// A second `Db` on the same database, as another process would have: no runtime, its own pool
/// and listener, and waiters that never re-read on their own.
async fn waiter_of(db: &TestDb) -> Db {
    let url = match db.kind {
        super::harness::Kind::Postgres => {
            let mut url = super::harness::base_url();
            url.truncate(url.rfind('/').unwrap() + 1);
            url + &db.name
        }
        super::harness::Kind::Sqlite => format!("sqlite://{}", db.name),
    };
    let other = Db::connect(&url).await.unwrap();
    other.with_wait_recheck(AN_HOUR)
}

conformance! {
    /// The typed result from a process without a runtime, once the job completes; and a job
    /// that failed for good, as its error.
    async fn waiting_returns_the_typed_result_or_the_final_error(db) {
        let waiter = waiter_of(&db).await;
        let registry = Registry::from_entries([WorkerEntry::of::<Sum>(), WorkerEntry::of::<Hopeless>()]).unwrap();
        let handle = waiter.enqueue(Sum { terms: vec![20, 22] }.schedule_in(Duration::from_millis(300))).await.unwrap();
        let failing = waiter.enqueue(Hopeless { n: 3 }).await.unwrap();
        let rt = db.runtime().registry(registry).queue("results-sum", 2).queue("waiting", 2).start().await.unwrap();
        let total = handle.wait(LONG).await.unwrap();
        assert_eq!(total, Some(Total { sum: 42, terms: vec![20, 22] }));
        match failing.wait(LONG).await {
            Err(Error::JobFailed { id, state, error }) => {
                assert_eq!((id, state), (failing.id(), JobState::Discarded));
                assert!(error.contains("no luck with 3"), "{error}");
            }
            other => panic!("expected the job's failure, got {other:?}"),
        }
        // Waiting again for a finished job answers at once.
        assert_eq!(waiter.wait::<Sum>(handle.id(), Duration::from_millis(1)).await.unwrap().map(|t| t.sum), Some(42));
        rt.shutdown().await.unwrap();
    }
}

conformance! {
    /// A timeout leaves the job as it was; a cancel ends the wait with the cancel; a missing job
    /// is not found.
    async fn a_wait_times_out_leaving_the_job_or_ends_with_its_cancel(db) {
        let waiter = waiter_of(&db).await;
        let later = waiter.enqueue(Sum { terms: vec![1] }.schedule_in(AN_HOUR)).await.unwrap();
        match later.wait(Duration::from_millis(200)).await {
            Err(Error::WaitTimedOut { id, state }) => assert_eq!((id, state), (later.id(), JobState::Scheduled)),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(db.job(later.id()).await.state, JobState::Scheduled, "the job goes on");

        let waiting = {
            let handle = later.clone();
            tokio::spawn(async move { handle.wait(LONG).await })
        };
        // Cancelled by another process's engine once the waiter is waiting.
        wait_for("the job to be awaited", LONG, || async {
            (db.scalar(&format!("SELECT count(*) FROM {} WHERE id = {} AND awaited", jobs_table(&db), later.id())).await == 1).then_some(())
        }).await;
        assert!(db.engine().cancel_job(later.id()).await.unwrap().is_some());
        match waiting.await.unwrap() {
            Err(Error::JobFailed { state: JobState::Cancelled, error, .. }) => assert_eq!(error, "cancelled by request"),
            other => panic!("expected the cancel, got {other:?}"),
        }
        assert!(matches!(waiter.wait::<Sum>(987_654, LONG).await, Err(Error::JobNotFound(987_654))));
    }
}

fn jobs_table(db: &TestDb) -> &'static str {
    match db.kind {
        super::harness::Kind::Postgres => "jobsmith.jobs",
        super::harness::Kind::Sqlite => "jobsmith_jobs",
    }
}

/// PostgreSQL: two hundred waiters in one process cost one listening connection, and all are
/// woken by the announcements of jobs run by another `Db`'s runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiters_share_one_listener() {
    let db = TestDb::new(super::harness::Kind::Postgres).await;
    let waiter = waiter_of(&db).await;
    let gate = std::env::temp_dir().join(format!("jobsmith-gate-{}", std::process::id()));
    let _ = std::fs::remove_file(&gate);
    let gate_path = gate.display().to_string();
    let mut handles = Vec::new();
    for _ in 0..200 {
        handles.push(waiter.enqueue(Gated { gate: gate_path.clone() }).await.unwrap());
    }
    let waits: Vec<_> =
        handles.iter().cloned().map(|h| tokio::spawn(async move { h.wait(LONG).await })).collect();
    let registry = Registry::from_entries([WorkerEntry::of::<Gated>()]).unwrap();
    let rt = db.runtime().registry(registry).queue("waiting-gated", 50).start().await.unwrap();
    wait_for("every job awaited", LONG, || async {
        (db.scalar("SELECT count(*) FROM jobsmith.jobs WHERE awaited").await == 200).then_some(())
    })
    .await;
    let listeners = db
        .scalar(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'LISTEN%jobsmith_finished%'",
            db.name
        ))
        .await;
    assert_eq!(listeners, 1, "one listener for all the waiters");
    std::fs::write(&gate, b"open").unwrap();
    for wait in waits {
        assert!(wait.await.unwrap().unwrap().unwrap().starts_with("passed "));
    }
    rt.shutdown().await.unwrap();
    let _ = std::fs::remove_file(&gate);
}

/// Runs of `bumpy` per `n` (each engine's test uses its own `n`).
static BUMPY_RUNS: std::sync::Mutex<Vec<(i64, u32)>> = std::sync::Mutex::new(Vec::new());

/// Fails its first run, snoozes its second, completes its third with `n * 10`.
#[jobsmith::job(queue = "waiting-bumpy", max_attempts = 5, backoff = at_once)]
pub async fn bumpy(n: i64) -> Result<jobsmith::Outcome<i64>, String> {
    let run = {
        let mut runs = BUMPY_RUNS.lock().unwrap();
        match runs.iter_mut().find(|(k, _)| *k == n) {
            Some((_, r)) => {
                *r += 1;
                *r
            }
            None => {
                runs.push((n, 1));
                1
            }
        }
    };
    match run {
        1 => Err("first try fails".into()),
        2 => Ok(jobsmith::Outcome::Snooze(Duration::from_millis(50))),
        _ => Ok(jobsmith::Outcome::CompleteWith(n * 10)),
    }
}

fn at_once(_attempt: u32) -> Duration {
    Duration::ZERO
}

conformance! {
    /// A wait goes on through a failed attempt (retryable) and a snooze, and returns the result
    /// of the attempt that completes.
    async fn a_wait_outlasts_retries_and_snoozes(db) {
        let waiter = waiter_of(&db).await;
        let n = if db.kind == crate::harness::Kind::Postgres { 4 } else { 5 };
        let handle = waiter.enqueue(Bumpy { n }).await.unwrap();
        let registry = Registry::from_entries([WorkerEntry::of::<Bumpy>()]).unwrap();
        let rt = db.runtime().registry(registry).queue("waiting-bumpy", 1).start().await.unwrap();
        assert_eq!(handle.wait(LONG).await.unwrap(), Some(n * 10));
        let job = db.job(handle.id()).await;
        assert_eq!(job.errors.len(), 1, "one failed attempt: {:?}", job.errors);
        rt.shutdown().await.unwrap();
    }
}
