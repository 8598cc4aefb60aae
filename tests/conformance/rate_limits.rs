//! Rate limits per queue (ADR 22): at most `limit` starts in any window, across all nodes; a
//! limited queue runs at its limit while it has work; the limit is a persisted setting changed at
//! run time. Each test runs on both engines.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jobsmith::engine::{FetchRequest, SettingsUpdate};
use jobsmith::prelude::*;
use jobsmith::{JobState, QueueSettingsChange, RateLimit};

use super::harness::{LONG, TestDb, fetch_request, wait_for};
use super::probe::Probe;
use super::runtime::record;

fn request(limit: u32) -> FetchRequest<'static> {
    fetch_request("rated", limit)
}

/// The most claim stamps that fall in any window of `window` (each window starting at a stamp,
/// which is where the most can fall).
fn peak_in_any_window(stamps: &mut [DateTime<Utc>], window: Duration) -> usize {
    stamps.sort();
    let window = chrono::Duration::from_std(window).unwrap();
    (0..stamps.len())
        .map(|i| stamps[i..].iter().take_while(|t| **t < stamps[i] + window).count())
        .max()
        .unwrap_or(0)
}

async fn claim_stamps(db: &TestDb, ids: &[i64]) -> Vec<DateTime<Utc>> {
    let mut stamps = Vec::new();
    for id in ids {
        stamps.push(db.job(*id).await.attempted_at.expect("the job was claimed"));
    }
    stamps
}

conformance! {
    /// The engine takes no more than the window allows, stamps each batch with one instant, says
    /// for how long the window is full when the limit (and only the limit) cut the fetch short,
    /// and lets the next starts in once the oldest ones left the window.
    async fn a_rate_limited_fetch_takes_what_the_window_allows_and_says_when_it_reopens(db) {
        let p = Probe::new();
        let jobs = (0..8).map(|i| record(&p, format!("j{i}"), 0).on_queue("rated").build().unwrap()).collect();
        db.insert_all(jobs).await.unwrap();
        let rate = RateLimit::new(3, Duration::from_millis(800));
        let engine = db.engine().clone();

        // Asked for fewer than the window allows: not limited.
        let first = engine.fetch_rate_limited(&request(2), rate).await.unwrap();
        assert_eq!((first.jobs.len(), first.limited_for), (2, None));
        // Asked for more: the one start left, and the window is full for nearly all of it.
        let second = engine.fetch_rate_limited(&request(10), rate).await.unwrap();
        assert_eq!(second.jobs.len(), 1);
        let full_for = second.limited_for.expect("the limit cut the fetch short");
        assert!(full_for <= rate.window + rate.window / 20 && full_for > Duration::ZERO, "{full_for:?}");
        let stamps: Vec<_> = first.jobs.iter().chain(&second.jobs).map(|j| j.id).collect();
        let claimed = claim_stamps(&db, &stamps).await;
        assert_eq!(claimed[0], claimed[1], "one fetch, one instant");
        // While the window is full nothing starts, and the answer says so again.
        let third = engine.fetch_rate_limited(&request(10), rate).await.unwrap();
        assert!(third.jobs.is_empty());
        assert!(third.limited_for.is_some());

        // Once the first starts leave the window, as many start again.
        let reopened = wait_for("the window to reopen", LONG, || async {
            let f = engine.fetch_rate_limited(&request(10), rate).await.unwrap();
            (!f.jobs.is_empty()).then_some(f.jobs)
        })
        .await;
        assert!(reopened.len() <= 3, "{}", reopened.len());
        let mut all: Vec<i64> = stamps.clone();
        all.extend(reopened.iter().map(|j| j.id));
        let mut stamps = claim_stamps(&db, &all).await;
        assert!(peak_in_any_window(&mut stamps, rate.window) <= 3, "{stamps:?}");

        // A queue that runs dry before the limit is not limited: it has no more work.
        let mut left = 8 - all.len();
        while left > 0 {
            let f = engine.fetch_rate_limited(&request(10), rate).await.unwrap();
            if f.jobs.is_empty() {
                tokio::time::sleep(f.limited_for.unwrap_or(Duration::from_millis(50))).await;
            }
            left -= f.jobs.len();
        }
        tokio::time::sleep(rate.window).await;
        let dry = engine.fetch_rate_limited(&request(10), rate).await.unwrap();
        assert_eq!((dry.jobs.len(), dry.limited_for), (0, None), "an empty queue is not rate limited");
    }
}

