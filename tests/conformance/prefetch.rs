//! The prefetch buffer (`RuntimeBuilder::prefetch`): jobs claimed ahead of a free slot run in
//! order within the limit, and pausing, cancelling or shutting down gives them back unstarted.

use std::collections::HashMap;
use std::time::Duration;

use jobsmith::prelude::*;
use jobsmith::{JobState, Runtime};

use super::harness::{LONG, TestDb, wait_for};
use super::probe::Probe;
use crate::jobs::Blocks;
use crate::runtime::record;

/// One queue `default` with `limit` slots and `prefetch` places.
async fn start(db: &TestDb, limit: usize, prefetch: usize) -> Runtime {
    db.runtime()
        .poll_interval(Duration::from_millis(300))
        .shutdown_grace(Duration::from_millis(300))
        .queue("default", limit)
        .prefetch("default", prefetch)
        .start()
        .await
        .expect("runtime starts")
}

/// A blocking job first (priority 0), then `n` quick ones behind it: with one slot, the blocker
/// runs and the others wait in the buffer. Returns (blocker id, ids of the others).
async fn blocker_and_waiting(db: &TestDb, p: &Probe, n: usize) -> (i64, Vec<i64>) {
    let blocker = db.insert(Blocks { probe: p.key.clone() }).await.unwrap().job.id;
    let mut waiting = Vec::new();
    for i in 0..n {
        waiting.push(db.insert(record(p, format!("r{i}"), 0).priority(1)).await.unwrap().job.id);
    }
    (blocker, waiting)
}

async fn wait_prefetched(rt: &Runtime, n: usize) {
    wait_for(&format!("{n} jobs waiting in the buffer"), LONG, || async {
        (rt.queues()[0].prefetched == n).then_some(())
    })
    .await;
}

conformance! {
    async fn prefetched_jobs_each_run_once_within_the_limit(db) {
        let p = Probe::new();
        let jobs = (0..300).map(|i| record(&p, format!("j{i}"), 1).build().unwrap()).collect();
        db.insert_all(jobs).await.unwrap();
        let rt = start(&db, 4, 16).await;
        db.wait_state_count(JobState::Completed, 300).await;
        rt.shutdown().await.unwrap();

        let mut seen: HashMap<String, usize> = HashMap::new();
        for label in p.labels() {
            *seen.entry(label).or_default() += 1;
        }
        assert_eq!(seen.len(), 300);
        assert!(seen.values().all(|&n| n == 1), "a job ran twice");
        let peak = p.peak.lock().unwrap()["default"];
        assert!((1..=4).contains(&peak), "{peak} ran at once with 4 slots");
        assert_eq!(db.scalar("SELECT sum(attempt) FROM {jobs}").await, 300);
        assert_eq!(db.count_state(JobState::Executing).await, 0);
    }
}

conformance! {
    async fn prefetched_jobs_wait_in_run_order_and_pausing_gives_them_back_unstarted(db) {
        let p = Probe::new();
        let (blocker, waiting) = blocker_and_waiting(&db, &p, 3).await;
        let before: Vec<_> = {
            let mut v = Vec::new();
            for id in &waiting {
                v.push(db.job(*id).await.scheduled_at);
            }
            v
        };
        let rt = start(&db, 1, 3).await;
        wait_prefetched(&rt, 3).await;
        // The blocker was fetched with the others; its task may not have begun yet.
        wait_for("the blocker to start", LONG, || async { (!p.labels().is_empty()).then_some(()) }).await;
        assert_eq!(p.labels(), ["block"], "only the blocker started");
        assert_eq!(db.count_state(JobState::Executing).await, 4, "the waiting jobs are claimed");

        rt.pause_queue("default").await.unwrap();
        assert_eq!(rt.queues()[0].prefetched, 0);
        db.wait_state_count(JobState::Available, 3).await;
        for (id, scheduled_at) in waiting.iter().zip(&before) {
            let row = db.job(*id).await;
            assert_eq!(row.attempt, 0, "the attempt is given back");
            assert!(row.errors.is_empty(), "nothing went wrong: {:?}", row.errors);
            assert_eq!(row.scheduled_at, *scheduled_at, "its place in the run order is kept");
        }
        assert_eq!(db.job(blocker).await.state, JobState::Executing, "the running job goes on");

        rt.resume_queue("default").unwrap();
        rt.cancel_job(blocker).await.unwrap();
        db.wait_state_count(JobState::Completed, 3).await;
        rt.shutdown().await.unwrap();
        assert_eq!(p.labels(), ["block", "r0", "r1", "r2"], "run order kept through the buffer");
        for id in &waiting {
            assert_eq!(db.job(*id).await.attempt, 1);
        }
    }
}

