//! Weighted partitions (ADR 26): a partition with weight w gives w jobs in each turn of a
//! partitioned fetch where a partition without one gives one, within one fetch and across the
//! small fetches a busy node makes; weights are stored, cleared and checked. Each test runs on
//! both engines.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use jobsmith::engine::{FetchRequest, PartitionRequest, PartitionedFetch};
use jobsmith::prelude::*;
use jobsmith::{JobState, PartitionWeight};

use super::harness::{TestDb, fetch_request};

/// Per test, the clinics of the runs in the order they started.
static STARTED: LazyLock<Mutex<HashMap<String, Vec<String>>>> = LazyLock::new(Default::default);

/// A reminder of one clinic: notes its clinic as it starts, then takes `sleep_ms`.
#[jobsmith::job(queue = "reminders", partition = "clinic")]
async fn clinic_reminder(test: String, clinic: String, sleep_ms: u64) -> Result<(), String> {
    STARTED.lock().unwrap().entry(test).or_default().push(clinic);
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    Ok(())
}

fn reminders(test: &str, clinic: &str, n: usize, sleep_ms: u64) -> Vec<jobsmith::NewJob> {
    (0..n)
        .map(|_| ClinicReminder { test: test.into(), clinic: clinic.into(), sleep_ms }.build().unwrap())
        .collect()
}

fn request(limit: u32) -> FetchRequest<'static> {
    fetch_request("reminders", limit)
}

/// How many jobs of each clinic a fetch took, from the stored rows.
async fn by_clinic(db: &TestDb, fetch: &PartitionedFetch) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for job in &fetch.jobs {
        *counts.entry(db.job(job.id).await.partition_key.unwrap()).or_default() += 1;
    }
    counts
}

fn counts(pairs: &[(&str, usize)]) -> HashMap<String, usize> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

conformance! {
    /// Within one fetch a weight-3 partition takes three shares; across fetches of one job each
    /// (a busy node's, as slots free one by one) it keeps its turn for three of them before the
    /// next partition's, because the cursor carries what its turn has left; cleared, it is one
    /// partition among others again.
    async fn a_weighted_partition_gets_its_weight_in_each_turn(db) {
        for clinic in ["big", "mid", "small"] {
            db.insert_all(reminders("engine", clinic, 12, 0)).await.unwrap();
        }
        db.set_partition_weight("reminders", "big", Some(3)).await.unwrap();
        let engine = db.engine().clone();
        let plain = |after, resume| PartitionRequest { limit: None, rate: None, after, resume, sequence: None };

        let first = engine.fetch_partitioned(&request(5), plain(None, None)).await.unwrap();
        assert_eq!(by_clinic(&db, &first).await, counts(&[("big", 3), ("mid", 1), ("small", 1)]));
        assert_eq!((first.last_partition.as_deref(), first.last_turn_left), (Some("small"), 0));

        // One job a fetch, from the cursor each fetch leaves.
        let mut cursor: (Option<String>, u32) = (first.last_partition, first.last_turn_left);
        let mut order = Vec::new();
        for _ in 0..10 {
            let (after, resume) = (cursor.0.clone(), Some(cursor.1).filter(|n| *n > 0));
            let parts = PartitionRequest { limit: None, rate: None, after: after.as_deref(), resume, sequence: None };
            let f = engine.fetch_partitioned(&request(1), parts).await.unwrap();
            assert_eq!(f.jobs.len(), 1);
            order.push(db.job(f.jobs[0].id).await.partition_key.unwrap());
            cursor = (f.last_partition, f.last_turn_left);
        }
        assert_eq!(order, ["big", "big", "big", "mid", "small", "big", "big", "big", "mid", "small"]);

        db.set_partition_weight("reminders", "big", None).await.unwrap();
        assert!(db.engine().partition_weights(Some("reminders")).await.unwrap().is_empty());
        let even = engine.fetch_partitioned(&request(3), plain(None, None)).await.unwrap();
        assert_eq!(by_clinic(&db, &even).await, counts(&[("big", 1), ("mid", 1), ("small", 1)]));
    }
}

conformance! {
    /// Weights are stored per queue and partition and read back in order; a weight outside 1 to
    /// 100 or a key no job could have is refused, storing nothing; setting one again replaces it.
    async fn partition_weights_are_stored_checked_and_replaced(db) {
        db.set_partition_weight("reminders", "b", Some(2)).await.unwrap();
        db.set_partition_weight("reminders", "a", Some(5)).await.unwrap();
        db.set_partition_weight("mailers", "a", Some(7)).await.unwrap();
        db.set_partition_weight("reminders", "a", Some(4)).await.unwrap();
        for (partition, weight) in [("a", 0), ("a", 101), ("", 2)] {
            let refused = db.set_partition_weight("reminders", partition, Some(weight)).await;
            assert!(refused.is_err(), "{partition:?} {weight}");
        }
        let weight = |queue: &str, partition: &str, weight| PartitionWeight { queue: queue.into(), partition: partition.into(), weight };
        assert_eq!(
            db.engine().partition_weights(Some("reminders")).await.unwrap(),
            [weight("reminders", "a", 4), weight("reminders", "b", 2)]
        );
        assert_eq!(db.engine().partition_weights(None).await.unwrap().len(), 3);
        db.set_partition_weight("reminders", "zzz", None).await.unwrap(); // clearing nothing is fine
    }
}

conformance! {
    /// A running node with two slots, a partition limit that never binds and 10 ms jobs: of the
    /// first 20 jobs to start, the clinic of weight 3 had about three for each of the other's.
    async fn a_node_under_contention_gives_a_weighted_partition_its_share(db) {
        db.insert_all(reminders("node", "big", 30, 10)).await.unwrap();
        db.insert_all(reminders("node", "small", 30, 10)).await.unwrap();
        db.set_partition_weight("reminders", "big", Some(3)).await.unwrap();
        let runtime = db.runtime().queue("reminders", 2).partition_limit("reminders", 50).start().await.unwrap();
        db.wait_state_count(JobState::Completed, 60).await;
        runtime.shutdown().await.unwrap();
        let started = STARTED.lock().unwrap().get("node").cloned().unwrap();
        let big = started.iter().take(20).filter(|c| *c == "big").count();
        assert!((13..=17).contains(&big), "{big} of the first 20 were the big clinic's: {started:?}");
    }
}

conformance! {
    /// A weighted partition's heads of one turn still go in run order: a fetch with room for
    /// one takes the partition's first by priority, not its oldest, and the cursor keeps the
    /// two heads of the turn it did not take.
    async fn a_weighted_turn_keeps_priorities(db) {
        let ids: Vec<i64> = db.insert_all(reminders("priority", "big", 3, 0)).await.unwrap().into_iter().map(|j| j.job.id).collect();
        db.exec(&format!("UPDATE {{jobs}} SET priority = 5 WHERE id IN ({}, {})", ids[0], ids[1])).await;
        db.exec(&format!("UPDATE {{jobs}} SET priority = 0 WHERE id = {}", ids[2])).await;
        db.set_partition_weight("reminders", "big", Some(3)).await.unwrap();
        let parts = PartitionRequest { limit: None, rate: None, after: None, resume: None, sequence: None };
        let first = db.engine().fetch_partitioned(&request(1), parts).await.unwrap();
        assert_eq!(first.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [ids[2]], "the urgent one");
        assert_eq!((first.last_partition.as_deref(), first.last_turn_left), (Some("big"), 2));
    }
}
