//! Rate limits for each partition of a queue (ADR 25): at most `limit` starts of one partition in
//! any window, across all nodes, while the other partitions (and jobs of no partition) go on; the
//! per-partition kind is a persisted setting like any rate limit. Each test runs on both engines.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobsmith::engine::{FetchRequest, FetchedJob, PartitionRequest};
use jobsmith::prelude::*;
use jobsmith::{JobState, RateLimit};

use super::harness::{LONG, TestDb, fetch_request, wait_for};

/// A call to one insurer's API (a no-op: the tests read the claims from the rows).
#[jobsmith::job(queue = "benefits", partition = "insurer")]
async fn insurer_call(insurer: String, n: u32) -> Result<(), String> {
    let _ = (insurer, n);
    Ok(())
}

fn call(insurer: &str, n: u32) -> jobsmith::NewJob {
    InsurerCall { insurer: insurer.into(), n }.build().unwrap()
}

fn request(limit: u32) -> FetchRequest<'static> {
    fetch_request("benefits", limit)
}

fn per_partition(limit: u32, window: Duration) -> PartitionRequest<'static> {
    PartitionRequest {
        limit: None,
        rate: Some(RateLimit::new(limit, window).for_each_partition()),
        after: None,
        resume: None,
        sequence: None,
    }
}

/// How many of `jobs` each partition gave (`-` for jobs of no partition), from the fetch's own
/// answer, checked against the stored rows.
async fn by_partition(db: &TestDb, jobs: &[FetchedJob], keys: &[Option<String>]) -> HashMap<String, usize> {
    assert_eq!(jobs.len(), keys.len(), "one partition for each job");
    let mut counts = HashMap::new();
    for (job, key) in jobs.iter().zip(keys) {
        assert_eq!(&db.job(job.id).await.partition_key, key, "the fetch names each job's own partition");
        *counts.entry(key.clone().unwrap_or_else(|| "-".into())).or_default() += 1;
    }
    counts
}

fn counts(pairs: &[(&str, usize)]) -> HashMap<String, usize> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

conformance! {
    /// Each partition takes what its own window allows and no more, whatever the fetch's room;
    /// the others (and jobs of no partition, which no partition's window counts) go on; the
    /// claims are stamped with the logged instant; a short fetch says when the first full window
    /// opens; a new partition starts at once.
    async fn each_partition_starts_what_its_own_window_allows(db) {
        let jobs = (0..5).map(|n| call("acme", n)).chain((0..5).map(|n| call("bupa", n))).collect();
        db.insert_all(jobs).await.unwrap();
        let p = crate::probe::Probe::new();
        for i in 0..2 {
            db.insert(crate::runtime::record(&p, format!("plain{i}"), 0).on_queue("benefits")).await.unwrap();
        }
        let engine = db.engine().clone();
        let two_a_minute = per_partition(2, Duration::from_secs(60));

        let first = engine.fetch_partitioned(&request(10), two_a_minute).await.unwrap();
        assert_eq!(by_partition(&db, &first.jobs, &first.partitions).await, counts(&[("acme", 2), ("bupa", 2), ("-", 2)]));
        let stamp = first.rated.expect("a rate-limited fetch says how it stamped its claims");
        for (job, _) in first.jobs.iter().zip(&first.partitions).filter(|(_, key)| key.is_some()) {
            let at: DateTime<Utc> = db.job(job.id).await.attempted_at.unwrap();
            assert_eq!(at.timestamp_millis(), stamp.stamp_ms, "the claim is the logged start");
        }
        let opens = first.window_opens_in.expect("short, with full windows that still have work");
        assert!(opens > Duration::from_secs(59) && opens <= Duration::from_millis(61_000), "{opens:?}");

        // Nothing more this minute, from either partition; a new partition is not held back.
        let second = engine.fetch_partitioned(&request(10), two_a_minute).await.unwrap();
        assert!(second.jobs.is_empty(), "{:?}", second.partitions);
        assert!(second.window_opens_in.is_some());
        db.insert(InsurerCall { insurer: "cigna".into(), n: 0 }).await.unwrap();
        let third = engine.fetch_partitioned(&request(10), two_a_minute).await.unwrap();
        assert_eq!(by_partition(&db, &third.jobs, &third.partitions).await, counts(&[("cigna", 1)]));

        // A concurrency limit for each partition holds beside the rate: one of dent's three,
        // though its window has room for two.
        db.insert_all((0..3).map(|n| call("dent", n)).collect()).await.unwrap();
        let both = PartitionRequest { limit: Some(1), ..two_a_minute };
        let fourth = engine.fetch_partitioned(&request(10), both).await.unwrap();
        assert_eq!(by_partition(&db, &fourth.jobs, &fourth.partitions).await, counts(&[("dent", 1)]));
    }
}

