//! Partitioned queues (ADR 24): a job's partition comes from the arg its type names or from the
//! insert; a queue with a partition limit runs at most that many jobs of one partition at once
//! across all nodes, takes its partitions in turn (priorities hold within one), and runs jobs of
//! no partition beside them. Each test runs on both engines.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use jobsmith::engine::{FetchRequest, FetchedJob, PartitionRequest};
use jobsmith::prelude::*;
use jobsmith::{JobState, MAX_PARTITION_KEY_BYTES};

use super::harness::{LONG, TestDb, fetch_request, wait_for};

/// Per test and partition: jobs running now and the most at once.
type Running = HashMap<(String, String), (usize, usize)>;

static RUNNING: LazyLock<Mutex<Running>> = LazyLock::new(Default::default);

fn peaks(test: &str) -> HashMap<String, usize> {
    RUNNING
        .lock()
        .unwrap()
        .iter()
        .filter(|((t, _), _)| t == test)
        .map(|((_, p), (_, peak))| (p.clone(), *peak))
        .collect()
}

/// A visit of one clinic: counts itself running in its clinic's partition while it sleeps.
#[jobsmith::job(queue = "visits", partition = "clinic")]
async fn visit(test: String, clinic: String, sleep_ms: u64) -> Result<(), String> {
    {
        let mut running = RUNNING.lock().unwrap();
        let (now, peak) = running.entry((test.clone(), clinic.clone())).or_default();
        *now += 1;
        *peak = (*peak).max(*now);
    }
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    RUNNING.lock().unwrap().get_mut(&(test, clinic)).unwrap().0 -= 1;
    Ok(())
}

/// A reminder of a numbered clinic, on the same queue: a number is a partition too.
#[jobsmith::job(queue = "visits", partition = "clinic_id")]
async fn numbered(clinic_id: i64, priority_note: String) -> Result<(), String> {
    let _ = (clinic_id, priority_note);
    Ok(())
}

fn request(limit: u32) -> FetchRequest<'static> {
    fetch_request("visits", limit)
}

/// The partitions of `jobs` as stored, sorted.
async fn partitions_of(db: &TestDb, jobs: &[FetchedJob]) -> Vec<String> {
    let mut keys = Vec::new();
    for j in jobs {
        keys.push(db.job(j.id).await.partition_key.expect("a job of a partition"));
    }
    keys.sort();
    keys
}

fn visit_job(test: &str, clinic: &str, sleep_ms: u64) -> jobsmith::NewJob {
    Visit { test: test.into(), clinic: clinic.into(), sleep_ms }.build().unwrap()
}

conformance! {
    /// The partition comes from the arg the type names (a string as it is, a number as
    /// written), an insert may set another, and a key that is empty or too long is refused
    /// with nothing inserted.
    async fn a_jobs_partition_comes_from_its_arg_or_its_insert(db) {
        let a = db.insert(Visit { test: "t".into(), clinic: "north".into(), sleep_ms: 0 }).await.unwrap().job;
        assert_eq!(a.partition_key.as_deref(), Some("north"));
        assert_eq!(db.job(a.id).await.partition_key.as_deref(), Some("north"));
        let n = db.insert(Numbered { clinic_id: 42, priority_note: String::new() }).await.unwrap().job;
        assert_eq!(db.job(n.id).await.partition_key.as_deref(), Some("42"));
        let set = db.insert(Numbered { clinic_id: 42, priority_note: String::new() }.partition("south")).await.unwrap();
        assert_eq!(db.job(set.job.id).await.partition_key.as_deref(), Some("south"));
        let plain = db.insert(crate::runtime::record(&crate::probe::Probe::new(), "x", 0)).await.unwrap().job;
        assert_eq!(db.job(plain.id).await.partition_key, None, "a type that names no arg has no partition");

        let before = db.count_all().await;
        let empty = db.insert(Numbered { clinic_id: 1, priority_note: String::new() }.partition("")).await.unwrap_err();
        assert!(empty.to_string().contains("partition key must be 1 to"), "{empty}");
        let long = "k".repeat(MAX_PARTITION_KEY_BYTES + 1);
        let too_long = db.insert(Numbered { clinic_id: 1, priority_note: String::new() }.partition(long)).await.unwrap_err();
        assert!(too_long.to_string().contains("got 201 bytes"), "{too_long}");
        assert_eq!(db.count_all().await, before);

        // Bulk inserts keep each row's partition.
        let jobs = (0..3).map(|i| visit_job("t", &format!("c{i}"), 0)).collect();
        let rows = db.insert_all(jobs).await.unwrap();
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(db.job(row.job.id).await.partition_key, Some(format!("c{i}")));
        }
    }
}

