//! SQLite only: many concurrent writers without "database is locked", in-memory databases,
//! migrations, and choosing the engine from a URL.

use jobsmith::prelude::*;
use jobsmith::{Db, JobState, Pool};

use super::harness::{Kind, LONG, TestDb, wait_for};
use super::probe::Probe;
use super::runtime::record;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_workers_and_inserters_never_hit_database_is_locked() {
    let db = TestDb::new(Kind::Sqlite).await;
    let p = Probe::new();
    let jobs = (0..1500).map(|i| record(&p, format!("j{i}"), 1).build().unwrap()).collect();
    db.insert_all(jobs).await.unwrap();
    let rt = db.runtime().queue("default", 50).start().await.unwrap();
    // Meanwhile 10 tasks insert through the pool, one job at a time, some in transactions.
    let Pool::Sqlite(pool) = db.pool().clone() else { unreachable!() };
    let inserters: Vec<_> = (0..10)
        .map(|t| {
            let pool = pool.clone();
            let key = p.key.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    let job = jobsmith_record(&key, format!("t{t}-{i}"));
                    if i % 5 == 0 {
                        let mut tx = pool.begin().await?;
                        job.insert(&mut *tx).await?;
                        tx.commit().await?;
                    } else {
                        job.insert(&pool).await?;
                    }
                }
                Ok::<_, jobsmith::Error>(())
            })
        })
        .collect();
    for t in inserters {
        t.await.unwrap().expect("no insert failed");
    }
    db.wait_state_count(JobState::Completed, 2000).await;
    rt.shutdown().await.unwrap();
    assert_eq!(p.start_count(), 2000);
    let peak = p.peak.lock().unwrap()["default"];
    assert!(peak <= 50, "peak {peak}");
    assert!(peak > 1, "jobs ran concurrently");
}

fn jobsmith_record(key: &str, label: String) -> super::jobs::Record {
    super::jobs::Record { probe: key.to_string(), label, sleep_ms: 1 }
}

#[tokio::test]
async fn an_in_memory_database_runs_jobs_end_to_end() {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let p = Probe::new();
    let rt = db.runtime().queue("default", 4).start().await.unwrap();
    let id = db.insert(record(&p, "mem", 0)).await.unwrap().job.id;
    wait_for("the in-memory job", LONG, || async {
        db.engine().get_job(id).await.unwrap().filter(|j| j.state == JobState::Completed)
    })
    .await;
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn sqlite_migrations_are_idempotent_and_refuse_a_newer_schema() {
    let db = TestDb::empty(Kind::Sqlite).await;
    db.migrate().await.unwrap();
    db.migrate().await.unwrap();
    assert_eq!(
        db.scalar("SELECT count(*) FROM jobsmith_migrations").await,
        jobsmith::engine::sqlite::MIGRATIONS.len() as i64
    );
    db.exec("INSERT INTO jobsmith_migrations (version, name) VALUES (9999, 'future')").await;
    let err = db.migrate().await.unwrap_err().to_string();
    assert!(err.contains("newer than this jobsmith"), "{err}");
}

/// Migration 5 rebuilds the jobs table (to turn triggers into a CHECK): every row and column
/// survives, the indexes are back, and the ids of rows pruned before it are not given out again.
#[tokio::test]
async fn the_table_rebuild_of_migration_5_keeps_rows_indexes_and_the_id_sequence() {
    let db = TestDb::new(Kind::Sqlite).await;
    let p = Probe::new();
    let kept = db.insert(record(&p, "kept", 0)).await.unwrap().job;
    let pruned = db.insert(record(&p, "pruned", 0)).await.unwrap().job.id;
    db.exec(&format!("UPDATE {{jobs}} SET errors = '[{{\"e\":1}}]', attempt = 1 WHERE id = {}", kept.id))
        .await;
    db.exec(&format!("DELETE FROM {{jobs}} WHERE id = {pruned}")).await;
    // Migration 5 rebuilds the table as it was then: the later migrations that add jobs columns
    // (7: awaited, 10: weight, 11: partition key) are applied again after it, as on a database upgraded from 4.
    db.exec("DELETE FROM jobsmith_migrations WHERE version IN (5, 7, 10, 11)").await;
    db.migrate().await.unwrap();

    let row = db.job(kept.id).await;
    assert_eq!((row.args, row.attempt, row.errors.len()), (kept.args, 1, 1), "the row was copied whole");
    let next = db.insert(record(&p, "next", 0)).await.unwrap().job.id;
    assert!(next > pruned, "id {next} was given out again (the pruned row had {pruned})");
    let indexes = db
        .scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobsmith_jobs'
               AND name IN ('jobsmith_jobs_fetch', 'jobsmith_jobs_stage', 'jobsmith_jobs_unique', 'jobsmith_jobs_executing')",
        )
        .await;
    assert_eq!(indexes, 4);
    assert_eq!(db.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").await, 0);
}

#[tokio::test]
async fn the_engine_is_chosen_from_the_url() {
    let err = Db::connect("mysql://localhost/x").await.unwrap_err().to_string();
    assert!(err.contains("use postgres://... or sqlite:..."), "{err}");
    let path = std::env::temp_dir().join(format!("jobsmith-url-{}.db", std::process::id()));
    let db = Db::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    assert_eq!(db.engine().name(), "sqlite");
    db.migrate().await.unwrap();
    assert!(path.exists(), "the file was created");
    drop(db);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_in_memory_databases_do_not_cancel_each_others_jobs() {
    let p = Probe::new();
    let one = Db::connect("sqlite::memory:").await.unwrap();
    let two = Db::connect("sqlite::memory:").await.unwrap();
    one.migrate().await.unwrap();
    two.migrate().await.unwrap();
    let rt_one = one.runtime().queue("default", 1).start().await.unwrap();
    let rt_two = two.runtime().queue("default", 1).start().await.unwrap();
    let blocking = || crate::jobs::Blocks { probe: p.key.clone() };
    let a = one.insert(blocking()).await.unwrap().job.id;
    let b = two.insert(blocking()).await.unwrap().job.id;
    assert_eq!(a, b, "both databases number their first job 1");
    wait_for("both to run", LONG, || async { (p.start_count() == 2).then_some(()) }).await;
    rt_one.cancel_job(a).await.unwrap();
    wait_for("the first to be cancelled", LONG, || async {
        one.engine().get_job(a).await.unwrap().filter(|j| j.state == JobState::Cancelled)
    })
    .await;
    assert_eq!(p.observed_cancel.load(std::sync::atomic::Ordering::SeqCst), 1, "only one job was stopped");
    assert_eq!(two.engine().get_job(b).await.unwrap().unwrap().state, JobState::Executing);
    rt_two.cancel_job(b).await.unwrap();
    rt_one.shutdown().await.unwrap();
    rt_two.shutdown().await.unwrap();
}