conformance! {
    /// A refund gives a partition's starts back to that partition's window, not another's.
    async fn a_refund_goes_back_to_its_own_partitions_window(db) {
        let jobs = (0..4).map(|n| call("acme", n)).chain((0..4).map(|n| call("bupa", n))).collect();
        db.insert_all(jobs).await.unwrap();
        let engine = db.engine().clone();
        let one_a_minute = per_partition(1, Duration::from_secs(60));
        let first = engine.fetch_partitioned(&request(10), one_a_minute).await.unwrap();
        assert_eq!(first.jobs.len(), 2);
        let stamp = first.rated.unwrap().stamp_ms;

        engine.refund_rate_starts("benefits", Some("acme"), &[stamp]).await.unwrap();
        let second = engine.fetch_partitioned(&request(10), one_a_minute).await.unwrap();
        assert_eq!(by_partition(&db, &second.jobs, &second.partitions).await, counts(&[("acme", 1)]));
        // The queue's own log, and a partition never logged, give nothing back.
        engine.refund_rate_starts("benefits", None, &[stamp]).await.unwrap();
        engine.refund_rate_starts("benefits", Some("cigna"), &[stamp]).await.unwrap();
        assert!(engine.fetch_partitioned(&request(10), one_a_minute).await.unwrap().jobs.is_empty(), "the new log counts acme's start");
    }
}

conformance! {
    /// Two nodes, a limit of 2 starts per 500 ms for each of three insurers: no insurer's claims
    /// ever hold more than 2 in any window, every insurer runs from the first window (side by
    /// side, not one after another), and the queue runs at the limits.
    async fn two_nodes_keep_each_partitions_rate_and_run_the_partitions_side_by_side(db) {
        let rate = RateLimit::new(2, Duration::from_millis(500)).for_each_partition();
        let jobs: Vec<_> = ["acme", "bupa", "cigna"].iter().flat_map(|i| (0..6).map(|n| call(i, n))).collect();
        let ids: Vec<i64> = db.insert_all(jobs).await.unwrap().into_iter().map(|j| j.job.id).collect();
        let node = |name: &str| db.runtime().node_name(name).queue("benefits", 10);
        let a = node("a").rate_limit("benefits", rate).start().await.unwrap();
        let b = node("b").start().await.unwrap();
        wait_for("the setting to reach node b", LONG, || async {
            (b.queues()[0].rate_limit == Some(rate)).then_some(())
        })
        .await;
        db.wait_state_count(JobState::Completed, 18).await;
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();

        let mut rows = Vec::new();
        for id in ids {
            rows.push(db.job(id).await);
        }
        let mut by_insurer: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
        for row in &rows {
            by_insurer.entry(row.partition_key.clone().unwrap()).or_default().push(row.attempted_at.unwrap());
        }
        let first = rows.iter().map(|r| r.attempted_at.unwrap()).min().unwrap();
        for (insurer, stamps) in &mut by_insurer {
            stamps.sort();
            let window = chrono::Duration::milliseconds(500);
            let peak = (0..stamps.len()).map(|i| stamps[i..].iter().take_while(|t| **t < stamps[i] + window).count()).max();
            assert_eq!(peak, Some(2), "{insurer}: the most claims in any 500 ms");
            let began = (stamps[0] - first).to_std().unwrap();
            assert!(began < Duration::from_millis(400), "{insurer} waited {began:?} for the others");
            // Three windows of two: the last pair starts two windows (and guards) after the first.
            let span = (stamps[5] - stamps[0]).to_std().unwrap();
            assert!(span >= Duration::from_millis(1_000), "{insurer}: the limit held: {span:?}");
            assert!(span < Duration::from_millis(3_000), "{insurer}: ran far below its limit: {span:?}");
        }
        assert_eq!(by_insurer.len(), 3);
    }
}

