//! Sequenced queues (ADR 27): each partition's jobs run one at a time in insertion order, the
//! next only after the one before finished (a retry pending has not; a discard has not under
//! `WaitForRetries` and has under `ContinueAfterDiscard`); partitions run side by side. Each test
//! runs on both engines.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use jobsmith::engine::{FetchRequest, PartitionRequest, PartitionedFetch};
use jobsmith::prelude::*;
use jobsmith::{JobState, SequencePolicy};

use super::harness::{TestDb, fetch_request};

/// Per test and account: each run's (n, attempt, start, end) in the order they started.
type Runs = HashMap<(String, String), Vec<(u32, u32, Instant, Instant)>>;
static RUNS: LazyLock<Mutex<Runs>> = LazyLock::new(Default::default);

fn quick(_attempt: u32) -> Duration {
    Duration::from_millis(200)
}

/// One ledger entry of an account: takes `sleep_ms`; with `fail_first`, its first attempt fails.
#[jobsmith::job(queue = "ledger", partition = "account", max_attempts = 3, backoff = quick)]
async fn ledger_entry(
    ctx: JobContext,
    test: String,
    account: String,
    n: u32,
    sleep_ms: u64,
    fail_first: bool,
) -> Result<(), String> {
    let start = Instant::now();
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    RUNS.lock().unwrap().entry((test, account)).or_default().push((n, ctx.attempt, start, Instant::now()));
    if fail_first && ctx.attempt == 1 { Err("the first attempt fails".into()) } else { Ok(()) }
}

fn entry(test: &str, account: &str, n: u32) -> LedgerEntry {
    LedgerEntry { test: test.into(), account: account.into(), n, sleep_ms: 0, fail_first: false }
}

fn request(limit: u32) -> FetchRequest<'static> {
    fetch_request("ledger", limit)
}

fn sequenced(policy: SequencePolicy) -> PartitionRequest<'static> {
    PartitionRequest { limit: None, rate: None, after: None, resume: None, sequence: Some(policy) }
}

async fn ids_of(fetch: &PartitionedFetch) -> Vec<i64> {
    let mut ids: Vec<i64> = fetch.jobs.iter().map(|j| j.id).collect();
    ids.sort();
    ids
}

async fn set_state(db: &TestDb, id: i64, state: &str) {
    let stamp = match state {
        "completed" => ", completed_at = {now}",
        "discarded" => ", discarded_at = {now}",
        "cancelled" => ", cancelled_at = {now}",
        _ => "",
    };
    db.exec(&format!("UPDATE {{jobs}} SET state = '{state}'{stamp} WHERE id = {id}")).await;
}

conformance! {
    /// A partition gives its first unfinished job (by insertion, whatever the priorities) and
    /// nothing while it runs, waits for a retry or, under `WaitForRetries`, sits discarded;
    /// `ContinueAfterDiscard` goes on after a discard, and a cancelled job never holds it.
    async fn a_sequence_gives_only_its_first_unfinished_job(db) {
        let mut ids = HashMap::new();
        for (account, n) in [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)] {
            ids.insert(format!("{account}{n}"), db.insert(entry("engine", account, n).priority(5)).await.unwrap().job.id);
        }
        // Inserted last but first by priority: it still waits for a2.
        db.exec(&format!("UPDATE {{jobs}} SET priority = 0 WHERE id = {}", ids["a3"])).await;
        let engine = db.engine().clone();
        let wait = sequenced(SequencePolicy::WaitForRetries);
        let fetch = |parts| { let engine = engine.clone(); async move { engine.fetch_partitioned(&request(10), parts).await.unwrap() } };

        assert_eq!(ids_of(&fetch(wait).await).await, [ids["a1"], ids["b1"]], "each sequence's first");
        assert!(fetch(wait).await.jobs.is_empty(), "nothing while they run");

        set_state(&db, ids["a1"], "completed").await;
        assert_eq!(ids_of(&fetch(wait).await).await, [ids["a2"]], "a2 next, not a3 though it ranks first");

        set_state(&db, ids["b1"], "retryable").await;
        assert!(fetch(wait).await.jobs.is_empty(), "b2 waits for b1's retry");
        set_state(&db, ids["b1"], "discarded").await;
        assert!(fetch(wait).await.jobs.is_empty(), "a discarded b1 holds b2");
        assert_eq!(ids_of(&fetch(sequenced(SequencePolicy::ContinueAfterDiscard)).await).await, [ids["b2"]]);

        set_state(&db, ids["a2"], "cancelled").await;
        assert_eq!(ids_of(&fetch(wait).await).await, [ids["a3"]], "a cancelled job holds nothing");
    }
}

