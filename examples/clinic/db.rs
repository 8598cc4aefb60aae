//! The one module that knows there are two database engines.
//!
//! The clinic's SQL is written once, in `store.rs`, with `$1` placeholders and times as BIGINT
//! unix seconds, which both engines understand alike. [`Tx`] runs it on PostgreSQL as is and on
//! SQLite with `?1` placeholders; [`Sql::migrate`] picks the engine's DDL. Nothing outside this
//! module matches on the engine.

use jobsmith::{Change, InsertBuilder, InsertedJob, Job, Page, Pool, Query, TypedJob, Updated};
use sqlx::postgres::{PgConnection, PgRow, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnection, SqliteRow};
use sqlx::{AssertSqlSafe, FromRow, Transaction};

/// The clinic's migrations, in order: (version, SQL) per engine. Compiled into the binary, so the
/// example runs from any directory.
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/postgres/0001_clinic.sql")),
    (2, include_str!("migrations/postgres/0002_reminders_are_found_by_query.sql")),
];
const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/sqlite/0001_clinic.sql")),
    (2, include_str!("migrations/sqlite/0002_reminders_are_found_by_query.sql")),
];

/// A value bound to a `$n` placeholder. The clinic's columns are all integers or text.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// BIGINT.
    Int(i64),
    /// TEXT.
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

/// A row type readable on both engines: in practice a tuple of `i64`, `String` and `Option<i64>`.
pub(crate) trait Row:
    for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}

impl<T> Row for T where T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin {}

/// The clinic's database: the very pool jobsmith uses, so the clinic's writes and the jobs they
/// insert can share one transaction.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    pool: Pool,
}

impl Sql {
    /// Wraps jobsmith's pool (`Db::pool`).
    pub(crate) fn new(pool: Pool) -> Self {
        Sql { pool }
    }

    /// Begins a transaction that writes.
    pub(crate) async fn begin(&self) -> sqlx::Result<Tx<'static>> {
        Ok(match &self.pool {
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            // A plain BEGIN takes SQLite's write lock at the first write, and fails at once with
            // "database is locked" if another connection wrote since this one first read. Taking
            // the lock up front makes concurrent writers (the runtime, other jobs) wait instead.
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// Begins a transaction that only reads: one consistent snapshot, and on SQLite no write lock,
    /// so polling for progress never holds up the jobs.
    pub(crate) async fn read(&self) -> sqlx::Result<Tx<'static>> {
        Ok(match &self.pool {
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
        })
    }

    /// Applies the clinic's migrations that this database has not seen yet; returns how many ran.
    /// Safe to run at every start, from several processes at once.
    pub(crate) async fn migrate(&self) -> sqlx::Result<usize> {
        let mut tx = self.begin().await?;
        let migrations = match tx.conn() {
            Conn::Postgres(t) => {
                // Two processes starting together migrate one after the other (SQLite's
                // BEGIN IMMEDIATE already serializes them). The key is arbitrary but fixed.
                sqlx::query("SELECT pg_advisory_xact_lock(7319557)").execute(t).await?;
                POSTGRES_MIGRATIONS
            }
            Conn::Sqlite(_) => SQLITE_MIGRATIONS,
        };
        tx.execute(
            "CREATE TABLE IF NOT EXISTS clinic_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            &[],
        )
        .await?;
        let applied: Vec<(i64,)> = tx.fetch_all("SELECT version FROM clinic_migrations", &[]).await?;
        let mut ran = 0;
        for (version, script) in migrations {
            if applied.iter().any(|(v,)| v == version) {
                continue;
            }
            // A script holds several statements: sent as one simple query, without binds.
            match tx.conn() {
                Conn::Postgres(t) => sqlx::raw_sql(*script).execute(t).await.map(drop)?,
                Conn::Sqlite(t) => sqlx::raw_sql(*script).execute(t).await.map(drop)?,
            }
            let now = chrono::Utc::now().timestamp();
            tx.execute(
                "INSERT INTO clinic_migrations (version, applied_at) VALUES ($1, $2)",
                &[(*version).into(), now.into()],
            )
            .await?;
            ran += 1;
        }
        tx.commit().await?;
        Ok(ran)
    }
}

/// An open transaction on either engine. Dropping it without [`Tx::commit`] rolls it back.
#[derive(Debug)]
pub(crate) enum Tx<'j> {
    /// PostgreSQL.
    Postgres(Transaction<'static, Postgres>),
    /// SQLite.
    Sqlite(Transaction<'static, Sqlite>),
    /// A job's own transaction (`tx: &mut JobTx`): the runtime commits it with the job's
    /// completion, so [`Tx::commit`] leaves it open.
    Job(&'j mut jobsmith::Transaction),
}

/// The connection a statement runs on.
enum Conn<'a> {
    Postgres(&'a mut PgConnection),
    Sqlite(&'a mut SqliteConnection),
}

/// Binds `args` in order to a sqlx query of either engine (the two query types share no trait
/// with `bind`, hence a macro).
macro_rules! bind {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Value::Int(v) => query.bind(*v),
                Value::Text(v) => query.bind(v.clone()),
            };
        }
        query
    }};
}

