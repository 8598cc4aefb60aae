//! The runtime of jobsmith. Depend on the `jobsmith` crate, which re-exports what users need.
//!
//! Engines are features: `sqlite` (the default, embedded) and `postgres`; a build with neither is
//! refused, since it could not store a job.

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!("jobsmith needs an engine: enable the `sqlite` feature (the default), `postgres`, or both");

pub mod app_state;
pub mod backoff;
pub mod context;
pub mod cron;
pub mod cron_admin;
pub mod db;
pub mod engine;
pub mod error;
pub mod insert;
pub mod job;
pub mod job_tx;
pub mod outcome;
pub mod preview;
pub mod query;
pub mod registry;
mod run_link;
pub mod runtime;
pub mod telemetry;
pub mod testing;
pub mod trace_context;
pub mod transaction;
pub mod types;
pub mod waiting;

pub mod steps;

/// The states a job row moves through (see [`JobState`]).
pub mod state {
    pub use crate::types::JobState;
}

pub use app_state::{State, StateNeed, StateValue, States};
pub use backoff::default_backoff;
pub use context::JobContext;
pub use cron::{CronEntry, MissedSlots};
pub use cron_admin::{CronAdmin, CronEntrySpec, CronListing};
pub use db::{Db, Pool};
pub use engine::JobRow;
pub use engine::{
    JobFilter, MinuteStats, NodeRow, Page, QueueSettings, QueueSettingsChange, RescueReport, Retention,
    StateCount,
};
pub use error::{Error, Result};
pub use insert::{InsertBuilder, InsertedJob, JobExt, NewJob, insert_all, insert_all_in};
pub use job::{CronSpec, Job, JobOptions, MAX_ATTEMPTS_LIMIT, OnConflict, PerformFuture, UniqueOptions};
pub use job_tx::JobTx;
pub use outcome::{IntoOutcome, Outcome};
pub use query::{Change, Query, TypedJob};
pub use registry::{Registry, WorkerEntry};
pub use runtime::{QueueInfo, Runtime, RuntimeBuilder, defaults};
pub use steps::StepError;
pub use transaction::Transaction;
pub use types::{
    CronEntryRow, CronSource, JobMatch, JobState, JobTemplate, MAX_PARTITION_KEY_BYTES, MAX_PARTITION_WEIGHT,
    MAX_WEIGHT, PartitionWeight, RateLimit, SequenceOverride, SequencePolicy, UNPARTITIONED_LOOKAHEAD,
    Updated, WorkerRow,
};
pub use waiting::JobHandle;

#[doc(hidden)]
pub use chrono as __chrono;
pub use inventory;
pub use serde;
#[doc(hidden)]
pub use sqlx as __sqlx;

/// Applies jobsmith's PostgreSQL migrations in the default schema (`jobsmith`). Idempotent; safe
/// beside the application's own sqlx migrations (it tracks its versions in its own table).
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) -> jobsmith::Result<()> {
/// jobsmith::migrate(&pool).await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "postgres")]
pub async fn migrate(pool: &sqlx::PgPool) -> Result<()> {
    engine::postgres::migrate(pool, insert::DEFAULT_SCHEMA).await
}

#[cfg(feature = "postgres")]
/// [`migrate`] for an instance in another schema, so two isolated instances can share a database.
pub async fn migrate_schema(pool: &sqlx::PgPool, schema: &str) -> Result<()> {
    engine::postgres::migrate(pool, schema).await
}

/// What most programs import: the insert methods on job types.
pub mod prelude {
    pub use crate::insert::JobExt;
    pub use crate::{Job, JobContext, Outcome, State};
}