conformance! {
    async fn a_cancelled_prefetched_job_leaves_the_buffer_and_never_runs(db) {
        let p = Probe::new();
        let (blocker, waiting) = blocker_and_waiting(&db, &p, 2).await;
        let rt = start(&db, 1, 2).await;
        wait_prefetched(&rt, 2).await;

        assert_eq!(rt.cancel_job(waiting[0]).await.unwrap(), Some(JobState::Executing));
        assert_eq!(rt.queues()[0].prefetched, 1, "it left the buffer at once");
        assert_eq!(db.job(waiting[0]).await.state, JobState::Cancelled);

        rt.cancel_job(blocker).await.unwrap();
        db.wait_job(waiting[1], JobState::Completed).await;
        rt.shutdown().await.unwrap();
        assert_eq!(p.labels(), ["block", "r1"]);
        assert_eq!(db.job(waiting[0]).await.state, JobState::Cancelled);
    }
}

conformance! {
    async fn shutdown_gives_prefetched_jobs_back_unstarted(db) {
        let p = Probe::new();
        let (blocker, waiting) = blocker_and_waiting(&db, &p, 2).await;
        let rt = start(&db, 1, 2).await;
        wait_prefetched(&rt, 2).await;
        rt.shutdown().await.unwrap();

        assert_eq!(p.labels(), ["block"]);
        for id in &waiting {
            let row = db.job(*id).await;
            assert_eq!((row.state, row.attempt), (JobState::Available, 0));
            assert!(row.errors.is_empty(), "released unstarted, not interrupted: {:?}", row.errors);
        }
        let blocker = db.job(blocker).await;
        assert_eq!((blocker.state, blocker.attempt, blocker.errors.len()), (JobState::Available, 0, 1));
        assert_eq!(db.count_state(JobState::Executing).await, 0);
    }
}

conformance! {
    async fn prefetch_is_off_under_a_global_limit_and_refused_for_an_unknown_queue(db) {
        let err = db.runtime().queue("default", 1).prefetch("other", 5).start().await.unwrap_err();
        assert!(err.to_string().contains("prefetch for queue `other`"), "{err}");

        // One slot, a global limit of 3: were the buffer on, the first fetch would claim 3 (the
        // global limit caps it, not the local one) and hold 2 of them unstarted.
        let p = Probe::new();
        for _ in 0..5 {
            db.insert(Blocks { probe: p.key.clone() }).await.unwrap();
        }
        let rt = db.runtime().poll_interval(Duration::from_millis(300)).queue("default", 1).prefetch("default", 8)
            .global_limit("default", 3).start().await.unwrap();
        assert_eq!((rt.queues()[0].prefetch, rt.queues()[0].global_limit), (0, Some(3)));
        wait_for("one job to start", LONG, || async { (p.start_count() == 1).then_some(()) }).await;
        assert_eq!(db.count_state(JobState::Executing).await, 1, "nothing claimed beyond the free slot");
        assert_eq!(rt.queues()[0].prefetched, 0);
        rt.set_global_limit("default", None).await.unwrap();
        assert_eq!(rt.queues()[0].prefetch, 8, "on again once the limit is lifted");
        wait_prefetched(&rt, 4).await;
        assert_eq!(db.count_state(JobState::Executing).await, 5);
        assert_eq!(p.start_count(), 1, "the claimed ones wait for the one slot");
        rt.shutdown().await.unwrap();
    }
}