conformance! {
    /// Two nodes, 20 slots between them, a limit of 4 starts per 400 ms: no window of the claim
    /// stamps ever holds more than 4, and the 24 jobs take about six windows, not far more.
    async fn two_nodes_together_start_no_more_than_the_limit_and_run_at_it(db) {
        let p = Probe::new();
        let rate = RateLimit::new(4, Duration::from_millis(400));
        let jobs = (0..24).map(|i| record(&p, format!("j{i}"), 0).on_queue("rated").build().unwrap()).collect();
        let ids: Vec<i64> = db.insert_all(jobs).await.unwrap().into_iter().map(|j| j.job.id).collect();
        let node = |name: &str| db.runtime().node_name(name).queue("rated", 10);
        let a = node("a").rate_limit("rated", rate).start().await.unwrap();
        let b = node("b").start().await.unwrap();
        db.wait_state_count(JobState::Completed, 24).await;
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();

        let mut stamps = claim_stamps(&db, &ids).await;
        let peak = peak_in_any_window(&mut stamps, rate.window);
        assert_eq!(peak, 4, "the most starts in any 400 ms: {peak}");
        let span = (stamps[23] - stamps[0]).to_std().unwrap();
        // Six windows of four: the last batch starts five windows after the first.
        assert!(span >= Duration::from_millis(2_000), "the limit held: {span:?}");
        assert!(span < Duration::from_millis(4_000), "the queue ran far below its limit: {span:?}");
        assert_eq!(p.start_count(), 24);
    }
}

conformance! {
    /// The limit is a persisted setting: set at run time on one node it reaches the other, it is
    /// stored for nodes started later, a limit the engines cannot keep is refused and stores
    /// nothing, and clearing it lets the queue run unlimited again.
    async fn a_rate_limit_changed_at_run_time_reaches_every_node_and_clears(db) {
        let p = Probe::new();
        let a = db.runtime().node_name("a").queue("rated", 5).start().await.unwrap();
        let b = db.runtime().node_name("b").queue("rated", 5).start().await.unwrap();
        let rate = RateLimit::per_minute(2);
        a.set_rate_limit("rated", Some(rate)).await.unwrap();
        let rate_on = |rt: &jobsmith::Runtime| rt.queues().into_iter().find(|q| q.name == "rated").unwrap().rate_limit;
        wait_for("the limit to reach node b", LONG, || async { (rate_on(&b) == Some(rate)).then_some(()) }).await;
        let stored = db.engine().queue_settings().await.unwrap();
        assert_eq!(stored.iter().find(|s| s.name == "rated").unwrap().rate_limit, Some(rate));

        // Two a minute: of five jobs, two start and three wait.
        let jobs = (0..5).map(|i| record(&p, format!("j{i}"), 0).on_queue("rated").build().unwrap()).collect();
        db.insert_all(jobs).await.unwrap();
        db.wait_state_count(JobState::Completed, 2).await;
        let refused = a.set_rate_limit("rated", Some(RateLimit::per_second(0))).await.unwrap_err().to_string();
        assert!(refused.contains("1 to 10000 starts per window"), "{refused}");
        assert_eq!(rate_on(&a), Some(rate), "a refused change leaves the limit as it was");
        assert_eq!(db.count_state(JobState::Completed).await, 2, "the other three wait for the window");
        assert_eq!(db.count_state(JobState::Available).await, 3);

        b.set_rate_limit("rated", None).await.unwrap();
        db.wait_state_count(JobState::Completed, 5).await;
        assert_eq!(rate_on(&a), None);
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
        let stored = db.engine().queue_settings().await.unwrap();
        assert_eq!(stored.iter().find(|s| s.name == "rated").unwrap().rate_limit, None);
        let change = QueueSettingsChange { rate_limit: Some(Some(RateLimit::new(5, Duration::from_micros(10_500)))), ..Default::default() };
        let bad = db.engine().update_queue_settings(&SettingsUpdate { queue: "rated", change, allow_unknown: false }).await;
        assert!(bad.unwrap_err().to_string().contains("whole milliseconds"));
    }
}

/// When each `hogs_its_thread` run entered its fn (by label), by the wall clock.
static ENTERED: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, DateTime<Utc>>>> =
    std::sync::LazyLock::new(Default::default);

/// Takes the time, then blocks its worker thread for 200 ms (as a CPU-bound job or a starved
/// node would): jobs claimed with it may not get a thread in time.
#[jobsmith::job(queue = "rated")]
async fn hogs_its_thread(label: String) -> Result<(), String> {
    ENTERED.lock().unwrap().insert(label, Utc::now());
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}