conformance! {
    /// Partitions take turns: one fetch takes the head (by priority) of each partition before a
    /// second job of any, and the next fetch goes on after the partition the last one ended at.
    async fn partitions_take_turns_and_priorities_hold_within_one(db) {
        for clinic in ["a", "b", "c"] {
            let jobs = (0..3).map(|_| visit_job("turns", clinic, 0)).collect();
            db.insert_all(jobs).await.unwrap();
        }
        // Inserted last, but first of its partition.
        let urgent = db.insert(Visit { test: "turns".into(), clinic: "b".into(), sleep_ms: 0 }.priority(0)).await.unwrap();
        db.exec("UPDATE {jobs} SET priority = 5 WHERE partition_key IS NOT NULL").await;
        db.exec(&format!("UPDATE {{jobs}} SET priority = 0 WHERE id = {}", urgent.job.id)).await;
        let engine = db.engine().clone();
        let parts = PartitionRequest { limit: Some(10), rate: None, after: None, resume: None, sequence: None };
        let first = engine.fetch_partitioned(&request(3), parts).await.unwrap();
        assert_eq!(partitions_of(&db, &first.jobs).await, ["a", "b", "c"], "one of each");
        assert!(first.jobs.iter().any(|j| j.id == urgent.job.id), "b's head by priority, not by insertion");
        assert_eq!(first.last_partition.as_deref(), Some("c"));

        // Two more, starting after c: a and b.
        let second = engine.fetch_partitioned(&request(2), PartitionRequest { limit: Some(10), rate: None, after: Some("c"), resume: None, sequence: None }).await.unwrap();
        assert_eq!(partitions_of(&db, &second.jobs).await, ["a", "b"]);
        assert_eq!(second.last_partition.as_deref(), Some("b"));
    }
}

conformance! {
    /// A fetch takes no job of a partition that has as many executing as the limit, on any
    /// node, and takes jobs of no partition beside the partitions.
    async fn a_full_partition_gives_nothing_and_jobs_of_no_partition_run_beside(db) {
        let jobs = (0..4).map(|_| visit_job("full", "a", 0)).chain((0..4).map(|_| visit_job("full", "b", 0))).collect();
        db.insert_all(jobs).await.unwrap();
        let p = crate::probe::Probe::new();
        let plain = db.insert(crate::runtime::record(&p, "plain", 0).on_queue("visits")).await.unwrap().job.id;
        let engine = db.engine().clone();
        let parts = PartitionRequest { limit: Some(2), rate: None, after: None, resume: None, sequence: None };
        let first = engine.fetch_partitioned(&request(10), parts).await.unwrap();
        // Two of a, two of b, and the job of no partition.
        assert_eq!(first.jobs.len(), 5);
        assert!(first.jobs.iter().any(|j| j.id == plain));
        let other_node = FetchRequest { node: "n2", ..request(10) };
        let second = engine.fetch_partitioned(&other_node, parts).await.unwrap();
        assert!(second.jobs.is_empty(), "both partitions are full: {:?}", second.jobs.len());
        db.exec(&format!(
            "UPDATE {{jobs}} SET state = 'completed', completed_at = {{now}} WHERE id = {}",
            first.jobs.iter().find(|j| j.id != plain).unwrap().id
        ))
        .await;
        let third = engine.fetch_partitioned(&other_node, parts).await.unwrap();
        assert_eq!(third.jobs.len(), 1, "the partition with a finished job has room for one");
        let global = FetchRequest { global_limit: Some(5), ..other_node };
        db.exec("UPDATE {jobs} SET state = 'available' WHERE state = 'executing' AND partition_key = 'b'").await;
        let capped = engine.fetch_partitioned(&global, PartitionRequest { limit: Some(4), rate: None, after: None, resume: None, sequence: None }).await.unwrap();
        assert_eq!(capped.jobs.len(), 2, "the global limit of 5 caps the fetch: 3 are executing");
    }
}

