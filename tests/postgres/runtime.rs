//! The runtime: fetch, execute, record, retry, control and shut down.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use jobsmith::prelude::*;
use jobsmith::{JobState, Runtime};

use super::harness::{LONG, TestDb, count_state, wait_for, wait_job_state, wait_state_count};
use super::jobs::{AlwaysFails, Blocks, Choose, PanicsOnce, Record, SendReminder, SlowOnce};
use super::probe::Probe;

fn record(p: &Probe, label: impl Into<String>, sleep_ms: u64) -> Record {
    Record { probe: p.key.clone(), label: label.into(), sleep_ms }
}

async fn start(db: &TestDb, queues: &[(&str, usize)]) -> Runtime {
    let mut b = Runtime::builder(db.pool.clone()).poll_interval(Duration::from_millis(500));
    for (q, n) in queues {
        b = b.queue(*q, *n);
    }
    b.start().await.expect("runtime starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jobs_over_four_queues_each_run_exactly_once_within_limits() {
    let db = TestDb::new().await;
    let p = Probe::new();
    let queues = [("default", 10), ("events", 50), ("mailers", 20), ("maintenance", 5)];
    let jobs = (0..1000)
        .map(|i| record(&p, format!("j{i}"), 2).on_queue(queues[i % 4].0).build().unwrap())
        .collect();
    jobsmith::insert_all(&db.pool, jobs).await.unwrap();
    let rt = start(&db, &queues).await;
    wait_state_count(&db.pool, "completed", 1000, LONG).await;
    rt.shutdown().await.unwrap();

    let mut seen: HashMap<String, usize> = HashMap::new();
    for label in p.labels() {
        *seen.entry(label).or_default() += 1;
    }
    assert_eq!(seen.len(), 1000);
    assert!(seen.values().all(|&n| n == 1), "a job ran twice");
    let peak = p.peak.lock().unwrap().clone();
    for (q, limit) in queues {
        let got = peak.get(q).copied().unwrap_or(0);
        assert!(got <= limit, "queue {q} ran {got} at once, limit {limit}");
        assert!(got >= 1);
    }
    let (attempts, executing): (i64, i64) =
        sqlx::query_as("SELECT sum(attempt), count(*) FILTER (WHERE state = 'executing') FROM jobsmith.jobs")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((attempts, executing), (1000, 0));
}

#[tokio::test]
async fn jobs_run_in_priority_order() {
    let db = TestDb::new().await;
    let p = Probe::new();
    let rt = start(&db, &[("default", 1)]).await;
    rt.pause_queue("default").unwrap();
    for (label, prio) in [("p5", 5u8), ("p0a", 0), ("p9", 9), ("p0b", 0), ("p3", 3)] {
        record(&p, label, 0).priority(prio).insert(&db.pool).await.unwrap();
    }
    rt.resume_queue("default").unwrap();
    wait_state_count(&db.pool, "completed", 5, LONG).await;
    rt.shutdown().await.unwrap();
    assert_eq!(p.labels(), vec!["p0a", "p0b", "p3", "p5", "p9"]);
}

#[tokio::test]
async fn failures_retry_with_backoff_then_discard_with_every_error() {
    let db = TestDb::new().await;
    let p = Probe::new();
    let rt = start(&db, &[("default", 5)]).await;
    let id = AlwaysFails { probe: p.key.clone() }.insert(&db.pool).await.unwrap().job.id;
    let job = wait_job_state(&db.pool, id, JobState::Discarded, LONG).await;
    rt.shutdown().await.unwrap();

    assert_eq!(job.attempt, 3);
    assert_eq!(job.errors.len(), 3);
    for (i, e) in job.errors.iter().enumerate() {
        assert_eq!(e["attempt"], serde_json::json!(i + 1));
        assert_eq!(e["error"], serde_json::json!(format!("failure number {}", i + 1)));
        assert!(e["at"].is_string());
    }
    assert!(job.discarded_at.is_some());
    // Backoff: the declared 300 ms between attempts, not much more (staging wakes at due time).
    let starts = p.starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 3);
    for w in starts.windows(2) {
        let gap = w[1].2 - w[0].2;
        assert!(gap >= Duration::from_millis(290), "retried after {gap:?}, before the backoff");
        assert!(gap < Duration::from_millis(300) + Duration::from_secs(5), "retried after {gap:?}");
    }
}

