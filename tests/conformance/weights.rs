//! Job weights (ADR 23): a job takes its weight in slots of its queue, against the node's limit
//! and the queue's global limit; jobs are taken in run order while their weights fit, so a heavy
//! job is never passed by lighter ones behind it; a job heavier than the whole limit runs alone.
//! Each test runs on both engines.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use jobsmith::engine::FetchRequest;
use jobsmith::prelude::*;
use jobsmith::{JobState, MAX_WEIGHT};

use super::harness::TestDb;

/// Per test (by key): slots running now, the most at once, and (label, start, end) of each run.
#[derive(Default)]
struct Scale {
    running: usize,
    peak: usize,
    runs: Vec<(String, Instant, Option<Instant>)>,
}

static SCALES: LazyLock<Mutex<HashMap<String, Scale>>> = LazyLock::new(Default::default);

fn scale_key() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!("s{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Counts its own weight (`slots`, the same as the weight it was inserted with) as running while
/// it sleeps `sleep_ms`.
#[jobsmith::job(queue = "weighed")]
async fn weighed(key: String, label: String, slots: usize, sleep_ms: u64) -> Result<(), String> {
    {
        let mut scales = SCALES.lock().unwrap();
        let s = scales.entry(key.clone()).or_default();
        s.running += slots;
        s.peak = s.peak.max(s.running);
        s.runs.push((label.clone(), Instant::now(), None));
    }
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    let mut scales = SCALES.lock().unwrap();
    let s = scales.get_mut(&key).unwrap();
    s.running -= slots;
    let run = s.runs.iter_mut().find(|r| r.0 == label).unwrap();
    run.2 = Some(Instant::now());
    Ok(())
}

/// A report declared heavy: 4 slots unless an insert says otherwise.
#[jobsmith::job(queue = "weighed", weight = 4)]
async fn heavy_report(clinic_id: i64) -> Result<(), String> {
    let _ = clinic_id;
    Ok(())
}

fn job(key: &str, label: &str, weight: u16, sleep_ms: u64) -> jobsmith::NewJob {
    Weighed { key: key.into(), label: label.into(), slots: weight as usize, sleep_ms }
        .weight(weight)
        .build()
        .unwrap()
}

fn request(limit: u32, weight_cap: u32, global_limit: Option<u32>) -> FetchRequest<'static> {
    FetchRequest {
        queue: "weighed",
        limit,
        weight_cap,
        node: "n1",
        global_limit,
        after: None,
        relaxed_commit: false,
    }
}

/// The labels of the runs of `key` in start order, and each run's (start, end).
fn runs(key: &str) -> Vec<(String, Instant, Instant)> {
    let scales = SCALES.lock().unwrap();
    let mut runs: Vec<_> = scales[key].runs.iter().map(|r| (r.0.clone(), r.1, r.2.expect("ended"))).collect();
    runs.sort_by_key(|r| r.1);
    runs
}

async fn labels_of(db: &TestDb, fetched: &[jobsmith::engine::FetchedJob]) -> Vec<String> {
    let mut out = Vec::new();
    for f in fetched {
        out.push(db.job(f.id).await.args["label"].as_str().unwrap().to_string());
    }
    out.sort();
    out
}