conformance! {
    /// A backlog of 100,000 jobs of one partition does not hold back another partition's first
    /// job: the first fetch takes it.
    async fn a_large_backlog_does_not_hold_back_another_partitions_first_job(db) {
        for _ in 0..10 {
            let jobs = (0..10_000).map(|_| visit_job("backlog", "big", 0)).collect();
            db.insert_all(jobs).await.unwrap();
        }
        let small = db.insert(Visit { test: "backlog".into(), clinic: "small".into(), sleep_ms: 0 }).await.unwrap().job.id;
        let engine = db.engine().clone();
        let first = engine.fetch_partitioned(&request(10), PartitionRequest { limit: Some(100), rate: None, after: None, resume: None, sequence: None }).await.unwrap();
        assert_eq!(first.jobs.len(), 10);
        assert!(first.jobs.iter().any(|j| j.id == small), "the small partition's job is in the first fetch");
    }
}

conformance! {
    /// Two nodes together run at most the partition limit of any partition at once, and run
    /// the partitions side by side (the queue's slots are not all spent on one).
    async fn two_nodes_keep_each_partition_to_its_limit(db) {
        let test = format!("nodes-{}", db.engine().name());
        let jobs = ["a", "b", "c"].iter().flat_map(|c| (0..8).map(|_| visit_job(&test, c, 150))).collect();
        db.insert_all(jobs).await.unwrap();
        let start = |name: &'static str| db.runtime().node_name(name).queue("visits", 6).partition_limit("visits", 2).start();
        let a = start("a").await.unwrap();
        let b = start("b").await.unwrap();
        wait_for("every visit to complete", LONG, || async {
            (db.count_state(JobState::Completed).await == 24).then_some(())
        })
        .await;
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
        let peaks = peaks(&test);
        assert_eq!(peaks.len(), 3, "{peaks:?}");
        assert!(peaks.values().all(|p| *p <= 2), "no partition ran more than 2 at once: {peaks:?}");
        assert!(peaks.values().all(|p| *p == 2), "each partition reached its limit: {peaks:?}");
    }
}

conformance! {
    /// The partition limit is a persisted setting: set at start, changed and cleared at run
    /// time, refused at 0.
    async fn a_partition_limit_is_a_persisted_setting(db) {
        let runtime = db.runtime().queue("visits", 4).partition_limit("visits", 3).start().await.unwrap();
        let limit_of = |rt: &jobsmith::Runtime| rt.queues().into_iter().find(|q| q.name == "visits").unwrap().partition_limit;
        assert_eq!(limit_of(&runtime), Some(3));
        let stored = || async {
            db.engine().queue_settings().await.unwrap().into_iter().find(|s| s.name == "visits").unwrap().partition_limit
        };
        assert_eq!(stored().await, Some(3));
        runtime.set_partition_limit("visits", Some(1)).await.unwrap();
        wait_for("the new limit", LONG, || async { (limit_of(&runtime) == Some(1)).then_some(()) }).await;
        assert_eq!(stored().await, Some(1));
        let refused = runtime.set_partition_limit("visits", Some(0)).await.unwrap_err();
        assert!(refused.to_string().contains("at least 1"), "{refused}");
        runtime.set_partition_limit("visits", None).await.unwrap();
        wait_for("the cleared limit", LONG, || async { limit_of(&runtime).is_none().then_some(()) }).await;
        assert_eq!(stored().await, None);
        runtime.shutdown().await.unwrap();
    }
}

conformance! {
    /// A partitioned fetch counts weights as slots: jobs of weight 3 fill a fetch of 6 slots
    /// with two jobs, not six.
    async fn a_partitioned_fetch_counts_weights_as_slots(db) {
        let jobs = ["a", "b"]
            .iter()
            .flat_map(|c| (0..3).map(|_| Visit { test: "weights".into(), clinic: c.to_string(), sleep_ms: 0 }.weight(3).build().unwrap()))
            .collect();
        db.insert_all(jobs).await.unwrap();
        let engine = db.engine().clone();
        let got = engine.fetch_partitioned(&request(6), PartitionRequest { limit: Some(10), rate: None, after: None, resume: None, sequence: None }).await.unwrap();
        assert_eq!(got.jobs.len(), 2, "two jobs of weight 3 fill 6 slots");
        let global = FetchRequest { global_limit: Some(8), ..request(6) };
        let capped = engine.fetch_partitioned(&global, PartitionRequest { limit: Some(10), rate: None, after: None, resume: None, sequence: None }).await.unwrap();
        assert!(capped.jobs.is_empty(), "6 of the global 8 slots are executing: no job of weight 3 fits");
    }
}

