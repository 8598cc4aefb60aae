//! PostgreSQL only: migrations in schemas, coexistence with sqlx migrations, the table's own
//! rules, and surviving terminated connections.

use std::collections::HashMap;

use jobsmith::JobState;
use jobsmith::prelude::*;
use sqlx::AssertSqlSafe;

use super::harness::{Kind, LONG, TestDb, wait_for};
use super::probe::Probe;
use super::runtime::{record, start};

#[tokio::test]
async fn migrations_apply_once_and_twice_is_a_no_op() {
    let db = TestDb::empty(Kind::Postgres).await;
    jobsmith::migrate(db.pg()).await.unwrap();
    jobsmith::migrate(db.pg()).await.unwrap();
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM jobsmith.jobsmith_migrations ORDER BY version")
            .fetch_all(db.pg())
            .await
            .unwrap();
    let known: Vec<i32> = jobsmith::engine::postgres::MIGRATIONS.iter().map(|m| m.0).collect();
    assert_eq!(versions, known);
}

#[tokio::test]
async fn concurrent_migrations_from_several_nodes_do_not_collide() {
    let db = TestDb::empty(Kind::Postgres).await;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let pool = db.pg().clone();
            tokio::spawn(async move { jobsmith::migrate(&pool).await })
        })
        .collect();
    for r in runs {
        r.await.unwrap().unwrap();
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobsmith_migrations")
        .fetch_one(db.pg())
        .await
        .unwrap();
    assert_eq!(n as usize, jobsmith::engine::postgres::MIGRATIONS.len());
}

#[tokio::test]
async fn a_schema_from_a_newer_jobsmith_is_refused() {
    let db = TestDb::new(Kind::Postgres).await;
    sqlx::query("INSERT INTO jobsmith.jobsmith_migrations (version, name) VALUES (9999, 'future')")
        .execute(db.pg())
        .await
        .unwrap();
    let err = jobsmith::migrate(db.pg()).await.unwrap_err().to_string();
    assert!(err.contains("newer than this jobsmith"), "{err}");
}

#[tokio::test]
async fn coexists_with_the_apps_own_sqlx_migrations() {
    let db = TestDb::empty(Kind::Postgres).await;
    let app =
        sqlx::migrate::Migrator::new(std::path::Path::new("tests/fixtures/app_migrations")).await.unwrap();
    app.run(db.pg()).await.unwrap();
    jobsmith::migrate(db.pg()).await.unwrap();
    // The app's migrator still sees exactly its own history and has nothing to do.
    app.run(db.pg()).await.unwrap();
    let app_versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations").fetch_all(db.pg()).await.unwrap();
    assert_eq!(app_versions, vec![20240101000000]);
    // And jobsmith keeps its own.
    jobsmith::migrate(db.pg()).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobsmith_migrations")
        .fetch_one(db.pg())
        .await
        .unwrap();
    assert!(n >= 1);
}