impl<'j> Tx<'j> {
    /// The clinic's statements in a job's own transaction.
    pub(crate) fn of_job(tx: &'j mut jobsmith::JobTx) -> Self {
        Tx::Job(tx)
    }

    fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Postgres(t) => Conn::Postgres(&mut *t),
            Tx::Sqlite(t) => Conn::Sqlite(&mut *t),
            Tx::Job(t) => {
                // Asked twice: returning the borrow of a first answer from only one of its arms
                // is beyond today's borrow checker.
                if t.postgres().is_some() {
                    Conn::Postgres(t.postgres().expect("checked"))
                } else {
                    Conn::Sqlite(t.sqlite().expect("a jobsmith database is PostgreSQL or SQLite"))
                }
            }
        }
    }

    /// Runs a statement; returns the rows it changed.
    pub(crate) async fn execute(&mut self, sql: &'static str, args: &[Value]) -> sqlx::Result<u64> {
        Ok(match self.conn() {
            Conn::Postgres(t) => bind!(sqlx::query(sql), args).execute(&mut *t).await?.rows_affected(),
            Conn::Sqlite(t) => bind!(sqlx::query(sqlite(sql)), args).execute(&mut *t).await?.rows_affected(),
        })
    }

    /// Every row of a query.
    pub(crate) async fn fetch_all<T: Row>(
        &mut self,
        sql: &'static str,
        args: &[Value],
    ) -> sqlx::Result<Vec<T>> {
        match self.conn() {
            Conn::Postgres(t) => bind!(sqlx::query_as(sql), args).fetch_all(&mut *t).await,
            Conn::Sqlite(t) => bind!(sqlx::query_as(sqlite(sql)), args).fetch_all(&mut *t).await,
        }
    }

    /// The first row of a query, if any.
    pub(crate) async fn fetch_optional<T: Row>(
        &mut self,
        sql: &'static str,
        args: &[Value],
    ) -> sqlx::Result<Option<T>> {
        match self.conn() {
            Conn::Postgres(t) => bind!(sqlx::query_as(sql), args).fetch_optional(&mut *t).await,
            Conn::Sqlite(t) => bind!(sqlx::query_as(sqlite(sql)), args).fetch_optional(&mut *t).await,
        }
    }

    /// Inserts a job in this transaction: it becomes visible to the runtime at commit, and
    /// vanishes with a rollback, together with the clinic's own writes.
    pub(crate) async fn insert_job<J: Job>(
        &mut self,
        job: impl Into<InsertBuilder<J>>,
    ) -> jobsmith::Result<InsertedJob> {
        match self.conn() {
            Conn::Postgres(t) => job.into().insert(&mut *t).await,
            Conn::Sqlite(t) => job.into().insert(&mut *t).await,
        }
    }

    /// Cancels the jobs `query` matches, in this transaction (see `jobsmith::Query::cancel`).
    pub(crate) async fn cancel_jobs<J: Job>(&mut self, query: impl Into<Query<J>>) -> jobsmith::Result<u64> {
        let query = query.into();
        match self.conn() {
            Conn::Postgres(t) => query.cancel(&mut *t).await,
            Conn::Sqlite(t) => query.cancel(&mut *t).await,
        }
    }

    /// Changes the waiting jobs `query` matches, in this transaction (see `jobsmith::Query::update`).
    pub(crate) async fn update_jobs<J: Job>(
        &mut self,
        query: impl Into<Query<J>>,
        change: Change<J>,
    ) -> jobsmith::Result<Updated> {
        let query = query.into();
        match self.conn() {
            Conn::Postgres(t) => query.update(&mut *t, change).await,
            Conn::Sqlite(t) => query.update(&mut *t, change).await,
        }
    }

    /// How many jobs `query` matches, in this transaction.
    pub(crate) async fn count_jobs<J: Job>(&mut self, query: impl Into<Query<J>>) -> jobsmith::Result<u64> {
        let query = query.into();
        match self.conn() {
            Conn::Postgres(t) => query.count(&mut *t).await,
            Conn::Sqlite(t) => query.count(&mut *t).await,
        }
    }

    /// The newest jobs `query` matches (one page), in this transaction.
    pub(crate) async fn list_jobs<J: Job>(
        &mut self,
        query: impl Into<Query<J>>,
    ) -> jobsmith::Result<Vec<TypedJob<J>>> {
        let query = query.into();
        match self.conn() {
            Conn::Postgres(t) => query.list(&mut *t, Page::default()).await,
            Conn::Sqlite(t) => query.list(&mut *t, Page::default()).await,
        }
    }

    /// Commits; a job's own transaction stays open for the runtime to commit with the job.
    pub(crate) async fn commit(self) -> sqlx::Result<()> {
        match self {
            Tx::Postgres(t) => t.commit().await,
            Tx::Sqlite(t) => t.commit().await,
            Tx::Job(_) => Ok(()),
        }
    }
}

/// `$1` -> `?1`: SQLite's numbered placeholder. (The clinic's SQL has no `$` anywhere else.)
fn sqlite(sql: &'static str) -> AssertSqlSafe<String> {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let numbered = c == '$' && chars.peek().is_some_and(char::is_ascii_digit);
        out.push(if numbered { '?' } else { c });
    }
    // Safe: the input is one of the example's own `&'static str` statements; values are bound.
    AssertSqlSafe(out)
}