conformance! {
    /// "For each partition" is part of the stored setting: it reaches every node, reads back
    /// from the store, and a plain limit set over it is for the whole queue again.
    async fn a_rate_limit_for_each_partition_is_a_persisted_setting(db) {
        let runtime = db.runtime().queue("benefits", 4).start().await.unwrap();
        let rate = RateLimit::per_second(10).for_each_partition();
        runtime.set_rate_limit("benefits", Some(rate)).await.unwrap();
        let stored = || async {
            db.engine().queue_settings().await.unwrap().into_iter().find(|s| s.name == "benefits").unwrap().rate_limit
        };
        assert_eq!(stored().await, Some(rate));
        assert_eq!(runtime.queues()[0].rate_limit, Some(rate));
        runtime.set_rate_limit("benefits", Some(RateLimit::per_second(10))).await.unwrap();
        assert_eq!(stored().await.map(|r| r.per_partition), Some(false));
        runtime.set_rate_limit("benefits", None).await.unwrap();
        assert_eq!(stored().await, None);
        runtime.shutdown().await.unwrap();
    }
}

conformance! {
    /// The leader's prune deletes a partition's log once it holds no start inside the queue's
    /// window (and guard), keeps the logs of partitions still inside it and the queue's own log,
    /// and a partition that starts again gets a new log that counts from there.
    async fn an_idle_partitions_log_is_pruned_and_comes_back_when_it_starts_again(db) {
        let rate = RateLimit::new(1, Duration::from_millis(300)).for_each_partition();
        let change = jobsmith::QueueSettingsChange { rate_limit: Some(Some(rate)), ..Default::default() };
        let update = jobsmith::engine::SettingsUpdate { queue: "benefits", change, allow_unknown: true };
        db.engine().update_queue_settings(&update).await.unwrap();
        let jobs = ["acme", "bupa", "acme"].iter().enumerate().map(|(n, k)| call(k, n as u32)).collect();
        db.insert_all(jobs).await.unwrap();
        let engine = db.engine().clone();
        let first = engine.fetch_partitioned(&request(10), per_partition(1, Duration::from_millis(300))).await.unwrap();
        assert_eq!(first.jobs.len(), 2, "one of each partition");
        let empty = if db.engine().name() == "postgres" { "'{}'" } else { "'[]'" };
        db.exec(&format!("INSERT INTO {{rate_logs}} (queue, key, starts) VALUES ('benefits', '', {empty})")).await;
        let logs = || db.scalar("SELECT count(*) FROM {rate_logs} WHERE key <> ''");
        assert_eq!(logs().await, 2);
        assert_eq!(engine.prune_rate_logs().await.unwrap(), 0, "both partitions started inside the window");

        // 300 ms window and up to 1 s of guard: after that, both logs are idle.
        wait_for("the idle logs pruned", LONG, || async {
            (engine.prune_rate_logs().await.unwrap() == 2).then_some(())
        })
        .await;
        assert_eq!(logs().await, 0);
        assert_eq!(db.scalar("SELECT count(*) FROM {rate_logs} WHERE key = ''").await, 1, "the queue's own log stays");

        let again = engine.fetch_partitioned(&request(10), per_partition(1, Duration::from_millis(300))).await.unwrap();
        assert_eq!(again.jobs.len(), 1, "acme's second starts with a new log");
        assert_eq!(logs().await, 1);
        db.insert_all(vec![call("acme", 3)]).await.unwrap();
        assert!(engine.fetch_partitioned(&request(10), per_partition(1, Duration::from_millis(300))).await.unwrap().jobs.is_empty(), "the new log counts acme's start");
    }
}

