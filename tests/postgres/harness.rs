//! Test fixtures: a fresh PostgreSQL database per test, and waiting on conditions.
//!
//! Tests need a real PostgreSQL. Without one they fail with a message saying how to get one;
//! they never pass by doing nothing.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};

/// The server the tests use: `DATABASE_URL`, else the local default.
pub fn base_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A database of its own for one test, migrated in the default schema.
pub struct TestDb {
    pub pool: PgPool,
    pub name: String,
}

impl TestDb {
    /// A fresh, migrated database.
    pub async fn new() -> TestDb {
        let db = Self::empty().await;
        jobsmith::migrate(&db.pool).await.expect("migrate");
        db
    }

    /// A fresh database with nothing in it.
    pub async fn empty() -> TestDb {
        let url = base_url();
        let opts: PgConnectOptions = url.parse().expect("DATABASE_URL is not a valid PostgreSQL URL");
        let mut admin = opts.connect().await.unwrap_or_else(|e| {
            panic!(
                "these tests need PostgreSQL at {url} ({e}); run `bash scripts/test.sh`, which starts one, \
                 or set DATABASE_URL"
            )
        });
        let name = format!(
            "jobsmith_t_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            fastrand_suffix()
        );
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.expect("create db");
        admin.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.database(&name))
            .await
            .expect("connect to test db");
        TestDb { pool, name }
    }
}

fn fastrand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    nanos % 100_000
}

/// Waits until `check` returns `Some`, polling every 20 ms, for at most `limit`; panics with
/// `what` when the deadline passes. Deadlines are generous: two shared cores can be slow.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Jobs per state in the default schema.
pub async fn count_state(pool: &PgPool, state: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobs WHERE state::text = $1")
        .bind(state)
        .fetch_one(pool)
        .await
        .expect("count")
}

/// Waits until `n` jobs are in `state`.
pub async fn wait_state_count(pool: &PgPool, state: &str, n: i64, limit: Duration) {
    wait_for(&format!("{n} jobs {state}"), limit, || async {
        (count_state(pool, state).await == n).then_some(())
    })
    .await
}

/// Waits until job `id` is in `state` and returns the row.
pub async fn wait_job_state(pool: &PgPool, id: i64, state: jobsmith::JobState, limit: Duration) -> jobsmith::JobRow {
    let engine = jobsmith::engine::postgres::PostgresEngine::new(pool.clone(), "jobsmith").unwrap();
    wait_for(&format!("job {id} to be {state}"), limit, || {
        let engine = engine.clone();
        async move {
            use jobsmith::engine::Engine;
            engine.get_job(id).await.unwrap().filter(|j| j.state == state)
        }
    })
    .await
}

impl TestDb {
    /// A pool on the server's base database, for actions on other databases.
    pub async fn admin() -> PgPool {
        PgPoolOptions::new().max_connections(2).connect(&base_url()).await.expect("admin pool")
    }
}

/// Generous default deadline.
pub const LONG: Duration = Duration::from_secs(60);
