//! A handle on a jobsmith database, PostgreSQL or SQLite, chosen from the URL.

use std::sync::Arc;

#[cfg(feature = "postgres")]
use sqlx::postgres::PgPool;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqlitePool;

use crate::engine::instrumented::Instrumented;
#[cfg(feature = "postgres")]
use crate::engine::postgres::PostgresEngine;
use crate::engine::prelude::*;
#[cfg(feature = "sqlite")]
use crate::engine::sqlite::{self, SqliteEngine};
use crate::engine::test_support::TestSupport;
use crate::error::{Error, Result};
use crate::insert::{DEFAULT_SCHEMA, InsertBuilder, InsertedJob, NewJob};
use crate::job::Job;
use crate::runtime::RuntimeBuilder;
use crate::transaction::Transaction;

/// The pool behind a [`Db`], for inserting inside your own transactions.
#[derive(Debug, Clone)]
pub enum Pool {
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
}

impl Pool {
    /// The SQLite pool, for the application's own statements and transactions; `None` on
    /// another engine.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(&self) -> Option<&SqlitePool> {
        match self {
            Pool::Sqlite(pool) => Some(pool),
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, for the application's own statements and transactions; `None` on
    /// another engine.
    #[cfg(feature = "postgres")]
    pub fn postgres(&self) -> Option<&PgPool> {
        match self {
            Pool::Postgres(pool) => Some(pool),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => None,
        }
    }
}

/// A jobsmith database: insert jobs, migrate, build runtimes, on either engine.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> jobsmith::Result<()> {
/// let db = jobsmith::Db::connect("sqlite::memory:").await?;
/// db.migrate().await?;
/// assert_eq!(db.engine().name(), "sqlite");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Db {
    engine: Arc<dyn Engine>,
    /// The testing helpers' operations, on the same engine (see [`crate::testing`]); nothing else
    /// reaches them.
    pub(crate) test_support: Arc<dyn TestSupport>,
    pool: Pool,
    /// The waiters of `wait` and their one listener (see [`crate::waiting`]).
    pub(crate) waiters: Arc<crate::waiting::Hub>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("engine", &self.engine.name()).finish_non_exhaustive()
    }
}