conformance! {
    /// A node whose partition's window is full looks again when that window opens, not at its
    /// next poll (here 30 s away): six jobs of one partition at 2 a 400 ms window all start
    /// within a few seconds, in three windows.
    async fn a_node_looks_again_when_a_full_partitions_window_opens(db) {
        let jobs = (0..6).map(|n| call("acme", n)).collect();
        let ids: Vec<i64> = db.insert_all(jobs).await.unwrap().into_iter().map(|j| j.job.id).collect();
        let rate = RateLimit::new(2, Duration::from_millis(400)).for_each_partition();
        let began = std::time::Instant::now();
        let runtime = db
            .runtime()
            .poll_interval(Duration::from_secs(30))
            .queue("benefits", 4)
            .rate_limit("benefits", rate)
            .start()
            .await
            .unwrap();
        db.wait_state_count(JobState::Completed, 6).await;
        let took = began.elapsed();
        runtime.shutdown().await.unwrap();
        assert!(took < Duration::from_secs(10), "the node waited for its poll: {took:?}");
        let mut starts = Vec::new();
        for id in ids {
            starts.push(db.job(id).await.attempted_at.unwrap());
        }
        starts.sort();
        let span = (starts[5] - starts[0]).num_milliseconds();
        assert!(span >= 800, "six starts at 2 a 400 ms window span two windows: {span} ms");
    }
}

conformance! {
    /// A short fetch says when a full window opens only for a partition that still has work: a
    /// partition whose jobs the fetch took all of is full, but there is nothing to look again for.
    async fn a_window_that_opens_on_no_work_wakes_nobody(db) {
        let engine = db.engine().clone();
        let two_a_minute = || per_partition(2, Duration::from_secs(60));
        db.insert_all(vec![call("acme", 0), call("acme", 1)]).await.unwrap();
        let emptied = engine.fetch_partitioned(&request(10), two_a_minute()).await.unwrap();
        assert_eq!(emptied.jobs.len(), 2);
        assert_eq!(emptied.window_opens_in, None, "acme is full and has nothing left");

        db.insert_all((2..5).map(|n| call("acme", n)).collect()).await.unwrap();
        let full = engine.fetch_partitioned(&request(10), two_a_minute()).await.unwrap();
        assert!(full.jobs.is_empty());
        let opens = full.window_opens_in.expect("acme has work behind its full window");
        assert!(opens > Duration::from_secs(58), "{opens:?}");
    }
}

conformance! {
    /// The leader's pruner runs the rate-log prune: an idle partition's log goes while the node
    /// runs, a partition with a start inside its window keeps its log.
    async fn the_leaders_pruner_deletes_idle_partitions_logs(db) {
        let rate = RateLimit::new(5, Duration::from_secs(60)).for_each_partition();
        let change = jobsmith::QueueSettingsChange { rate_limit: Some(Some(rate)), ..Default::default() };
        let update = jobsmith::engine::SettingsUpdate { queue: "benefits", change, allow_unknown: true };
        db.engine().update_queue_settings(&update).await.unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        let (idle, recent) = (now - 3_600_000, now - 1_000);
        let (idle, recent) = if db.engine().name() == "postgres" {
            (format!("'{{{idle}}}'"), format!("'{{{recent}}}'"))
        } else {
            (format!("'[{idle}]'"), format!("'[{recent}]'"))
        };
        db.exec(&format!("INSERT INTO {{rate_logs}} (queue, key, starts) VALUES ('benefits', 'idle', {idle}), ('benefits', 'recent', {recent})")).await;
        let retention = jobsmith::Retention {
            completed: Duration::from_secs(86_400),
            cancelled: Duration::from_secs(86_400),
            discarded: Duration::from_secs(86_400),
        };
        let runtime = db
            .runtime()
            .retention(retention, Duration::from_millis(200))
            .start()
            .await
            .unwrap();
        wait_for("the idle log pruned", LONG, || async {
            (db.scalar("SELECT count(*) FROM {rate_logs} WHERE key = 'idle'").await == 0).then_some(())
        })
        .await;
        runtime.shutdown().await.unwrap();
        assert_eq!(db.scalar("SELECT count(*) FROM {rate_logs} WHERE key = 'recent'").await, 1, "inside its window");
    }
}