conformance! {
    /// `relaxed_fetch_commit` changes only how a fetch commits (PostgreSQL; SQLite ignores it):
    /// jobs still run once each, with the attempt counted, through the buffer too.
    async fn a_relaxed_fetch_commit_runs_every_job_once(db) {
        let p = Probe::new();
        let jobs = (0..200).map(|i| record(&p, format!("j{i}"), 0).build().unwrap()).collect();
        db.insert_all(jobs).await.unwrap();
        let rt = db.runtime().queue("default", 8).prefetch("default", 8).relaxed_fetch_commit(true)
            .start().await.unwrap();
        db.wait_state_count(JobState::Completed, 200).await;
        rt.shutdown().await.unwrap();
        let mut labels = p.labels();
        labels.sort();
        labels.dedup();
        assert_eq!((labels.len(), p.start_count()), (200, 200), "each job ran exactly once");
        assert_eq!(db.scalar("SELECT sum(attempt) FROM {jobs}").await, 200);
    }
}

conformance! {
    /// A job inserted with a higher priority into a busy queue goes ahead of the lower-priority
    /// jobs claimed before it: once the next fetch brings it, it takes the next free slot. So the
    /// inversion is bounded by the jobs that start while that fetch is in flight, not by the
    /// buffer's size (here 20; before, it waited behind all of them).
    async fn a_higher_priority_job_goes_ahead_of_the_jobs_claimed_before_it(db) {
        let p = Probe::new();
        let jobs = (0..40).map(|i| record(&p, format!("low{i}"), 50).priority(5).build().unwrap()).collect();
        db.insert_all(jobs).await.unwrap();
        let rt = start(&db, 2, 20).await;
        wait_for("the buffer to fill", LONG, || async { (rt.queues()[0].prefetched >= 15).then_some(()) }).await;
        let started_before = p.labels().len();
        let waiting = rt.queues()[0].prefetched;
        db.insert(record(&p, "high", 0).priority(0)).await.unwrap();
        db.wait_state_count(JobState::Completed, 41).await;
        rt.shutdown().await.unwrap();

        let labels = p.labels();
        let high = labels.iter().position(|l| l == "high").expect("the high-priority job ran");
        let overtaken_by = high - started_before;
        assert!(
            overtaken_by <= 6,
            "{overtaken_by} lower-priority jobs started after the insert and before it ({waiting} were waiting): {labels:?}"
        );
    }
}

conformance! {
    /// By default a queue claims ahead only what its slots finish during a fetch: short jobs get
    /// a buffer, jobs much longer than a fetch none, so a slow job never holds claimed jobs back
    /// from other nodes.
    async fn by_default_short_jobs_are_claimed_ahead_and_long_ones_are_not(db) {
        let p = Probe::new();
        let jobs = (0..2000).map(|i| record(&p, format!("s{i}"), 0).build().unwrap()).collect();
        db.insert_all(jobs).await.unwrap();
        let rt = db.runtime().queue("default", 4).start().await.unwrap();
        db.wait_state_count(JobState::Completed, 2000).await;
        assert!(rt.queues()[0].prefetch > 0, "short jobs: {:?}", rt.queues()[0]);
        rt.shutdown().await.unwrap();

        let q = Probe::new();
        for i in 0..6 {
            db.insert(record(&q, format!("l{i}"), 250)).await.unwrap();
        }
        let rt = db.runtime().queue("default", 2).start().await.unwrap();
        let mut most = 0;
        let deadline = std::time::Instant::now() + LONG;
        while db.count_state(JobState::Completed).await < 2006 {
            assert!(std::time::Instant::now() < deadline, "the long jobs did not finish within {LONG:?}");
            // Counted by the node: a finished job's row may still read `executing` until its
            // result is written, while its slot already runs the next one.
            let info = rt.queues()[0].clone();
            most = most.max(info.running + info.prefetched);
            assert!(info.prefetched == 0, "long jobs were claimed ahead: {info:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rt.shutdown().await.unwrap();
        assert_eq!(most, 2, "at most the 2 slots' jobs claimed");
        assert_eq!(q.start_count(), 6);
    }
}
