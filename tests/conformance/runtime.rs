//! The runtime: fetch, execute, record, retry, control and shut down. Each test runs on both
//! engines.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use jobsmith::prelude::*;
use jobsmith::{JobState, Runtime};

use super::harness::{LONG, TestDb, wait_for};
use super::probe::Probe;
use crate::jobs::{AlwaysFails, Blocks, Choose, PanicsOnce, Record, SendReminder, SlowOnce};

pub(crate) fn record(p: &Probe, label: impl Into<String>, sleep_ms: u64) -> Record {
    Record { probe: p.key.clone(), label: label.into(), sleep_ms }
}

/// `n` record jobs queued on `default` and claimed at once by node `n1`, for tests that write
/// results through the engine directly.
pub(crate) async fn queued_and_claimed(db: &TestDb, n: usize) -> Vec<jobsmith::engine::FetchedJob> {
    let p = Probe::new();
    let jobs = (0..n).map(|i| record(&p, format!("j{i}"), 0).build().unwrap()).collect();
    db.insert_all(jobs).await.unwrap();
    let request = jobsmith::engine::FetchRequest {
        queue: "default",
        limit: n as u32,
        weight_cap: u32::MAX,
        node: "n1",
        global_limit: None,
        after: None,
        relaxed_commit: false,
    };
    let fetched = db.engine().fetch(&request).await.unwrap();
    assert_eq!(fetched.len(), n);
    fetched
}

/// Writes each run's meta and tags as it saw them in its context.
#[jobsmith::job(queue = "context-probe")]
pub async fn note_context(
    ctx: JobContext,
    State(seen): State<crate::state::Seen>,
    n: i64,
) -> Result<(), String> {
    seen.push(format!("{n} meta {} tags {:?}", ctx.meta, ctx.tags));
    Ok(())
}

pub(crate) async fn start(db: &TestDb, queues: &[(&str, usize)]) -> Runtime {
    let mut b = db.runtime().poll_interval(Duration::from_millis(500));
    for (q, n) in queues {
        b = b.queue(*q, *n);
    }
    b.start().await.expect("runtime starts")
}

conformance! {
    async fn a_thousand_jobs_over_four_queues_each_run_exactly_once_within_limits(db) {
        let p = Probe::new();
        let queues = [("default", 10), ("events", 50), ("mailers", 20), ("maintenance", 5)];
        let jobs = (0..1000).map(|i| record(&p, format!("j{i}"), 2).on_queue(queues[i % 4].0).build().unwrap()).collect();
        db.insert_all(jobs).await.unwrap();
        let rt = start(&db, &queues).await;
        db.wait_state_count(JobState::Completed, 1000).await;
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
            assert!((1..=limit).contains(&got), "queue {q} ran {got} at once, limit {limit}");
        }
        assert_eq!(db.scalar("SELECT sum(attempt) FROM {jobs}").await, 1000);
        assert_eq!(db.count_state(JobState::Executing).await, 0);
    }
}

conformance! {
    async fn jobs_run_in_priority_order(db) {
        let p = Probe::new();
        let rt = start(&db, &[("default", 1)]).await;
        rt.pause_queue("default").await.unwrap();
        for (label, prio) in [("p5", 5u8), ("p0a", 0), ("p9", 9), ("p0b", 0), ("p3", 3)] {
            db.insert(record(&p, label, 0).priority(prio)).await.unwrap();
        }
        rt.resume_queue("default").unwrap();
        db.wait_state_count(JobState::Completed, 5).await;
        rt.shutdown().await.unwrap();
        assert_eq!(p.labels(), vec!["p0a", "p0b", "p3", "p5", "p9"]);
    }
}