#[tokio::test]
async fn a_panic_is_an_error_with_its_message_and_the_worker_lives_on() {
    let db = TestDb::new().await;
    let p = Probe::new();
    let rt = start(&db, &[("default", 2)]).await;
    let id = PanicsOnce { probe: p.key.clone() }.insert(&db.pool).await.unwrap().job.id;
    let job = wait_job_state(&db.pool, id, JobState::Completed, LONG).await;
    assert_eq!(job.attempt, 2);
    assert_eq!(job.errors.len(), 1);
    assert_eq!(job.errors[0]["error"], serde_json::json!("panicked: boom on attempt 1"));
    // The node still runs jobs after the panic.
    let other = record(&p, "after", 0).insert(&db.pool).await.unwrap().job.id;
    wait_job_state(&db.pool, other, JobState::Completed, LONG).await;
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_timeout_fails_the_attempt_and_fires_the_token() {
    let db = TestDb::new().await;
    let p = Probe::new();
    let rt = start(&db, &[("default", 2)]).await;
    let id = SlowOnce { probe: p.key.clone() }.insert(&db.pool).await.unwrap().job.id;
    let job = wait_job_state(&db.pool, id, JobState::Completed, LONG).await;
    rt.shutdown().await.unwrap();
    assert_eq!(job.attempt, 2);
    assert_eq!(job.errors[0]["error"], serde_json::json!("timed out after 200ms"));
    wait_for("the token to fire", LONG, || async { (p.observed_cancel.load(Ordering::SeqCst) == 1).then_some(()) })
        .await;
}

#[tokio::test]
async fn snooze_reschedules_without_using_an_attempt() {
    let db = TestDb::new().await;
    let p = Probe::new();
    let rt = start(&db, &[("default", 2)]).await;
    // max_attempts is 1: a snooze that used an attempt would leave none for the second run.
    let id = Choose { probe: p.key.clone(), what: "snooze".into() }.insert(&db.pool).await.unwrap().job.id;
    let job = wait_job_state(&db.pool, id, JobState::Completed, LONG).await;
    rt.shutdown().await.unwrap();
    let starts = p.starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 2);
    assert_eq!((starts[0].1, starts[1].1), (1, 1), "both runs were attempt 1");
    assert!(starts[1].2 - starts[0].2 >= Duration::from_millis(290));
    assert_eq!(job.attempt, 1);
    assert!(job.errors.is_empty());
}

#[tokio::test]
async fn cancel_and_discard_outcomes_are_final_with_their_reason() {
    let db = TestDb::new().await;
    let p = Probe::new();
    let rt = start(&db, &[("default", 2)]).await;
    let c = Choose { probe: p.key.clone(), what: "cancel".into() }.insert(&db.pool).await.unwrap().job.id;
    let d = Choose { probe: p.key.clone(), what: "discard".into() }.insert(&db.pool).await.unwrap().job.id;
    let c = wait_job_state(&db.pool, c, JobState::Cancelled, LONG).await;
    let d = wait_job_state(&db.pool, d, JobState::Discarded, LONG).await;
    rt.shutdown().await.unwrap();
    assert_eq!(c.errors[0]["error"], serde_json::json!("not needed any more"));
    assert!(c.cancelled_at.is_some());
    assert_eq!(d.errors[0]["error"], serde_json::json!("cannot ever work"));
    assert_eq!(p.start_count(), 2, "neither was retried");
}