conformance! {
    /// The engine takes jobs in run order while their weights fit the slots asked for, stops at
    /// the first that does not (never passing it), counts a weight as at most the cap, and
    /// stores the declared weight or the one an insert gives.
    async fn a_fetch_takes_jobs_while_their_weights_fit_and_never_passes_a_heavy_one(db) {
        let k = scale_key();
        let jobs = vec![job(&k, "a5", 5, 0), job(&k, "b4", 4, 0), job(&k, "c5", 5, 0), job(&k, "d1", 1, 0)];
        db.insert_all(jobs).await.unwrap();
        let engine = db.engine().clone();

        let first = engine.fetch(&request(10, 10, None)).await.unwrap();
        assert_eq!(labels_of(&db, &first).await, ["a5", "b4"], "5 + 4 fit in 10; c5 does not, and d1 waits behind it");
        assert_eq!(first.iter().map(|j| j.weight).sum::<u16>(), 9);
        let none = engine.fetch(&request(4, 10, None)).await.unwrap();
        assert!(none.is_empty(), "c5 does not fit 4 slots and d1 is not taken past it");
        let second = engine.fetch(&request(6, 10, None)).await.unwrap();
        assert_eq!(labels_of(&db, &second).await, ["c5", "d1"]);

        // Heavier than the cap (the node's limit): it counts as the cap, so it runs alone.
        db.insert_all(vec![job(&k, "e20", 20, 0)]).await.unwrap();
        assert!(engine.fetch(&request(9, 10, None)).await.unwrap().is_empty());
        let heavy = engine.fetch(&request(10, 10, None)).await.unwrap();
        assert_eq!((heavy.len(), heavy[0].weight), (1, 20), "stored weight 20, counted as 10");

        // The declared weight, and an insert's own.
        let declared = db.insert(HeavyReport { clinic_id: 1 }).await.unwrap().job.id;
        let given = db.insert(HeavyReport { clinic_id: 2 }.weight(2)).await.unwrap().job.id;
        let fetched = engine.fetch(&request(100, 100, None)).await.unwrap();
        let weight_of = |id: i64| fetched.iter().find(|j| j.id == id).unwrap().weight;
        assert_eq!((weight_of(declared), weight_of(given)), (4, 2));
        assert_eq!((db.job(declared).await.weight, db.job(given).await.weight), (4, 2), "shown with the row");
    }
}

conformance! {
    /// Under a global limit the executing rows count by their weights: with 5 of 6 slots taken
    /// cluster-wide, a job of weight 2 waits (and one of weight 1 behind it with it), while one of
    /// weight 1 ahead of them in run order takes the last slot.
    async fn a_global_limit_counts_the_weights_of_executing_jobs(db) {
        let k = scale_key();
        let at = |label: &str, weight: u16, priority: u8| {
            Weighed { key: k.clone(), label: label.into(), slots: weight as usize, sleep_ms: 0 }
                .weight(weight)
                .priority(priority)
                .build()
                .unwrap()
        };
        db.insert_all(vec![at("a5", 5, 0)]).await.unwrap();
        let engine = db.engine().clone();
        assert_eq!(engine.fetch(&request(10, 6, Some(6))).await.unwrap().len(), 1);
        db.insert_all(vec![at("b2", 2, 1), at("c1", 1, 1)]).await.unwrap();
        assert!(engine.fetch(&request(10, 6, Some(6))).await.unwrap().is_empty(), "5 + 2 is over 6, and c1 waits behind b2");
        db.insert_all(vec![at("p1", 1, 0)]).await.unwrap();
        let taken = engine.fetch(&request(10, 6, Some(6))).await.unwrap();
        assert_eq!(labels_of(&db, &taken).await, ["p1"], "first in run order, it fits the last slot");
        assert!(engine.fetch(&request(10, 6, Some(6))).await.unwrap().is_empty(), "6 of 6 taken");
    }
}

conformance! {
    /// A node at limit 10 running a mix of weights never has more than 10 slots' worth running,
    /// fills its 10 when the order of the jobs allows (two of 5, then ten of 1, then a 3 and a 7),
    /// and runs every job.
    async fn a_node_never_runs_more_weight_than_its_limit_and_fills_it(db) {
        let k = scale_key();
        let mut jobs = Vec::new();
        for round in 0..2 {
            jobs.push(job(&k, &format!("five{round}a"), 5, 150));
            jobs.push(job(&k, &format!("five{round}b"), 5, 150));
            jobs.extend((0..10).map(|i| job(&k, &format!("one{round}.{i}"), 1, 150)));
            jobs.push(job(&k, &format!("three{round}"), 3, 150));
            jobs.push(job(&k, &format!("seven{round}"), 7, 150));
        }
        db.insert_all(jobs).await.unwrap();
        let runtime = db.runtime().queue("weighed", 10).start().await.unwrap();
        db.wait_state_count(JobState::Completed, 28).await;
        runtime.shutdown().await.unwrap();
        let peak = SCALES.lock().unwrap()[&k].peak;
        assert_eq!(peak, 10, "the most slots' worth running at once");
        assert_eq!(runs(&k).len(), 28);
    }
}