conformance! {
    /// A node with five slots runs three accounts' entries: each account's in insertion order,
    /// each starting after the one before ended (the first entry of `a` fails once and is
    /// retried before `a`'s second starts), and the accounts side by side.
    async fn a_sequenced_queue_runs_each_partition_in_order_one_at_a_time(db) {
        // Both engines' tests run at once: each records under its own name.
        let test = format!("node-{}", db.engine().name());
        for n in 1..=4 {
            for account in ["a", "b", "c"] {
                let job = LedgerEntry { test: test.clone(), account: account.into(), n, sleep_ms: 30, fail_first: account == "a" && n == 1 };
                db.insert(job).await.unwrap();
            }
        }
        let runtime = db.runtime().queue("ledger", 5).sequence("ledger", SequencePolicy::WaitForRetries).start().await.unwrap();
        assert_eq!(runtime.queues()[0].sequence, Some(SequencePolicy::WaitForRetries));
        db.wait_state_count(JobState::Completed, 12).await;
        runtime.shutdown().await.unwrap();

        let runs = RUNS.lock().unwrap().clone();
        let mut overlapped = false;
        for account in ["a", "b", "c"] {
            let runs = &runs[&(test.clone(), account.to_string())];
            let order: Vec<(u32, u32)> = runs.iter().map(|(n, attempt, _, _)| (*n, *attempt)).collect();
            let expected: Vec<(u32, u32)> = if account == "a" { vec![(1, 1), (1, 2), (2, 1), (3, 1), (4, 1)] } else { (1..=4).map(|n| (n, 1)).collect() };
            assert_eq!(order, expected, "{account}: in order, the retry before the next");
            for pair in runs.windows(2) {
                assert!(pair[1].2 >= pair[0].3, "{account}: {} started before {} ended", pair[1].0, pair[0].0);
            }
        }
        // Side by side: some run of b began before a run of a ended, and so on.
        let (a, b) = (&runs[&(test.clone(), "a".to_string())], &runs[&(test.clone(), "b".to_string())]);
        for x in a {
            if b.iter().any(|y| y.2 < x.3 && x.2 < y.3) {
                overlapped = true;
            }
        }
        assert!(overlapped, "accounts a and b never ran at the same time");
    }
}

conformance! {
    /// The sequence policy is a persisted setting: set at run time it is stored and shown, and
    /// cleared the queue is no longer sequenced.
    async fn a_sequence_policy_is_a_persisted_setting(db) {
        let runtime = db.runtime().queue("ledger", 2).start().await.unwrap();
        let stored = || async {
            db.engine().queue_settings().await.unwrap().into_iter().find(|s| s.name == "ledger").and_then(|s| s.sequence)
        };
        runtime.set_sequence("ledger", Some(SequencePolicy::ContinueAfterDiscard)).await.unwrap();
        assert_eq!(stored().await, Some(SequencePolicy::ContinueAfterDiscard));
        assert_eq!(runtime.queues()[0].sequence, Some(SequencePolicy::ContinueAfterDiscard));
        runtime.set_sequence("ledger", None).await.unwrap();
        assert_eq!(stored().await, None);
        assert_eq!(runtime.queues()[0].sequence, None);
        runtime.shutdown().await.unwrap();
        assert!("later".parse::<SequencePolicy>().is_err());
    }
}

conformance! {
    /// A sequence's own policy overrides its queue's: under a `continue` queue, sequence `b`
    /// chosen `wait` is held by its discarded job while `a` goes on; under a `wait` queue, `a`
    /// chosen `continue` goes on while `b` is held; cleared, `b` follows the queue again.
    async fn a_sequence_policy_chosen_for_one_sequence_overrides_the_queues(db) {
        let mut ids = HashMap::new();
        for (account, n) in [("a", 1), ("a", 2), ("b", 1), ("b", 2)] {
            ids.insert(format!("{account}{n}"), db.insert(entry("override", account, n)).await.unwrap().job.id);
        }
        let engine = db.engine().clone();
        let fetch = |policy| {
            let engine = engine.clone();
            async move { engine.fetch_partitioned(&request(10), sequenced(policy)).await.unwrap() }
        };
        assert_eq!(ids_of(&fetch(SequencePolicy::ContinueAfterDiscard).await).await, [ids["a1"], ids["b1"]]);
        set_state(&db, ids["a1"], "discarded").await;
        set_state(&db, ids["b1"], "discarded").await;

        db.set_sequence_policy("ledger", "b", Some(SequencePolicy::WaitForRetries)).await.unwrap();
        db.set_sequence_policy("other", "b", Some(SequencePolicy::ContinueAfterDiscard)).await.unwrap();
        let a2_only = fetch(SequencePolicy::ContinueAfterDiscard).await;
        assert_eq!(ids_of(&a2_only).await, [ids["a2"]], "b's own wait holds b2 in a continue queue");
        set_state(&db, ids["a2"], "available").await; // hand a2 back for the next case

        db.set_sequence_policy("ledger", "b", None).await.unwrap();
        db.set_sequence_policy("ledger", "a", Some(SequencePolicy::ContinueAfterDiscard)).await.unwrap();
        assert_eq!(ids_of(&fetch(SequencePolicy::WaitForRetries).await).await, [ids["a2"]], "a's own continue in a wait queue");
        set_state(&db, ids["a2"], "available").await;
        assert_eq!(
            ids_of(&fetch(SequencePolicy::ContinueAfterDiscard).await).await,
            [ids["a2"], ids["b2"]],
            "b cleared: the queue's continue again"
        );

        let listed = db.engine().sequence_policies(Some("ledger")).await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!((listed[0].partition.as_str(), listed[0].policy), ("a", SequencePolicy::ContinueAfterDiscard));
        assert_eq!(db.engine().sequence_policies(None).await.unwrap().len(), 2, "every queue's");
        let too_long = "k".repeat(jobsmith::MAX_PARTITION_KEY_BYTES + 1);
        assert!(db.set_sequence_policy("ledger", &too_long, Some(SequencePolicy::WaitForRetries)).await.is_err());
        assert_eq!(db.engine().sequence_policies(None).await.unwrap().len(), 2, "a refused key stores nothing");
    }
}