#[tokio::test]
async fn undecodable_args_are_discarded_at_once_naming_the_field() {
    let db = TestDb::new().await;
    let id = SendReminder { appointment_id: 1, kind: super::jobs::Kind::DayBefore }.insert(&db.pool).await.unwrap().job.id;
    // An older deploy wrote a variant this code no longer has.
    sqlx::query("UPDATE jobsmith.jobs SET args = '{\"appointment_id\": 1, \"kind\": \"WeekBefore\"}' WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await
        .unwrap();
    let rt = start(&db, &[("events", 2)]).await;
    let job = wait_job_state(&db.pool, id, JobState::Discarded, LONG).await;
    rt.shutdown().await.unwrap();
    assert_eq!(job.attempt, 1, "not retried");
    let error = job.errors[0]["error"].as_str().unwrap();
    assert!(error.contains("`kind`") && error.contains("WeekBefore"), "{error}");
}

#[tokio::test]
async fn a_job_of_an_unknown_worker_is_retried_with_an_error() {
    let db = TestDb::new().await;
    sqlx::query("INSERT INTO jobsmith.jobs (worker, queue, max_attempts) VALUES ('renamed::OldJob', 'default', 3)")
        .execute(&db.pool)
        .await
        .unwrap();
    let rt = start(&db, &[("default", 2)]).await;
    wait_state_count(&db.pool, "retryable", 1, LONG).await;
    rt.shutdown().await.unwrap();
    let (attempt, error): (i32, String) =
        sqlx::query_as("SELECT attempt, errors[1]->>'error' FROM jobsmith.jobs").fetch_one(&db.pool).await.unwrap();
    assert_eq!(attempt, 1);
    assert!(error.contains("unknown worker `renamed::OldJob`"), "{error}");
}

#[tokio::test]
async fn an_insert_into_an_idle_queue_starts_long_before_the_poll_interval() {
    let db = TestDb::new().await;
    let p = Probe::new();
    let rt = Runtime::builder(db.pool.clone())
        .queue("default", 2)
        .poll_interval(Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    // Let the first (startup) fetch and stage pass, so only a notification can wake the queue.
    wait_for("the node to go idle", LONG, || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        (n >= 1).then_some(())
    })
    .await;
    let inserted = Instant::now();
    record(&p, "fast", 0).insert(&db.pool).await.unwrap();
    wait_for("the job to start", Duration::from_secs(20), || async { (p.start_count() == 1).then_some(()) }).await;
    let waited = p.starts.lock().unwrap()[0].2 - inserted;
    rt.shutdown().await.unwrap();
    assert!(waited < Duration::from_secs(10), "started {waited:?} after insert; the poll interval is 30 s");
}

#[tokio::test]
async fn scheduled_jobs_start_when_due_and_not_before() {
    let db = TestDb::new().await;
    let p = Probe::new();
    let rt = start(&db, &[("default", 2)]).await;
    let inserted = Instant::now();
    record(&p, "later", 0).schedule_in(Duration::from_millis(1500)).insert(&db.pool).await.unwrap();
    wait_for("the scheduled job", LONG, || async { (p.start_count() == 1).then_some(()) }).await;
    let waited = p.starts.lock().unwrap()[0].2 - inserted;
    rt.shutdown().await.unwrap();
    assert!(waited >= Duration::from_millis(1450), "ran {waited:?} after insert, before it was due");
}

#[tokio::test]
async fn cancel_by_id_stops_running_and_waiting_jobs() {
    let db = TestDb::new().await;
    let p = Probe::new();
    let rt = start(&db, &[("default", 2)]).await;
    let running = Blocks { probe: p.key.clone() }.insert(&db.pool).await.unwrap().job.id;
    let waiting = record(&p, "never", 0).schedule_in(Duration::from_secs(3600)).insert(&db.pool).await.unwrap().job.id;
    wait_for("the blocking job to start", LONG, || async { (p.start_count() == 1).then_some(()) }).await;

    assert_eq!(rt.cancel_job(running).await.unwrap(), Some(JobState::Executing));
    assert_eq!(rt.cancel_job(waiting).await.unwrap(), Some(JobState::Scheduled));
    assert_eq!(rt.cancel_job(waiting).await.unwrap(), None, "already final");
    wait_for("the running job's token", LONG, || async { (p.observed_cancel.load(Ordering::SeqCst) == 1).then_some(()) })
        .await;
    let job = wait_job_state(&db.pool, running, JobState::Cancelled, LONG).await;
    assert_eq!(job.attempt, 1);
    assert_eq!(rt.get_job(waiting).await.unwrap().unwrap().state, JobState::Cancelled);
    // Nothing else may run it: the fetch path only takes available rows.
    rt.shutdown().await.unwrap();
    assert_eq!(count_state(&db.pool, "executing").await, 0);
}

#[tokio::test]
async fn a_discarded_job_can_be_retried() {
    let db = TestDb::new().await;
    let p = Probe::new();
    let rt = start(&db, &[("default", 2)]).await;
    let id = Choose { probe: p.key.clone(), what: "discard".into() }.insert(&db.pool).await.unwrap().job.id;
    wait_job_state(&db.pool, id, JobState::Discarded, LONG).await;
    assert!(!rt.retry_job(id + 1000).await.unwrap());
    assert!(rt.retry_job(id).await.unwrap());
    wait_for("the second run", LONG, || async { (p.start_count() == 2).then_some(()) }).await;
    let job = wait_job_state(&db.pool, id, JobState::Discarded, LONG).await;
    rt.shutdown().await.unwrap();
    assert_eq!(job.attempt, 2);
    assert_eq!(job.max_attempts, 2, "one more attempt was granted");
    assert_eq!(job.errors.len(), 2);
}

#[tokio::test]
async fn pause_resume_and_scale_on_a_running_node() {
    let db = TestDb::new().await;
    let p = Probe::new();
    let rt = start(&db, &[("default", 1)]).await;
    rt.pause_queue("default").unwrap();
    assert!(rt.queues()[0].paused);
    let jobs = (0..20).map(|i| record(&p, format!("j{i}"), 30).build().unwrap()).collect();
    jobsmith::insert_all(&db.pool, jobs).await.unwrap();
    // Paused: the insert notification and two poll intervals (500 ms) pass without a start.
    // A negative check can only wait; nothing here waits for a condition to become true.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(p.start_count(), 0);
    assert_eq!(count_state(&db.pool, "available").await, 20);
    rt.scale_queue("default", 5).unwrap();
    rt.resume_queue("default").unwrap();
    wait_state_count(&db.pool, "completed", 20, LONG).await;
    let info = rt.queues();
    rt.shutdown().await.unwrap();
    assert_eq!((info[0].limit, info[0].paused), (5, false));
    let peak = p.peak.lock().unwrap()["default"];
    assert!(peak <= 5 && peak >= 2, "peak {peak} with limit 5");
    assert!(rt_errors_for_unknown_queue().await);
}

async fn rt_errors_for_unknown_queue() -> bool {
    let db = TestDb::new().await;
    let rt = start(&db, &[("default", 1)]).await;
    let err = rt.pause_queue("nope").is_err() && rt.scale_queue("default", 0).is_err();
    rt.shutdown().await.unwrap();
    err
}

#[tokio::test]
async fn shutdown_lets_quick_jobs_finish_and_hands_back_the_rest() {
    let db = TestDb::new().await;
    let p = Probe::new();
    let rt = Runtime::builder(db.pool.clone())
        .queue("default", 5)
        .shutdown_grace(Duration::from_millis(1500))
        .start()
        .await
        .unwrap();
    let quick = record(&p, "quick", 300).insert(&db.pool).await.unwrap().job.id;
    let stuck = Blocks { probe: p.key.clone() }.insert(&db.pool).await.unwrap().job.id;
    wait_for("both to start", LONG, || async { (p.start_count() == 2).then_some(()) }).await;
    rt.shutdown().await.unwrap();

    let engine = jobsmith::engine::postgres::PostgresEngine::new(db.pool.clone(), "jobsmith").unwrap();
    use jobsmith::engine::Engine;
    let quick = engine.get_job(quick).await.unwrap().unwrap();
    let stuck = engine.get_job(stuck).await.unwrap().unwrap();
    assert_eq!(quick.state, JobState::Completed, "finished within the grace period");
    assert_eq!(stuck.state, JobState::Available, "handed back for another node");
    assert_eq!(stuck.attempt, 0, "the interrupted attempt is given back");
    assert_eq!(p.observed_cancel.load(Ordering::SeqCst), 1, "its token fired");
    assert_eq!(count_state(&db.pool, "executing").await, 0);

    // Another node picks it up.
    let p2 = p.clone();
    let rt2 = start(&db, &[("default", 5)]).await;
    wait_for("the handed-back job to run again", LONG, || async { (p2.start_count() == 3).then_some(()) }).await;
    rt2.cancel_job(stuck.id).await.unwrap();
    rt2.shutdown().await.unwrap();
}

#[tokio::test]
async fn duplicate_worker_names_are_refused_at_start() {
    let db = TestDb::new().await;
    let entry = jobsmith::WorkerEntry::of::<Record>();
    let err = jobsmith::Registry::from_entries([entry, entry]).unwrap_err();
    assert!(err.to_string().contains("two workers are registered"), "{err}");
    // The whole binary's inventory has no duplicates, so a default runtime starts.
    let rt = start(&db, &[("default", 1)]).await;
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_node_without_queues_only_inserts_and_controls() {
    let db = TestDb::new().await;
    let rt = Runtime::builder(db.pool.clone()).start().await.unwrap();
    let p = Probe::new();
    let id = record(&p, "x", 0).insert(&db.pool).await.unwrap().job.id;
    assert_eq!(rt.cancel_job(id).await.unwrap(), Some(JobState::Available));
    assert!(rt.queues().is_empty());
    rt.shutdown().await.unwrap();
    assert_eq!(p.start_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_connections_lose_no_job() {
    let db = TestDb::new().await;
    let p = Probe::new();
    let jobs = (0..600).map(|i| record(&p, format!("j{i}"), 5).build().unwrap()).collect();
    jobsmith::insert_all(&db.pool, jobs).await.unwrap();
    let rt = start(&db, &[("default", 10)]).await;
    wait_for("some progress", LONG, || async { (p.start_count() >= 50).then_some(()) }).await;
    // Kill every backend of the test database but the one asking, twice, mid-run.
    let admin = super::harness::TestDb::admin().await;
    for _ in 0..2 {
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&db.name)
        .fetch_all(&admin)
        .await
        .unwrap();
        assert!(!killed.is_empty());
        let seen = p.start_count();
        wait_for("progress after the kill", LONG, || async { (p.start_count() > seen + 20).then_some(()) }).await;
    }
    wait_state_count(&db.pool, "completed", 600, LONG).await;
    rt.shutdown().await.unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for label in p.labels() {
        *seen.entry(label).or_default() += 1;
    }
    assert_eq!(seen.len(), 600, "every job ran");
}