#[tokio::test]
async fn two_schemas_are_isolated_instances() {
    use jobsmith::prelude::*;
    let db = TestDb::empty(Kind::Postgres).await;
    jobsmith::migrate_schema(db.pg(), "tenant_a").await.unwrap();
    jobsmith::migrate_schema(db.pg(), "tenant_b").await.unwrap();
    let a = super::jobs::WithDefaults { to: "a@x".into() }
        .build_insert()
        .schema("tenant_a")
        .insert(db.pg())
        .await
        .unwrap();
    let count = |s: &'static str| {
        let pool = db.pg().clone();
        async move {
            sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!("SELECT count(*) FROM {s}.jobs")))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("tenant_a").await, 1);
    assert_eq!(count("tenant_b").await, 0);
    assert_eq!(a.job.id, 1);
    // A runtime on tenant_b does not see tenant_a's job.
    let engine_b = jobsmith::engine::postgres::PostgresEngine::new(db.pg().clone(), "tenant_b").unwrap();
    use jobsmith::engine::prelude::*;
    assert!(engine_b.fetch(&fetch_mailers()).await.unwrap().is_empty());
    let engine_a = jobsmith::engine::postgres::PostgresEngine::new(db.pg().clone(), "tenant_a").unwrap();
    assert_eq!(engine_a.fetch(&fetch_mailers()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_schema_names_are_refused_before_any_sql() {
    let db = TestDb::empty(Kind::Postgres).await;
    let err = jobsmith::migrate_schema(db.pg(), "x; DROP TABLE y").await.unwrap_err().to_string();
    assert!(err.contains("lower-case letters"), "{err}");
}

#[tokio::test]
async fn the_table_enforces_its_rules() {
    let db = TestDb::new(Kind::Postgres).await;
    for (what, sql) in [
        ("priority", "INSERT INTO jobsmith.jobs (worker, priority) VALUES ('w', 10)"),
        ("empty queue", "INSERT INTO jobsmith.jobs (worker, queue) VALUES ('w', '')"),
        ("empty worker", "INSERT INTO jobsmith.jobs (worker) VALUES ('')"),
        ("attempts", "INSERT INTO jobsmith.jobs (worker, attempt, max_attempts) VALUES ('w', 3, 2)"),
        ("zero attempts", "INSERT INTO jobsmith.jobs (worker, max_attempts) VALUES ('w', 0)"),
    ] {
        let r = sqlx::query(sql).execute(db.pg()).await;
        assert!(r.is_err(), "{what} should violate a check constraint");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_connections_lose_no_job() {
    let db = TestDb::new(Kind::Postgres).await;
    let p = Probe::new();
    let jobs = (0..600).map(|i| record(&p, format!("j{i}"), 5).build().unwrap()).collect();
    db.insert_all(jobs).await.unwrap();
    let rt = start(&db, &[("default", 10)]).await;
    wait_for("some progress", LONG, || async { (p.start_count() >= 50).then_some(()) }).await;
    // Kill every backend of the test database but the one asking, twice, mid-run.
    let admin = super::harness::pg_admin().await;
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
        wait_for("progress after the kill", LONG, || async { (p.start_count() > seen + 20).then_some(()) })
            .await;
    }
    db.wait_state_count(JobState::Completed, 600).await;
    rt.shutdown().await.unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for label in p.labels() {
        *seen.entry(label).or_default() += 1;
    }
    assert_eq!(seen.len(), 600, "every job ran");
}

fn fetch_mailers() -> jobsmith::engine::FetchRequest<'static> {
    jobsmith::engine::FetchRequest {
        queue: "mailers",
        limit: 10,
        weight_cap: u32::MAX,
        node: "n",
        global_limit: None,
        after: None,
        relaxed_commit: false,
    }
}

/// The pid of the node's LISTEN connection, once there is one.
async fn listener_pid(db: &TestDb) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_optional(db.pg())
    .await
    .unwrap()
}

/// The listener comes back after its connection is killed: with a 30 s poll interval, only a
/// notification on a new LISTEN connection can start a job inserted afterwards within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_reconnects_after_its_backend_is_terminated() {
    let db = TestDb::new(Kind::Postgres).await;
    let p = Probe::new();
    let rt = db
        .runtime()
        .queue("default", 2)
        .poll_interval(std::time::Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    let first = wait_for("the listener", LONG, || listener_pid(&db)).await;
    let admin = super::harness::pg_admin().await;
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&db.name)
        .execute(&admin)
        .await
        .unwrap();
    let second =
        wait_for("a new listener", LONG, || async { listener_pid(&db).await.filter(|pid| *pid != first) })
            .await;
    assert_ne!(first, second);
    let inserted = std::time::Instant::now();
    db.insert(record(&p, "after-reconnect", 0)).await.unwrap();
    wait_for("the job to start", std::time::Duration::from_secs(25), || async {
        (p.start_count() == 1).then_some(())
    })
    .await;
    let waited = p.starts.lock().unwrap()[0].2 - inserted;
    rt.shutdown().await.unwrap();
    assert!(
        waited < std::time::Duration::from_secs(10),
        "started {waited:?} after insert; the poll interval is 30 s"
    );
}

