//! Test fixtures: a fresh database per test on either engine, and waiting on conditions.
//!
//! PostgreSQL tests need a real server. Without one they fail with a message saying how to get
//! one; they never pass by doing nothing.

use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use jobsmith::{Db, JobRow, JobState, Pool};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};

/// Generous default deadline: two shared cores can be slow.
pub const LONG: Duration = Duration::from_secs(60);

/// The two engines every conformance test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Sqlite,
}

/// The server the PostgreSQL tests use: `DATABASE_URL`, else the local default.
pub fn base_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("jobsmith_t_{}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed), nanos % 100_000)
}

/// A database of its own for one test.
pub struct TestDb {
    pub db: Db,
    pub kind: Kind,
    /// The PostgreSQL database name, or the SQLite file.
    pub name: String,
}

impl Deref for TestDb {
    type Target = Db;
    fn deref(&self) -> &Db {
        &self.db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.kind == Kind::Sqlite {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
            }
        }
    }
}

impl TestDb {
    /// A fresh, migrated database.
    pub async fn new(kind: Kind) -> TestDb {
        let db = Self::empty(kind).await;
        db.migrate().await.expect("migrate");
        db
    }

    /// A fresh database with nothing in it.
    pub async fn empty(kind: Kind) -> TestDb {
        match kind {
            Kind::Postgres => {
                let pool = new_pg_database().await;
                let name = pool.connect_options().get_database().unwrap_or_default().to_string();
                TestDb { db: Db::postgres(pool, "jobsmith").unwrap(), kind, name }
            }
            #[cfg(not(feature = "sqlite"))]
            Kind::Sqlite => panic!("a SQLite test in a build without the `sqlite` feature"),
            #[cfg(feature = "sqlite")]
            Kind::Sqlite => {
                let name = std::env::temp_dir().join(format!("{}.db", unique_name())).display().to_string();
                let pool = jobsmith::engine::sqlite::connect(&format!("sqlite://{name}"))
                    .await
                    .expect("open sqlite");
                TestDb { db: Db::sqlite(pool, "jobsmith").await.unwrap(), kind, name }
            }
        }
    }

    /// The PostgreSQL pool (panics on SQLite: for PostgreSQL-only tests).
    pub fn pg(&self) -> &PgPool {
        match self.db.pool() {
            Pool::Postgres(p) => p,
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => panic!("a PostgreSQL-only test ran on SQLite"),
        }
    }

    /// Runs one SQL statement; `{jobs}` is replaced by the jobs table of the engine, `{now}` by
    /// the engine's current time as its time columns store it.
    pub async fn exec(&self, sql: &str) {
        match self.db.pool() {
            Pool::Postgres(p) => {
                let sql = sql
                    .replace("{jobs}", "jobsmith.jobs")
                    .replace("{rate_logs}", "jobsmith.rate_logs")
                    .replace("{now}", "now()");
                sqlx::query(AssertSqlSafe(sql)).execute(p).await.unwrap();
            }
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => {
                let now = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
                let sql = sql
                    .replace("{jobs}", "jobsmith_jobs")
                    .replace("{rate_logs}", "jobsmith_rate_logs")
                    .replace("{now}", now);
                sqlx::query(AssertSqlSafe(sql)).execute(p).await.unwrap();
            }
        }
    }

    /// Runs one SQL statement on SQLite with its CHECK constraints ignored (on one connection),
    /// to write a row the schema would refuse, as a tool that bypassed it might have.
    pub async fn exec_unchecked(&self, sql: &str) {
        #[cfg(feature = "sqlite")]
        if let Pool::Sqlite(p) = self.db.pool() {
            let mut conn = p.acquire().await.unwrap();
            sqlx::query("PRAGMA ignore_check_constraints = ON").execute(&mut *conn).await.unwrap();
            let done =
                sqlx::query(AssertSqlSafe(sql.replace("{jobs}", "jobsmith_jobs"))).execute(&mut *conn).await;
            sqlx::query("PRAGMA ignore_check_constraints = OFF").execute(&mut *conn).await.unwrap();
            return done.map(drop).unwrap();
        }
        panic!("exec_unchecked is for SQLite: {sql}")
    }