conformance! {
    async fn failures_retry_with_backoff_then_discard_with_every_error(db) {
        let p = Probe::new();
        let rt = start(&db, &[("default", 5)]).await;
        let rt_node = rt.node_name().to_string();
        let id = db.insert(AlwaysFails { probe: p.key.clone() }).await.unwrap().job.id;
        let job = db.wait_job(id, JobState::Discarded).await;
        rt.shutdown().await.unwrap();

        assert_eq!(job.attempt, 3);
        assert_eq!(job.errors.len(), 3);
        for (i, e) in job.errors.iter().enumerate() {
            assert_eq!(e["attempt"], serde_json::json!(i + 1));
            assert_eq!(e["error"], serde_json::json!(format!("failure number {}", i + 1)));
            assert!(e["at"].is_string());
            // Each failed attempt says where and when it ran (the dashboard's attempts table).
            assert_eq!(e["node"], serde_json::json!(rt_node), "{e}");
            assert!(e["started_at"].is_string() || e["started_at"].is_i64(), "{e}");
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
}

conformance! {
    async fn a_panic_is_an_error_with_its_message_and_the_worker_lives_on(db) {
        let p = Probe::new();
        let rt = start(&db, &[("default", 2)]).await;
        let id = db.insert(PanicsOnce { probe: p.key.clone() }).await.unwrap().job.id;
        let job = db.wait_job(id, JobState::Completed).await;
        assert_eq!(job.attempt, 2);
        assert_eq!(job.errors.len(), 1);
        assert_eq!(job.errors[0]["error"], serde_json::json!("panicked: boom on attempt 1"));
        let other = db.insert(record(&p, "after", 0)).await.unwrap().job.id;
        db.wait_job(other, JobState::Completed).await;
        rt.shutdown().await.unwrap();
    }
}

conformance! {
    async fn a_timeout_fails_the_attempt_and_fires_the_token(db) {
        let p = Probe::new();
        let rt = start(&db, &[("default", 2)]).await;
        let id = db.insert(SlowOnce { probe: p.key.clone() }).await.unwrap().job.id;
        let job = db.wait_job(id, JobState::Completed).await;
        rt.shutdown().await.unwrap();
        assert_eq!(job.attempt, 2);
        assert_eq!(job.errors[0]["error"], serde_json::json!("timed out after 200ms"));
        wait_for("the token to fire", LONG, || async { (p.observed_cancel.load(Ordering::SeqCst) == 1).then_some(()) }).await;
    }
}

conformance! {
    async fn snooze_reschedules_without_using_an_attempt(db) {
        let p = Probe::new();
        let rt = start(&db, &[("default", 2)]).await;
        // max_attempts is 1: a snooze that used an attempt would leave none for the second run.
        let id = db.insert(Choose { probe: p.key.clone(), what: "snooze".into() }).await.unwrap().job.id;
        let job = db.wait_job(id, JobState::Completed).await;
        rt.shutdown().await.unwrap();
        let starts = p.starts.lock().unwrap().clone();
        assert_eq!(starts.len(), 2);
        assert_eq!((starts[0].1, starts[1].1), (1, 1), "both runs were attempt 1");
        assert!(starts[1].2 - starts[0].2 >= Duration::from_millis(290));
        assert_eq!(job.attempt, 1);
        assert!(job.errors.is_empty());
    }
}

conformance! {
    async fn cancel_and_discard_outcomes_are_final_with_their_reason(db) {
        let p = Probe::new();
        let rt = start(&db, &[("default", 2)]).await;
        let c = db.insert(Choose { probe: p.key.clone(), what: "cancel".into() }).await.unwrap().job.id;
        let d = db.insert(Choose { probe: p.key.clone(), what: "discard".into() }).await.unwrap().job.id;
        let c = db.wait_job(c, JobState::Cancelled).await;
        let d = db.wait_job(d, JobState::Discarded).await;
        rt.shutdown().await.unwrap();
        assert_eq!(c.errors[0]["error"], serde_json::json!("not needed any more"));
        assert!(c.cancelled_at.is_some());
        assert_eq!(d.errors[0]["error"], serde_json::json!("cannot ever work"));
        assert_eq!(p.start_count(), 2, "neither was retried");
    }
}

conformance! {
    async fn undecodable_args_are_discarded_at_once_naming_the_field(db) {
        let id = db.insert(SendReminder { appointment_id: 1, kind: crate::jobs::Kind::DayBefore }).await.unwrap().job.id;
        // An older deploy wrote a variant this code no longer has.
        db.exec(&format!(
            "UPDATE {{jobs}} SET args = '{{\"appointment_id\": 1, \"kind\": \"WeekBefore\"}}' WHERE id = {id}"
        ))
        .await;
        let rt = start(&db, &[("events", 2)]).await;
        let job = db.wait_job(id, JobState::Discarded).await;
        rt.shutdown().await.unwrap();
        assert_eq!(job.attempt, 1, "not retried");
        let error = job.errors[0]["error"].as_str().unwrap();
        assert!(error.contains("`kind`") && error.contains("WeekBefore"), "{error}");
    }
}

conformance! {
    async fn a_job_of_an_unknown_worker_is_retried_with_an_error(db) {
        let id = db.insert(crate::jobs::A { n: 1 }.build_insert().max_attempts(3)).await.unwrap().job.id;
        db.exec(&format!("UPDATE {{jobs}} SET worker = 'renamed::OldJob' WHERE id = {id}")).await;
        let rt = start(&db, &[("default", 2)]).await;
        let job = db.wait_job(id, JobState::Retryable).await;
        rt.shutdown().await.unwrap();
        assert_eq!(job.attempt, 1);
        let error = job.errors[0]["error"].as_str().unwrap();
        assert!(error.contains("unknown worker `renamed::OldJob`"), "{error}");
    }
}

conformance! {
    async fn an_insert_into_an_idle_queue_starts_long_before_the_poll_interval(db) {
        let p = Probe::new();
        let rt = db.runtime().queue("default", 2).poll_interval(Duration::from_secs(30)).start().await.unwrap();
        // The startup fetch has run once the queue is idle; only a wake-up can start the job now.
        let marker = db.insert(record(&p, "marker", 0)).await.unwrap().job.id;
        db.wait_job(marker, JobState::Completed).await;
        let inserted = Instant::now();
        db.insert(record(&p, "fast", 0)).await.unwrap();
        wait_for("the job to start", Duration::from_secs(25), || async { (p.start_count() == 2).then_some(()) }).await;
        let waited = p.starts.lock().unwrap()[1].2 - inserted;
        rt.shutdown().await.unwrap();
        assert!(waited < Duration::from_secs(5), "started {waited:?} after insert; the poll interval is 30 s");
    }
}

conformance! {
    async fn scheduled_jobs_start_when_due_and_not_before(db) {
        let p = Probe::new();
        let rt = start(&db, &[("default", 2)]).await;
        let inserted = Instant::now();
        db.insert(record(&p, "later", 0).schedule_in(Duration::from_millis(1500))).await.unwrap();
        wait_for("the scheduled job", LONG, || async { (p.start_count() == 1).then_some(()) }).await;
        let waited = p.starts.lock().unwrap()[0].2 - inserted;
        rt.shutdown().await.unwrap();
        assert!(waited >= Duration::from_millis(1450), "ran {waited:?} after insert, before it was due");
    }
}

conformance! {
    async fn cancel_by_id_stops_running_and_waiting_jobs(db) {
        let p = Probe::new();
        let rt = start(&db, &[("default", 2)]).await;
        let running = db.insert(Blocks { probe: p.key.clone() }).await.unwrap().job.id;
        let waiting = db.insert(record(&p, "never", 0).schedule_in(Duration::from_secs(3600))).await.unwrap().job.id;
        wait_for("the blocking job to start", LONG, || async { (p.start_count() == 1).then_some(()) }).await;

        assert_eq!(rt.cancel_job(running).await.unwrap(), Some(JobState::Executing));
        assert_eq!(rt.cancel_job(waiting).await.unwrap(), Some(JobState::Scheduled));
        assert_eq!(rt.cancel_job(waiting).await.unwrap(), None, "already final");
        wait_for("the running job's token", LONG, || async { (p.observed_cancel.load(Ordering::SeqCst) == 1).then_some(()) }).await;
        let job = db.wait_job(running, JobState::Cancelled).await;
        assert_eq!(job.attempt, 1);
        assert_eq!(db.job(waiting).await.state, JobState::Cancelled);
        rt.shutdown().await.unwrap();
        assert_eq!(db.count_state(JobState::Executing).await, 0);
    }
}

conformance! {
    async fn a_discarded_job_can_be_retried(db) {
        let p = Probe::new();
        let rt = start(&db, &[("default", 2)]).await;
        let id = db.insert(Choose { probe: p.key.clone(), what: "discard".into() }).await.unwrap().job.id;
        db.wait_job(id, JobState::Discarded).await;
        assert!(!rt.retry_job(id + 1000).await.unwrap());
        assert!(rt.retry_job(id).await.unwrap());
        wait_for("the second run", LONG, || async { (p.start_count() == 2).then_some(()) }).await;
        let job = db.wait_job(id, JobState::Discarded).await;
        rt.shutdown().await.unwrap();
        assert_eq!(job.attempt, 2);
        assert_eq!(job.max_attempts, 2, "one more attempt was granted");
        assert_eq!(job.errors.len(), 2);
    }
}

conformance! {
    async fn pause_resume_and_scale_on_a_running_node(db) {
        let p = Probe::new();
        let rt = start(&db, &[("default", 1)]).await;
        rt.pause_queue("default").await.unwrap();
        assert!(rt.queues()[0].paused);
        let jobs = (0..20).map(|i| record(&p, format!("j{i}"), 30).build().unwrap()).collect();
        db.insert_all(jobs).await.unwrap();
        // Paused: the insert wake-up and two poll intervals (500 ms) pass without a start. A
        // negative check can only wait; nothing here waits for a condition to become true.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(p.start_count(), 0);
        assert_eq!(db.count_state(JobState::Available).await, 20);
        rt.scale_queue("default", 5).unwrap();
        rt.resume_queue("default").unwrap();
        db.wait_state_count(JobState::Completed, 20).await;
        let info = rt.queues();
        assert!(rt.pause_queue("nope").await.is_err());
        assert!(rt.scale_queue("default", 0).is_err());
        rt.shutdown().await.unwrap();
        assert_eq!((info[0].limit, info[0].paused), (5, false));
        let peak = p.peak.lock().unwrap()["default"];
        assert!((2..=5).contains(&peak), "peak {peak} with limit 5");
    }
}

conformance! {
    async fn shutdown_lets_quick_jobs_finish_and_hands_back_the_rest(db) {
        let p = Probe::new();
        let rt = db.runtime().queue("default", 5).shutdown_grace(Duration::from_millis(1500)).start().await.unwrap();
        let quick = db.insert(record(&p, "quick", 300)).await.unwrap().job.id;
        let stuck = db.insert(Blocks { probe: p.key.clone() }).await.unwrap().job.id;
        wait_for("both to start", LONG, || async { (p.start_count() == 2).then_some(()) }).await;
        rt.shutdown().await.unwrap();

        let quick = db.job(quick).await;
        let stuck = db.job(stuck).await;
        assert_eq!(quick.state, JobState::Completed, "finished within the grace period");
        assert_eq!(stuck.state, JobState::Available, "handed back for another node");
        assert_eq!(stuck.attempt, 0, "the interrupted attempt is given back");
        assert_eq!(p.observed_cancel.load(Ordering::SeqCst), 1, "its token fired");
        assert_eq!(db.count_state(JobState::Executing).await, 0);

        let rt2 = start(&db, &[("default", 5)]).await;
        wait_for("the handed-back job to run again", LONG, || async { (p.start_count() == 3).then_some(()) }).await;
        rt2.cancel_job(stuck.id).await.unwrap();
        rt2.shutdown().await.unwrap();
    }
}

conformance! {
    async fn duplicate_worker_names_are_refused_at_start(db) {
        let entry = jobsmith::WorkerEntry::of::<Record>();
        let err = jobsmith::Registry::from_entries([entry, entry]).unwrap_err();
        assert!(err.to_string().contains("two workers are registered"), "{err}");
        let err = db.runtime().registry(jobsmith::Registry::from_entries([entry]).unwrap()).queue("q", 0).start().await.unwrap_err();
        assert!(err.to_string().contains("concurrency of at least 1"), "{err}");
        // The whole binary's inventory has no duplicates, so a default runtime starts.
        start(&db, &[("default", 1)]).await.shutdown().await.unwrap();
    }
}

conformance! {
    async fn a_node_without_queues_only_inserts_and_controls(db) {
        let rt = db.runtime().start().await.unwrap();
        let p = Probe::new();
        let id = db.insert(record(&p, "x", 0)).await.unwrap().job.id;
        assert_eq!(rt.cancel_job(id).await.unwrap(), Some(JobState::Available));
        assert!(rt.queues().is_empty());
        rt.shutdown().await.unwrap();
        assert_eq!(p.start_count(), 0);
    }
}

conformance! {
    async fn a_stopped_job_can_react_to_its_token_before_it_is_dropped(db) {
        let p = Probe::new();
        let rt = start(&db, &[("default", 2)]).await;
        // Cancelled by id while running: its cleanup runs, and the row says cancelled.
        let cancelled = db.insert(crate::jobs::CleansUp { probe: p.key.clone(), wait_for_timeout: false }).await.unwrap().job.id;
        wait_for("the job to start", LONG, || async { (p.start_count() >= 1).then_some(()) }).await;
        rt.cancel_job(cancelled).await.unwrap();
        wait_for("its cleanup", LONG, || async { p.labels().contains(&"cleaned up".to_string()).then_some(()) }).await;
        assert_eq!(db.wait_job(cancelled, JobState::Cancelled).await.attempt, 1);
        // Timed out: same, and the attempt fails with the timeout, not with what it returned.
        let timed = db.insert(crate::jobs::CleansUp { probe: p.key.clone(), wait_for_timeout: true }).await.unwrap().job.id;
        let job = db.wait_job(timed, JobState::Discarded).await;
        rt.shutdown().await.unwrap();
        assert_eq!(job.errors[0]["error"], serde_json::json!("timed out after 300ms"));
        assert_eq!(p.labels().iter().filter(|l| *l == "cleaned up").count(), 2);
    }
}

conformance! {
    /// A busy queue fetches from where its last batch ended; an urgent job inserted meanwhile
    /// (its notification resets that place) still runs next.
    async fn an_urgent_job_inserted_into_a_busy_queue_runs_next(db) {
        let p = Probe::new();
        let jobs = (0..30).map(|i| record(&p, format!("n{i}"), 250).priority(5).build().unwrap()).collect();
        db.insert_all(jobs).await.unwrap();
        // A poll interval longer than the whole run: only the insert's notification can help.
        let rt = db.runtime().poll_interval(Duration::from_secs(30)).queue("default", 1).start().await.unwrap();
        wait_for("three jobs to start", LONG, || async { (p.start_count() >= 3).then_some(()) }).await;
        db.insert(record(&p, "urgent", 0).priority(0)).await.unwrap();
        let started_before = p.start_count();
        wait_for("the urgent job to start", LONG, || async { p.labels().contains(&"urgent".to_string()).then_some(()) }).await;
        rt.shutdown().await.unwrap();
        let position = p.labels().iter().position(|l| l == "urgent").unwrap();
        // The job running at insert time finishes first; one more may have been fetched in the
        // same instant as the insert.
        assert!(position <= started_before + 1, "urgent started as number {}, {started_before} had started at insert", position + 1);
    }
}

conformance! {
    /// A row that becomes available with no notification at all (here: changed by hand), ahead of
    /// the place a busy queue fetches from, still runs within about a poll interval, not only
    /// once the queue drains.
    async fn a_row_made_available_silently_runs_while_the_queue_is_busy(db) {
        let p = Probe::new();
        let jobs = (0..40).map(|i| record(&p, format!("n{i}"), 100).priority(5).build().unwrap()).collect();
        db.insert_all(jobs).await.unwrap();
        let id = db.insert(record(&p, "silent", 0).priority(0).schedule_in(Duration::from_secs(3600))).await.unwrap().job.id;
        let rt = start(&db, &[("default", 1)]).await;
        wait_for("three jobs to start", LONG, || async { (p.start_count() >= 3).then_some(()) }).await;
        // No NOTIFY, no hint: only the runtime's own bound on the cursor can find it.
        db.exec(&format!("UPDATE {{jobs}} SET state = 'available', scheduled_at = inserted_at WHERE id = {id}")).await;
        let revived_at = p.start_count();
        wait_for("the silent job to start", LONG, || async { p.labels().contains(&"silent".to_string()).then_some(()) }).await;
        rt.shutdown().await.unwrap();
        let position = p.labels().iter().position(|l| l == "silent").unwrap();
        // Poll interval 500 ms, jobs of 100 ms: a handful later, far from the 40th.
        assert!(position < revived_at + 20, "silent started as number {} of 41: only after the queue drained", position + 1);
    }
}

conformance! {
    /// A result is written only onto the run it belongs to: still executing, on the node that
    /// reports it, in the same attempt. Checked for completions (which have a statement of their
    /// own on PostgreSQL) and for other results, one batch mixing good and stale ones.
    async fn results_are_written_only_onto_the_run_they_belong_to(db) {
        use jobsmith::engine::{Ack, AckKind};
        let fetched = queued_and_claimed(&db, 6).await;
        let id = |i: usize| fetched[i].id;
        assert_eq!(db.engine().cancel_job(id(2)).await.unwrap(), Some(JobState::Executing));
        let retry = || AckKind::Retry { delay: Duration::from_secs(60), error: "boom".into() };
        let acks = vec![
            Ack { id: id(0), attempt: 1, claim: None, kind: AckKind::Complete },   // right run
            Ack { id: id(1), attempt: 2, claim: None, kind: AckKind::Complete },   // another attempt
            Ack { id: id(2), attempt: 1, claim: None, kind: AckKind::Complete },   // cancelled meanwhile
            Ack { id: id(3), attempt: 1, claim: None, kind: retry() },             // right run
            Ack { id: id(4), attempt: 2, claim: None, kind: retry() },             // another attempt
        ];
        assert_eq!(db.engine().ack("n1", &acks).await.unwrap(), 2);
        // Another node's report of job 5 is not taken either.
        let other = [Ack { id: id(5), attempt: 1, claim: None, kind: AckKind::Complete }];
        assert_eq!(db.engine().ack("n2", &other).await.unwrap(), 0);
        let mut states = Vec::new();
        for i in 0..6 {
            states.push(db.job(id(i)).await.state);
        }
        assert_eq!(
            states,
            [JobState::Completed, JobState::Executing, JobState::Cancelled, JobState::Retryable, JobState::Executing, JobState::Executing]
        );
    }
}

conformance! {
    /// A running job sees the meta and tags it was inserted with, and the defaults (`{}`, `[]`)
    /// when it was given none (SQLite's fetch returns NULL for the defaults, to copy less).
    async fn a_running_job_sees_its_meta_and_tags_and_their_defaults(db) {
        db.insert(NoteContext { n: 1 }.build_insert().meta(serde_json::json!({"trace": "abc"})).tags(["vip"])).await.unwrap();
        db.insert(NoteContext { n: 2 }).await.unwrap();
        let seen = crate::state::Seen::default();
        let rt = db.runtime().queue("context-probe", 1).state(seen.clone()).start().await.unwrap();
        db.wait_state_count(JobState::Completed, 2).await;
        rt.shutdown().await.unwrap();
        let mut lines = seen.lines();
        lines.sort();
        assert_eq!(lines, [r#"1 meta {"trace":"abc"} tags ["vip"]"#, r#"2 meta {} tags []"#]);
    }
}

conformance! {
    /// A batch of completions is guarded row by row whether it holds a few claims or many (SQLite
    /// writes a few claims by a statement each and many by one statement over per-row guards):
    /// of completions naming the right claim, a later claim or another attempt, only the first
    /// land, and each exactly once.
    async fn completions_of_few_or_many_claims_land_only_on_their_own_claim(db) {
        use jobsmith::engine::{Ack, AckKind};
        let fetched = queued_and_claimed(&db, 16).await;
        let ack = |i: usize, attempt: u32, claim_shift: i64| Ack {
            id: fetched[i].id,
            attempt,
            claim: Some(fetched[i].claim + claim_shift),
            kind: AckKind::Complete,
        };
        // Few claims: the right one, a later claim and another attempt.
        let few = vec![ack(0, 1, 0), ack(1, 1, 0), ack(2, 1, 7), ack(3, 1, 0), ack(14, 2, 0)];
        assert_eq!(db.engine().ack("n1", &few).await.unwrap(), 3);
        // Many claims: right ones between wrong claims and wrong attempts of several kinds.
        let many = vec![
            ack(4, 1, 0), ack(5, 1, 1), ack(6, 2, 0), ack(7, 1, 2), ack(8, 1, 0),
            ack(9, 3, 0), ack(10, 1, 3), ack(11, 1, 0), ack(12, 4, 5), ack(13, 1, 0),
        ];
        assert_eq!(db.engine().ack("n1", &many).await.unwrap(), 4);
        let mut completed = Vec::new();
        for (i, job) in fetched.iter().enumerate() {
            if db.job(job.id).await.state == JobState::Completed {
                completed.push(i);
            }
        }
        assert_eq!(completed, [0, 1, 3, 4, 8, 11, 13]);
    }
}

conformance! {
    /// The fetch cursor (`FetchRequest::after`): rows after it come in run order, with or without
    /// a global limit; PostgreSQL leaves a row behind it for the next fetch without one (SQLite
    /// may ignore the cursor). Either way every row is fetched exactly once.
    async fn a_fetch_with_a_cursor_starts_after_it(db) {
        use jobsmith::engine::{FetchRequest, FetchedJob};
        let p = Probe::new();
        for (label, priority) in [("a", 1u8), ("b", 1), ("c", 2), ("d", 3)] {
            db.insert(record(&p, label, 0).priority(priority)).await.unwrap();
        }
        let engine = db.engine().clone();
        let fetch = |limit: u32, global_limit: Option<u32>, after| {
            let engine = engine.clone();
            async move {
                let request = FetchRequest { queue: "default", limit, weight_cap: u32::MAX, node: "n", global_limit, after, relaxed_commit: false };
                engine.fetch(&request).await.unwrap()
            }
        };
        let labels = |jobs: &[FetchedJob]| -> Vec<String> {
            jobs.iter().map(|j| j.args["label"].as_str().unwrap().to_string()).collect()
        };
        let first = fetch(2, None, None).await;
        assert_eq!(labels(&first), ["a", "b"]);
        let cursor = first.iter().map(FetchedJob::position).max();
        db.insert(record(&p, "urgent", 0).priority(0)).await.unwrap(); // behind the cursor
        let second = fetch(1, Some(10), cursor).await;
        let third = fetch(10, None, second.iter().map(FetchedJob::position).max().or(cursor)).await;
        let rest = fetch(10, None, None).await;
        if db.kind == crate::harness::Kind::Postgres {
            assert_eq!(labels(&second), ["c"]);
            assert_eq!(labels(&third), ["d"]);
            assert_eq!(labels(&rest), ["urgent"]);
        }
        let mut all: Vec<String> = [first, second, third, rest].iter().flat_map(|j| labels(j)).collect();
        all.sort();
        assert_eq!(all, ["a", "b", "c", "d", "urgent"]);
    }
}