conformance! {
    /// Jobs of no partition are served in every fetch, even when the partitions with work are
    /// more than the fetch has rows.
    async fn jobs_of_no_partition_are_not_cut_by_many_partitions(db) {
        let jobs = (0..6).flat_map(|c| (0..2).map(move |_| visit_job("many", &format!("p{c}"), 0))).collect();
        db.insert_all(jobs).await.unwrap();
        let p = crate::probe::Probe::new();
        let plain = db.insert(crate::runtime::record(&p, "plain", 0).on_queue("visits")).await.unwrap().job.id;
        let engine = db.engine().clone();
        let got = engine.fetch_partitioned(&request(3), PartitionRequest { limit: Some(10), rate: None, after: None, resume: None, sequence: None }).await.unwrap();
        assert_eq!(got.jobs.len(), 3);
        assert!(got.jobs.iter().any(|j| j.id == plain), "the job of no partition is among the three");
    }
}

conformance! {
    /// A fetch that starts after the cursor goes round to the first partitions again within the
    /// same fetch, one each, rather than giving the few partitions after the cursor all of it.
    async fn a_fetch_goes_round_past_the_last_partition(db) {
        let jobs = (1..=6).flat_map(|c| (0..3).map(move |_| visit_job("round", &format!("p{c}"), 0))).collect();
        db.insert_all(jobs).await.unwrap();
        let engine = db.engine().clone();
        let first = engine.fetch_partitioned(&request(4), PartitionRequest { limit: Some(10), rate: None, after: None, resume: None, sequence: None }).await.unwrap();
        assert_eq!(first.last_partition.as_deref(), Some("p4"));
        assert_eq!(partitions_of(&db, &first.jobs).await, ["p1", "p2", "p3", "p4"]);
        let second = engine.fetch_partitioned(&request(4), PartitionRequest { limit: Some(10), rate: None, after: Some("p4"), resume: None, sequence: None }).await.unwrap();
        assert_eq!(second.last_partition.as_deref(), Some("p2"), "ended in the second lap");
        assert_eq!(partitions_of(&db, &second.jobs).await, ["p1", "p2", "p5", "p6"]);
    }
}

/// PostgreSQL: a row another transaction holds (a duplicate insert's upsert, an operator's
/// edit) is skipped, not waited for: the fetch holds the queue's lock, and waiting there would
/// stall every fetcher of the queue on every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_fetch_skips_a_row_another_transaction_holds() {
    let db = TestDb::new(super::harness::Kind::Postgres).await;
    let held =
        db.insert(Visit { test: "held".into(), clinic: "a".into(), sleep_ms: 0 }).await.unwrap().job.id;
    let other =
        db.insert(Visit { test: "held".into(), clinic: "b".into(), sleep_ms: 0 }).await.unwrap().job.id;
    let mut tx = db.pg().begin().await.unwrap();
    sqlx::query("SELECT id FROM jobsmith.jobs WHERE id = $1 FOR UPDATE")
        .bind(held)
        .execute(&mut *tx)
        .await
        .unwrap();
    let engine = db.engine().clone();
    let ask = request(10);
    let fetch = engine.fetch_partitioned(
        &ask,
        PartitionRequest { limit: Some(10), rate: None, after: None, resume: None, sequence: None },
    );
    let got = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .expect("did not wait for the held row")
        .unwrap();
    assert_eq!(got.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [other]);
    tx.rollback().await.unwrap();
    let later = engine
        .fetch_partitioned(
            &request(10),
            PartitionRequest { limit: Some(10), rate: None, after: None, resume: None, sequence: None },
        )
        .await
        .unwrap();
    assert_eq!(later.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [held], "taken once let go");
}

/// PostgreSQL: a jobs table never analyzed (this machine's autovacuum is off, so a fresh test
/// database's never is) is analyzed before the first partitioned fetch: without statistics the
/// planner walks the partitions through the plain fetch index (ADR 24).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_analyzed_jobs_table_is_analyzed_before_the_first_partitioned_fetch() {
    let db = TestDb::new(super::harness::Kind::Postgres).await;
    let analyzed = "SELECT count(*) FROM pg_stat_user_tables
                    WHERE relid = 'jobsmith.jobs'::regclass AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)";
    assert_eq!(db.scalar(analyzed).await, 0, "a fresh table was never analyzed");
    db.insert(Visit { test: "stats".into(), clinic: "a".into(), sleep_ms: 0 }).await.unwrap();
    let engine = db.engine().clone();
    let got = engine
        .fetch_partitioned(
            &request(1),
            PartitionRequest { limit: Some(1), rate: None, after: None, resume: None, sequence: None },
        )
        .await
        .unwrap();
    assert_eq!(got.jobs.len(), 1);
    wait_for("the jobs table's statistics", LONG, || async {
        (db.scalar(analyzed).await == 1).then_some(())
    })
    .await;
}