conformance! {
    /// A heavy job that does not fit yet is not passed by the light ones queued behind it: they
    /// start only after it did. One heavier than the whole limit runs alone.
    async fn a_heavy_job_is_not_passed_and_one_heavier_than_the_limit_runs_alone(db) {
        let k = scale_key();
        let mut jobs = vec![job(&k, "first", 1, 300), job(&k, "heavy", 4, 100)];
        jobs.extend((0..4).map(|i| job(&k, &format!("light{i}"), 1, 50)));
        jobs.push(job(&k, "huge", 50, 100));
        jobs.push(job(&k, "last", 1, 0));
        db.insert_all(jobs).await.unwrap();
        let runtime = db.runtime().queue("weighed", 4).start().await.unwrap();
        db.wait_state_count(JobState::Completed, 8).await;
        runtime.shutdown().await.unwrap();

        let runs = runs(&k);
        let at = |label: &str| runs.iter().find(|r| r.0 == label).unwrap_or_else(|| panic!("{label} ran"));
        let heavy = at("heavy");
        assert!(heavy.1 >= at("first").2, "heavy (4 of 4) started only once `first` ended");
        for i in 0..4 {
            assert!(at(&format!("light{i}")).1 >= heavy.1, "light{i} passed the heavy job: {runs:?}");
        }
        let huge = at("huge");
        for other in runs.iter().filter(|r| r.0 != "huge") {
            let overlaps = other.1 < huge.2 && huge.1 < other.2;
            assert!(!overlaps, "{} ran beside the job heavier than the limit", other.0);
        }
        assert_eq!(SCALES.lock().unwrap()[&k].peak, 50, "the huge job counted its own weight, alone");
    }
}

conformance! {
    /// A weight out of range is refused at insert with a message that says what is allowed, and
    /// the rest of the batch is not inserted either.
    async fn a_weight_out_of_range_is_refused_and_inserts_nothing(db) {
        let k = scale_key();
        for weight in [0, MAX_WEIGHT + 1] {
            let err = Weighed { key: k.clone(), label: "x".into(), slots: 1, sleep_ms: 0 }.weight(weight).build().unwrap_err();
            assert!(err.to_string().contains("weight must be 1 to 1000"), "{err}");
        }
        let err = db.insert(HeavyReport { clinic_id: 3 }.weight(0)).await.unwrap_err();
        assert!(err.to_string().contains("weight must be 1 to 1000"), "{err}");
        assert_eq!(db.count_state(JobState::Available).await, 0);
    }
}

conformance! {
    /// Under a rate limit the window's room counts starts, and the slots count weights: a limit
    /// of 2 starts a second lets two jobs of weight 3 start at once on a node of 10 slots (not
    /// none, as if the 2 were slots), and every job runs.
    async fn a_rate_limit_counts_starts_and_the_slots_count_weights(db) {
        let k = scale_key();
        db.insert_all((0..4).map(|i| job(&k, &format!("w3.{i}"), 3, 0)).collect()).await.unwrap();
        let rate = jobsmith::RateLimit::per_second(2);
        let engine = db.engine().clone();
        let first = engine.fetch_rate_limited(&request(10, 10, None), rate).await.unwrap();
        assert_eq!(first.jobs.len(), 2, "two starts, six slots of ten");
        assert!(first.limited_for.is_some(), "the window, not the slots, cut it short");
        let runtime = db.runtime().queue("weighed", 10).rate_limit("weighed", rate).start().await.unwrap();
        db.wait_state_count(JobState::Completed, 2).await;
        runtime.shutdown().await.unwrap();
    }
}

conformance! {
    /// A job heavier than the fetch batch still runs: its weight counts as at most what a fetch
    /// asks for.
    async fn a_job_heavier_than_the_fetch_batch_runs(db) {
        let k = scale_key();
        db.insert_all(vec![job(&k, "eight", 8, 0), job(&k, "one", 1, 0)]).await.unwrap();
        let runtime = db.runtime().queue("weighed", 10).fetch_batch(5).start().await.unwrap();
        db.wait_state_count(JobState::Completed, 2).await;
        runtime.shutdown().await.unwrap();
        assert_eq!(SCALES.lock().unwrap()[&k].peak, 8);
    }
}