/// `pause_queue` returns only once the fetch in flight is done, so nothing inserted after it
/// returns starts. Made deterministic by holding a lock on the jobs table: the next fetch waits
/// on it, and `pause_queue` must wait for that fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_waits_out_the_fetch_in_flight() {
    let db = TestDb::new(Kind::Postgres).await;
    let p = Probe::new();
    let rt = start(&db, &[("default", 1)]).await;
    let mut blocker = db.pg().begin().await.unwrap();
    sqlx::query("LOCK TABLE jobsmith.jobs IN EXCLUSIVE MODE").execute(&mut *blocker).await.unwrap();
    wait_for("a fetch to wait on the lock", LONG, || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%picked_id%'",
        )
        .fetch_one(db.pg())
        .await
        .unwrap();
        (waiting > 0).then_some(())
    })
    .await;

    {
        let pause = rt.pause_queue("default");
        tokio::pin!(pause);
        // A negative check can only wait: the pause must still be pending while the fetch is.
        let early = tokio::time::timeout(std::time::Duration::from_millis(500), &mut pause).await;
        assert!(early.is_err(), "pause_queue returned while a fetch was still in flight");
        blocker.rollback().await.unwrap();
        tokio::time::timeout(LONG, &mut pause)
            .await
            .expect("pause_queue returns once the fetch is done")
            .unwrap();
    }

    db.insert(record(&p, "after-pause", 0)).await.unwrap();
    // Paused: two poll intervals (500 ms) pass without a start.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(p.start_count(), 0, "a job inserted after pause_queue returned started");
    rt.resume_queue("default").unwrap();
    wait_for("the job to start after resume", LONG, || async { (p.start_count() == 1).then_some(()) }).await;
    rt.shutdown().await.unwrap();
}

/// JSON nested deeper than serde_json decodes (128 levels): valid, stored by PostgreSQL, never
/// readable. 200 levels of arrays.
pub(crate) fn too_deep_json() -> String {
    format!("{}{}", "[".repeat(200), "]".repeat(200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_row_is_one_bad_job_and_its_fetch_neighbours_run() {
    let db = TestDb::new(Kind::Postgres).await;
    let p = Probe::new();
    let jobs = (0..20).map(|i| record(&p, format!("j{i}"), 0).build().unwrap()).collect();
    db.insert_all(jobs).await.unwrap();
    let bad: i64 = sqlx::query_scalar(
        "INSERT INTO jobsmith.jobs (worker, queue, args) VALUES ($1, 'default', $2::jsonb) RETURNING id",
    )
    .bind(<super::jobs::Record as jobsmith::Job>::NAME)
    .bind(too_deep_json())
    .fetch_one(db.pg())
    .await
    .unwrap();
    // One fetch takes all 21 rows: the bad one must not fail it.
    let rt = start(&db, &[("default", 30)]).await;
    db.wait_state_count(JobState::Completed, 20).await;
    let row = db.wait_job(bad, JobState::Discarded).await;
    rt.shutdown().await.unwrap();
    assert_eq!(p.start_count(), 20, "every readable job ran once, the unreadable one never");
    assert_eq!(db.count_state(JobState::Executing).await, 0, "nothing left executing");
    let error = row.errors.last().unwrap()["error"].as_str().unwrap().to_string();
    assert!(error.contains("could not be read") && error.contains("column `args`"), "{error}");
    assert!(error.contains("nested deeper than the 128 levels"), "{error}");
    // Listings and look-ups show the row instead of failing: the stored JSON as text.
    assert!(row.unreadable.as_deref().unwrap_or_default().contains("column `args`"));
    assert_eq!(row.args, serde_json::Value::String(too_deep_json()));
    let listed =
        db.engine().list_jobs(&jobsmith::JobFilter::default(), jobsmith::Page::default()).await.unwrap();
    assert_eq!(listed.len(), 21);
    assert!(listed.iter().any(|j| j.id == bad && j.unreadable.is_some()));
}

/// The leader vacuums the jobs table itself once it holds enough dead row versions (autovacuum
/// wakes once a minute, too late under thousands of jobs a second). Autovacuum would record
/// `last_autovacuum`; `last_vacuum` is set only by a VACUUM command.
#[tokio::test]
async fn the_leader_vacuums_the_jobs_table_once_it_holds_many_dead_rows() {
    let db = TestDb::new(Kind::Postgres).await;
    let p = Probe::new();
    let jobs = (0..300).map(|i| record(&p, format!("v{i}"), 0).build().unwrap()).collect();
    db.insert_all(jobs).await.unwrap();
    db.exec("DELETE FROM {jobs}").await;
    let rt = db.runtime().vacuum(Some((200, std::time::Duration::from_millis(100)))).start().await.unwrap();
    wait_for("the leader's vacuum of the jobs table", LONG, || async {
        let vacuumed = db
            .scalar(
                "SELECT count(*) FROM pg_stat_all_tables
                 WHERE relid = 'jobsmith.jobs'::regclass AND last_vacuum IS NOT NULL",
            )
            .await;
        (vacuumed == 1).then_some(())
    })
    .await;
    rt.shutdown().await.unwrap();
}
