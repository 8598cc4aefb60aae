//! A transaction on a jobsmith database that knows its engine: jobs inserted in it cross the
//! engine seam like every insert, and once it commits the engine is told (the testing helpers'
//! inline mode runs the jobs then).
//!
//! For inserts in a transaction the application already holds (its own sqlx transaction), use
//! `job.insert(&mut *tx)` instead; those are the same statement, but only a [`Transaction`] tells
//! the engine about its commit.

use std::sync::Arc;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::insert::{InsertBuilder, insert_all_in};
use crate::job::Job;
use crate::types::{InsertedJob, NewJob};

/// A transaction begun by [`crate::Db::begin`]. Dropping it without [`Transaction::commit`] rolls
/// it back, with every job inserted in it.
///
/// ```
/// # use jobsmith::prelude::*;
/// # #[jobsmith::job] async fn transaction_example(n: i64) -> Result<(), String> { Ok(()) }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> jobsmith::Result<()> {
/// let db = jobsmith::Db::connect("sqlite::memory:").await?;
/// db.migrate().await?;
/// let mut tx = db.begin().await?;
/// // The application's own writes go through the same connection:
/// sqlx::query("SELECT 1").execute(tx.sqlite().expect("a SQLite database")).await?;
/// let stored = tx.insert(TransactionExample { n: 1 }).await?;
/// tx.commit().await?;
/// assert!(db.engine().get_job(stored.job.id).await?.is_some());
/// # Ok(()) }
/// ```
pub struct Transaction {
    conn: Conn,
    engine: Arc<dyn Engine>,
    /// The queues that got new jobs in it, each once: what the engine is told at the commit.
    queues: Vec<String>,
    /// Held until the transaction ends (see [`OpenTx::slot`]).
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

pub(crate) enum Conn {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

/// A transaction an engine began for a job (see [`crate::engine::RuntimeOps::begin_job_tx`]),
/// not yet tied to the engine the runtime holds. Internal to the engine seam.
#[doc(hidden)]
pub struct OpenTx {
    pub(crate) conn: Conn,
    /// The engine's permit for holding a connection this long, if it limits that.
    pub(crate) slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl std::fmt::Debug for OpenTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenTx").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("engine", &self.engine.name())
            .field("queues", &self.queues)
            .finish()
    }
}

impl Transaction {
    #[cfg(feature = "postgres")]
    pub(crate) fn postgres_in(
        tx: sqlx::Transaction<'static, sqlx::Postgres>,
        engine: Arc<dyn Engine>,
    ) -> Self {
        Transaction { conn: Conn::Postgres(tx), engine, queues: Vec::new(), _slot: None }
    }

    #[cfg(feature = "sqlite")]
    pub(crate) fn sqlite_in(tx: sqlx::Transaction<'static, sqlx::Sqlite>, engine: Arc<dyn Engine>) -> Self {
        Transaction { conn: Conn::Sqlite(tx), engine, queues: Vec::new(), _slot: None }
    }

    /// The transaction an engine began, told to `engine` at its commit.
    pub(crate) fn from_open(open: OpenTx, engine: Arc<dyn Engine>) -> Self {
        Transaction { conn: open.conn, engine, queues: Vec::new(), _slot: open.slot }
    }

    /// The engine this transaction tells at its commit.
    pub(crate) fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// Inserts one job in this transaction.
    pub async fn insert<J: Job>(&mut self, job: impl Into<InsertBuilder<J>>) -> Result<InsertedJob> {
        let mut rows = self.insert_all(vec![job.into().build()?]).await?;
        rows.pop().ok_or_else(|| Error::Unexpected("insert returned no row".into()))
    }

    /// Inserts many jobs of any types in this transaction; results in input order.
    pub async fn insert_all(&mut self, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>> {
        let schema = self.engine.schema().to_string();
        let rows = match &mut self.conn {
            #[cfg(feature = "postgres")]
            Conn::Postgres(tx) => insert_all_in(&mut **tx, schema, jobs).await?,
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(tx) => insert_all_in(&mut **tx, schema, jobs).await?,
        };
        for queue in new_work(&rows) {
            if !self.queues.contains(&queue) {
                self.queues.push(queue);
            }
        }
        Ok(rows)
    }

    /// The connection, for the application's own statements in this transaction (PostgreSQL);
    /// `None` on another engine.
    #[cfg(feature = "postgres")]
    pub fn postgres(&mut self) -> Option<&mut sqlx::PgConnection> {
        match &mut self.conn {
            Conn::Postgres(tx) => Some(&mut **tx),
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(_) => None,
        }
    }

    /// The connection, for the application's own statements in this transaction (SQLite);
    /// `None` on another engine.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(&mut self) -> Option<&mut sqlx::SqliteConnection> {
        match &mut self.conn {
            Conn::Sqlite(tx) => Some(&mut **tx),
            #[cfg(feature = "postgres")]
            Conn::Postgres(_) => None,
        }
    }

    /// Commits, then tells the engine which jobs the commit made visible.
    pub async fn commit(self) -> Result<()> {
        match self.conn {
            #[cfg(feature = "postgres")]
            Conn::Postgres(tx) => tx.commit().await?,
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(tx) => tx.commit().await?,
        }
        self.engine.committed(&self.queues).await
    }

    /// Commits without telling the engine; returns the queues to tell it of.
    pub(crate) async fn commit_quietly(self) -> Result<Vec<String>> {
        match self.conn {
            #[cfg(feature = "postgres")]
            Conn::Postgres(tx) => tx.commit().await?,
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(tx) => tx.commit().await?,
        }
        Ok(self.queues)
    }

    /// Rolls back: nothing inserted in it stays.
    pub async fn rollback(self) -> Result<()> {
        match self.conn {
            #[cfg(feature = "postgres")]
            Conn::Postgres(tx) => tx.rollback().await?,
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

impl<'c> crate::query::QueryTarget<'c> for &'c mut Transaction {
    fn run(
        self,
        schema: String,
        m: crate::types::JobMatch,
        op: crate::types::QueryOp,
    ) -> crate::query::BoxFuture<'c, Result<crate::types::QueryOutput>> {
        // A query that names no schema runs on this transaction's instance.
        let schema =
            if schema == crate::insert::DEFAULT_SCHEMA { self.engine.schema().to_string() } else { schema };
        use crate::engine::QueryDatabase;
        Box::pin(async move {
            match &mut self.conn {
                #[cfg(feature = "postgres")]
                Conn::Postgres(tx) => sqlx::Postgres::run_query(tx, &schema, &m, op).await,
                #[cfg(feature = "sqlite")]
                Conn::Sqlite(tx) => sqlx::Sqlite::run_query(tx, &schema, &m, op).await,
            }
        })
    }
}

/// The queues that `rows` gave new work (unique conflicts add none unless they replaced a waiting
/// job), each once, in name order.
pub(crate) fn new_work(rows: &[InsertedJob]) -> Vec<String> {
    let mut queues: Vec<String> =
        rows.iter().filter(|r| !r.conflict || r.replaced).map(|r| r.job.queue.clone()).collect();
    queues.sort_unstable();
    queues.dedup();
    queues
}
