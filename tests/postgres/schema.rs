//! Migrations: idempotent, versioned, isolated per schema, and beside an app's own migrations.

use sqlx::AssertSqlSafe;

use super::harness::TestDb;

#[tokio::test]
async fn migrations_apply_once_and_twice_is_a_no_op() {
    let db = TestDb::empty().await;
    jobsmith::migrate(&db.pool).await.unwrap();
    jobsmith::migrate(&db.pool).await.unwrap();
    let versions: Vec<i32> = sqlx::query_scalar("SELECT version FROM jobsmith.jobsmith_migrations ORDER BY version")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let known: Vec<i32> = jobsmith::engine::postgres::MIGRATIONS.iter().map(|m| m.0).collect();
    assert_eq!(versions, known);
}

#[tokio::test]
async fn concurrent_migrations_from_several_nodes_do_not_collide() {
    let db = TestDb::empty().await;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let pool = db.pool.clone();
            tokio::spawn(async move { jobsmith::migrate(&pool).await })
        })
        .collect();
    for r in runs {
        r.await.unwrap().unwrap();
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobsmith_migrations").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n as usize, jobsmith::engine::postgres::MIGRATIONS.len());
}

#[tokio::test]
async fn a_schema_from_a_newer_jobsmith_is_refused() {
    let db = TestDb::new().await;
    sqlx::query("INSERT INTO jobsmith.jobsmith_migrations (version, name) VALUES (9999, 'future')")
        .execute(&db.pool)
        .await
        .unwrap();
    let err = jobsmith::migrate(&db.pool).await.unwrap_err().to_string();
    assert!(err.contains("newer than this jobsmith"), "{err}");
}

#[tokio::test]
async fn coexists_with_the_apps_own_sqlx_migrations() {
    let db = TestDb::empty().await;
    let app = sqlx::migrate::Migrator::new(std::path::Path::new("tests/fixtures/app_migrations")).await.unwrap();
    app.run(&db.pool).await.unwrap();
    jobsmith::migrate(&db.pool).await.unwrap();
    // The app's migrator still sees exactly its own history and has nothing to do.
    app.run(&db.pool).await.unwrap();
    let app_versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations").fetch_all(&db.pool).await.unwrap();
    assert_eq!(app_versions, vec![20240101000000]);
    // And jobsmith keeps its own.
    jobsmith::migrate(&db.pool).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobsmith_migrations").fetch_one(&db.pool).await.unwrap();
    assert!(n >= 1);
}

#[tokio::test]
async fn two_schemas_are_isolated_instances() {
    use jobsmith::prelude::*;
    let db = TestDb::empty().await;
    jobsmith::migrate_schema(&db.pool, "tenant_a").await.unwrap();
    jobsmith::migrate_schema(&db.pool, "tenant_b").await.unwrap();
    let a = super::jobs::WithDefaults { to: "a@x".into() }.build_insert().schema("tenant_a").insert(&db.pool).await.unwrap();
    let count = |s: &'static str| {
        let pool = db.pool.clone();
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
    let engine_b = jobsmith::engine::postgres::PostgresEngine::new(db.pool.clone(), "tenant_b").unwrap();
    use jobsmith::engine::Engine;
    assert!(engine_b.fetch("mailers", 10, "n").await.unwrap().is_empty());
    let engine_a = jobsmith::engine::postgres::PostgresEngine::new(db.pool.clone(), "tenant_a").unwrap();
    assert_eq!(engine_a.fetch("mailers", 10, "n").await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_schema_names_are_refused_before_any_sql() {
    let db = TestDb::empty().await;
    let err = jobsmith::migrate_schema(&db.pool, "x; DROP TABLE y").await.unwrap_err().to_string();
    assert!(err.contains("lower-case letters"), "{err}");
}

#[tokio::test]
async fn the_table_enforces_its_rules() {
    let db = TestDb::new().await;
    for (what, sql) in [
        ("priority", "INSERT INTO jobsmith.jobs (worker, priority) VALUES ('w', 10)"),
        ("empty queue", "INSERT INTO jobsmith.jobs (worker, queue) VALUES ('w', '')"),
        ("empty worker", "INSERT INTO jobsmith.jobs (worker) VALUES ('')"),
        ("attempts", "INSERT INTO jobsmith.jobs (worker, attempt, max_attempts) VALUES ('w', 3, 2)"),
        ("zero attempts", "INSERT INTO jobsmith.jobs (worker, max_attempts) VALUES ('w', 0)"),
    ] {
        let r = sqlx::query(sql).execute(&db.pool).await;
        assert!(r.is_err(), "{what} should violate a check constraint");
    }
}