conformance! {
    /// A job claimed under a rate limit starts within the log's guard of its claim, or not at
    /// all: the batch's jobs that find no thread free in time (two threads, four jobs that each
    /// block one for 200 ms) go back to the queue unstarted and run from a later claim. Without
    /// that, they would start 200 ms after their claim, into a window their claim was not
    /// counted in.
    async fn a_rate_limited_job_that_cannot_start_in_time_is_released_not_started_late(db) {
        let labels: Vec<String> = (0..6).map(|i| format!("{}-{i}", db.engine().name())).collect();
        let jobs = labels.iter().map(|l| HogsItsThread { label: l.clone() }.build().unwrap()).collect();
        let ids: Vec<i64> = db.insert_all(jobs).await.unwrap().into_iter().map(|j| j.job.id).collect();
        // 20 per second: a guard of 50 ms.
        let rate = RateLimit::per_second(20);
        let runtime = db.runtime().queue("rated", 4).rate_limit("rated", rate).start().await.unwrap();
        db.wait_state_count(JobState::Completed, 6).await;
        runtime.shutdown().await.unwrap();
        for (id, label) in ids.iter().zip(&labels) {
            let claimed = db.job(*id).await.attempted_at.expect("claimed");
            let entered = ENTERED.lock().unwrap()[label];
            let lag = (entered - claimed).num_milliseconds();
            assert!(lag < 150, "{label} entered its fn {lag} ms after its claim");
        }
    }
}

conformance! {
    /// A refund takes back one start per stamp given: a full window has room again for as many,
    /// and a stamp that is not in the log (or not any more) gives nothing.
    async fn refunded_starts_leave_the_window(db) {
        let p = Probe::new();
        let jobs = (0..5).map(|i| record(&p, format!("j{i}"), 0).on_queue("rated").build().unwrap()).collect();
        db.insert_all(jobs).await.unwrap();
        let rate = RateLimit::per_minute(2);
        let engine = db.engine().clone();
        let first = engine.fetch_rate_limited(&request(10), rate).await.unwrap();
        assert_eq!(first.jobs.len(), 2);
        assert!(engine.fetch_rate_limited(&request(10), rate).await.unwrap().jobs.is_empty());

        engine.refund_rate_starts("rated", None, &[first.stamp_ms - 1, first.stamp_ms]).await.unwrap();
        let second = engine.fetch_rate_limited(&request(10), rate).await.unwrap();
        assert_eq!(second.jobs.len(), 1, "one stamp was in the log, one was not");
        engine.refund_rate_starts("rated", None, &[]).await.unwrap();
        engine.refund_rate_starts("another", None, &[first.stamp_ms]).await.unwrap();
        assert!(engine.fetch_rate_limited(&request(10), rate).await.unwrap().jobs.is_empty());
    }
}

/// Like [`hogs_its_thread`], for longer than a per-minute limit's guard (1 s).
#[jobsmith::job(queue = "rated_slowly")]
async fn hogs_its_thread_long(label: String) -> Result<(), String> {
    ENTERED.lock().unwrap().insert(label, Utc::now());
    std::thread::sleep(Duration::from_millis(1_200));
    Ok(())
}

conformance! {
    /// A job released because it could not start in time gives its start back to the window: of
    /// four jobs at four a minute, the two that find both threads blocked past the guard go back
    /// and run within seconds, not once the minute is over (CI saw a starved node's released
    /// claims hold a per-minute window shut).
    async fn a_claim_released_unstarted_gives_its_start_back(db) {
        let labels: Vec<String> = (0..4).map(|i| format!("{}-long-{i}", db.engine().name())).collect();
        let jobs = labels.iter().map(|l| HogsItsThreadLong { label: l.clone() }.build().unwrap()).collect();
        db.insert_all(jobs).await.unwrap();
        let rate = RateLimit::per_minute(4);
        let runtime = db.runtime().queue("rated_slowly", 4).rate_limit("rated_slowly", rate).start().await.unwrap();
        // Well inside the minute the unrefunded starts would hold the window for.
        wait_for("all four jobs to complete", Duration::from_secs(30), || async {
            (db.count_state(JobState::Completed).await == 4).then_some(())
        })
        .await;
        runtime.shutdown().await.unwrap();
        for label in &labels {
            assert!(ENTERED.lock().unwrap().contains_key(label), "{label} ran");
        }
    }
}
