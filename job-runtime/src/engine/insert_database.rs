//! Inserting through the caller's own pool, connection or transaction, per database.

use std::future::Future;

use crate::error::Result;
use crate::types::{InsertedJob, NewJob};

/// A database that jobs can be inserted into through a pool, a connection or a transaction.
/// Implemented by each engine module.
pub trait InsertDatabase: sqlx::Database {
    /// The name of the engine of this database, as [`crate::engine::Engine::name`] gives it.
    const ENGINE: &'static str;

    /// Inserts `jobs` atomically and returns one result per job, in input order. `schema` names
    /// the instance (a PostgreSQL schema, or a SQLite table prefix).
    fn insert_jobs<'c, A>(
        db: A,
        schema: &str,
        jobs: Vec<NewJob>,
    ) -> impl Future<Output = Result<Vec<InsertedJob>>> + Send
    where
        A: sqlx::Acquire<'c, Database = Self> + Send;
}