impl Db {
    /// Connects by URL: `postgres://...` / `postgresql://...` for PostgreSQL, `sqlite:...` for
    /// SQLite (`sqlite:jobs.db`, `sqlite://path/jobs.db`, `sqlite::memory:`).
    pub async fn connect(url: &str) -> Result<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            {
                let pool = sqlx::postgres::PgPoolOptions::new().max_connections(20).connect(url).await?;
                Db::postgres(pool, DEFAULT_SCHEMA)
            }
            #[cfg(not(feature = "postgres"))]
            Err(missing_engine("postgres", url))
        } else if url.starts_with("sqlite:") {
            #[cfg(feature = "sqlite")]
            {
                Db::sqlite(sqlite::connect(url).await?, DEFAULT_SCHEMA).await
            }
            #[cfg(not(feature = "sqlite"))]
            Err(missing_engine("sqlite", url))
        } else {
            Err(Error::InvalidOption(format!(
                "cannot tell the database from `{url}`: use postgres://... or sqlite:..."
            )))
        }
    }

    #[cfg(feature = "postgres")]
    /// A PostgreSQL database through your pool, for the instance in `schema`.
    pub fn postgres(pool: PgPool, schema: &str) -> Result<Db> {
        let engine = Arc::new(PostgresEngine::new(pool.clone(), schema)?);
        Ok(Db {
            engine: Instrumented::wrap(engine.clone()),
            test_support: engine,
            waiters: Default::default(),
            pool: Pool::Postgres(pool),
        })
    }

    #[cfg(feature = "sqlite")]
    /// A SQLite database through your pool (open it with [`crate::engine::sqlite::connect`] for
    /// WAL and a busy timeout), for the instance named `schema` (table prefix).
    pub async fn sqlite(pool: SqlitePool, schema: &str) -> Result<Db> {
        let engine = Arc::new(SqliteEngine::new(pool.clone(), schema).await?);
        Ok(Db {
            engine: Instrumented::wrap(engine.clone()),
            test_support: engine,
            pool: Pool::Sqlite(pool),
            waiters: Default::default(),
        })
    }

    /// Applies the engine's migrations (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        self.engine.migrate().await
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// The pool, to insert inside your own transactions with `job.insert(&mut *tx)`.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Inserts one job (or a job with per-insert options) through the engine's pool.
    pub async fn insert<J: Job>(&self, job: impl Into<InsertBuilder<J>>) -> Result<InsertedJob> {
        let mut rows = self.insert_all(vec![job.into().build()?]).await?;
        rows.pop().ok_or_else(|| Error::Unexpected("insert returned no row".into()))
    }

    /// The result job `id` recorded when it completed, typed as its job's `Output`; `None` if it
    /// has not completed (or completed without a result), does not exist, or was pruned with its
    /// job. A stored result that no longer decodes as `J::Output` is an error that says so.
    ///
    /// ```
    /// # use jobsmith::prelude::*;
    /// #[jobsmith::job(queue = "result-doc")]
    /// async fn add(a: i64, b: i64) -> Result<i64, String> { Ok(a + b) }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> jobsmith::Result<()> {
    /// let db = jobsmith::Db::connect("sqlite::memory:").await?;
    /// db.migrate().await?;
    /// let id = db.insert(Add { a: 2, b: 3 }).await?.job.id;
    /// let report = jobsmith::testing::drain_queue(&db, "result-doc", Default::default()).await?;
    /// assert_eq!(report.completed, 1);
    /// assert_eq!(db.result::<Add>(id).await?, Some(5));
    /// # Ok(()) }
    /// ```
    pub async fn result<J: Job>(&self, id: i64) -> Result<Option<J::Output>> {
        let Some(output) = self.engine.get_result(id).await? else { return Ok(None) };
        serde_json::from_value(output).map(Some).map_err(|e| {
            Error::Unexpected(format!(
                "the result of job {id} does not decode as `{}`'s output: {e}",
                J::NAME
            ))
        })
    }

    /// Inserts many jobs of any types at once; results in input order.
    pub async fn insert_all(&self, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.engine.insert(jobs).await
    }

    /// Begins a transaction on this database: insert jobs in it with [`Transaction::insert`],
    /// write the application's own rows through its connection, and commit them together.
    pub async fn begin(&self) -> Result<Transaction> {
        let engine = self.engine.clone();
        match &self.pool {
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => Ok(Transaction::postgres_in(pool.begin().await?, engine)),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => Ok(Transaction::sqlite_in(pool.begin().await?, engine)),
        }
    }

    /// This database with another engine in front of its own (the testing helpers' inline mode).
    pub(crate) fn with_engine(&self, engine: Arc<dyn Engine>) -> Db {
        // Its own waiters: they listen through this engine.
        Db { engine, waiters: Default::default(), ..self.clone() }
    }

    /// A runtime builder on this database: the one way to make a node.
    ///
    /// ```no_run
    /// # async fn demo(db: jobsmith::Db) -> jobsmith::Result<()> {
    /// let runtime = db.runtime().queue("default", 10).start().await?;
    /// runtime.shutdown().await
    /// # }
    /// ```
    pub fn runtime(&self) -> RuntimeBuilder {
        RuntimeBuilder::new(self.engine.clone())
    }

    /// Sets (or with `None` clears) the weight of `partition` in `queue`, as
    /// [`crate::Runtime::set_partition_weight`] does, from a process that runs no jobs (the web
    /// app that signs a tenant up, say).
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> jobsmith::Result<()> {
    /// let db = jobsmith::Db::connect("sqlite::memory:").await?;
    /// db.migrate().await?;
    /// db.set_partition_weight("reminders", "clinic-7", Some(3)).await?;
    /// let stored = db.engine().partition_weights(Some("reminders")).await?;
    /// assert_eq!((stored[0].partition.as_str(), stored[0].weight), ("clinic-7", 3));
    /// assert!(db.set_partition_weight("reminders", "clinic-7", Some(0)).await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn set_partition_weight(
        &self,
        queue: &str,
        partition: &str,
        weight: Option<u32>,
    ) -> Result<()> {
        self.engine().set_partition_weight(queue, partition, weight).await
    }

    /// Cron entries at run time: add, change, pause, run now and remove them, and list them with
    /// the entries of the leader's code (see [`crate::CronAdmin`]).
    pub fn cron(&self) -> crate::CronAdmin<'_> {
        crate::CronAdmin::new(self.engine().as_ref())
    }

    /// Chooses (or with `None` clears) the failure policy of one sequence, as
    /// [`crate::Runtime::set_sequence_policy`] does, from a process that runs no jobs.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> jobsmith::Result<()> {
    /// use jobsmith::SequencePolicy;
    /// let db = jobsmith::Db::connect("sqlite::memory:").await?;
    /// db.migrate().await?;
    /// db.set_sequence_policy("ledger", "account-7", Some(SequencePolicy::ContinueAfterDiscard)).await?;
    /// let stored = db.engine().sequence_policies(Some("ledger")).await?;
    /// assert_eq!((stored[0].partition.as_str(), stored[0].policy), ("account-7", SequencePolicy::ContinueAfterDiscard));
    /// # Ok(()) }
    /// ```
    pub async fn set_sequence_policy(
        &self,
        queue: &str,
        partition: &str,
        policy: Option<crate::types::SequencePolicy>,
    ) -> Result<()> {
        self.engine().set_sequence_policy(queue, partition, policy).await
    }
}

/// The error for a URL of an engine this build leaves out.
#[cfg(not(all(feature = "postgres", feature = "sqlite")))]
fn missing_engine(feature: &str, url: &str) -> Error {
    Error::InvalidOption(format!(
        "`{url}` needs the `{feature}` engine, which this build leaves out: enable jobsmith's `{feature}` feature"
    ))
}

impl<'c> crate::query::QueryTarget<'c> for &'c Db {
    fn run(
        self,
        schema: String,
        m: crate::types::JobMatch,
        op: crate::types::QueryOp,
    ) -> crate::query::BoxFuture<'c, Result<crate::types::QueryOutput>> {
        // A query that names no schema runs on this db's instance (a `Db` is one instance).
        let schema =
            if schema == crate::insert::DEFAULT_SCHEMA { self.engine.schema().to_string() } else { schema };
        use crate::engine::QueryDatabase;
        Box::pin(async move {
            match &self.pool {
                #[cfg(feature = "postgres")]
                Pool::Postgres(pool) => {
                    let mut conn = pool.acquire().await?;
                    sqlx::Postgres::run_query(&mut conn, &schema, &m, op).await
                }
                #[cfg(feature = "sqlite")]
                Pool::Sqlite(pool) => {
                    let mut conn = pool.acquire().await?;
                    sqlx::Sqlite::run_query(&mut conn, &schema, &m, op).await
                }
            }
        })
    }
}