    /// Runs one SQL statement that may be refused, and returns the database's message if it is;
    /// `{jobs}` as in [`TestDb::exec`].
    pub async fn try_exec(&self, sql: &str) -> Result<(), String> {
        let done = match self.db.pool() {
            Pool::Postgres(p) => {
                sqlx::query(AssertSqlSafe(sql.replace("{jobs}", "jobsmith.jobs"))).execute(p).await.map(drop)
            }
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => {
                sqlx::query(AssertSqlSafe(sql.replace("{jobs}", "jobsmith_jobs"))).execute(p).await.map(drop)
            }
        };
        done.map_err(|e| e.to_string())
    }

    /// A single integer from SQL; `{jobs}` as in [`TestDb::exec`].
    pub async fn scalar(&self, sql: &str) -> i64 {
        match self.db.pool() {
            Pool::Postgres(p) => sqlx::query_scalar::<_, i64>(AssertSqlSafe(
                sql.replace("{jobs}", "jobsmith.jobs").replace("{rate_logs}", "jobsmith.rate_logs"),
            ))
            .fetch_one(p)
            .await
            .unwrap(),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => sqlx::query_scalar::<_, i64>(AssertSqlSafe(
                sql.replace("{jobs}", "jobsmith_jobs").replace("{rate_logs}", "jobsmith_rate_logs"),
            ))
            .fetch_one(p)
            .await
            .unwrap(),
        }
    }

    /// Rows in `state`, over all queues.
    pub async fn count_state(&self, state: JobState) -> i64 {
        self.engine()
            .count_by_state()
            .await
            .unwrap()
            .iter()
            .filter(|c| c.state == state)
            .map(|c| c.count)
            .sum()
    }

    /// All rows.
    pub async fn count_all(&self) -> i64 {
        self.engine().count_by_state().await.unwrap().iter().map(|c| c.count).sum()
    }

    /// One job, which must exist.
    pub async fn job(&self, id: i64) -> JobRow {
        self.engine().get_job(id).await.unwrap().expect("job exists")
    }

    /// Waits until `n` jobs are in `state`.
    pub async fn wait_state_count(&self, state: JobState, n: i64) {
        wait_for(&format!("{n} jobs {state}"), LONG, || async {
            (self.count_state(state).await == n).then_some(())
        })
        .await
    }

    /// Waits until job `id` is in `state` and returns the row.
    pub async fn wait_job(&self, id: i64, state: JobState) -> JobRow {
        wait_for(&format!("job {id} to be {state}"), LONG, || async {
            self.engine().get_job(id).await.unwrap().filter(|j| j.state == state)
        })
        .await
    }
}

/// A fresh PostgreSQL database on the test server.
pub async fn new_pg_database() -> PgPool {
    let url = base_url();
    let opts: PgConnectOptions = url.parse().expect("DATABASE_URL is not a valid PostgreSQL URL");
    let mut admin = opts.connect().await.unwrap_or_else(|e| {
        panic!("these tests need PostgreSQL at {url} ({e}); run `bash scripts/test.sh`, which starts one, or set DATABASE_URL")
    });
    let name = unique_name();
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create db");
    admin.close().await.ok();
    PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(opts.database(&name))
        .await
        .expect("connect to test db")
}

/// A pool on the server's base database, for actions on other databases.
pub async fn pg_admin() -> PgPool {
    PgPoolOptions::new().max_connections(2).connect(&base_url()).await.expect("admin pool")
}

/// A fetch for `limit` slots of `queue` by node `n1`, with no other limit or cursor: what the
/// engine-level tests of a fetch ask for.
pub fn fetch_request(queue: &'static str, limit: u32) -> jobsmith::engine::FetchRequest<'static> {
    jobsmith::engine::FetchRequest {
        queue,
        limit,
        weight_cap: u32::MAX,
        node: "n1",
        global_limit: None,
        after: None,
        relaxed_commit: false,
    }
}

/// Waits until `check` returns `Some`, polling every 20 ms, for at most `limit`; panics with
/// `what` when the deadline passes.
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

/// Declares a test that runs once per engine: `mod name { fn postgres; fn sqlite }`.
macro_rules! conformance {
    ($(#[doc = $doc:literal])* async fn $name:ident($db:ident) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($db: $crate::harness::TestDb) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run($crate::harness::TestDb::new($crate::harness::Kind::Postgres).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::harness::TestDb::new($crate::harness::Kind::Sqlite).await).await
            }
        }
    };
}
