//! The engine seam: every SQL statement of jobsmith lives below this module, behind [`Engine`].
//!
//! The runtime (producers, executor, completer, stager, handle) only calls these operations, each
//! taking plain Rust values, so a new database is one new module and the shared conformance suite.
//!
//! [`Engine`] is the union of three traits, one per kind of caller: [`RuntimeOps`] (what the
//! runtime needs), [`Notifications`] (signals reaching a node) and [`Administration`] (what the
//! CLI and the dashboard do). Calling their methods on an `Arc<dyn Engine>` needs them in scope:
//! `use jobsmith::engine::prelude::*`.
//!
//! The seam is internal. It is public so that jobsmith's own CLI and dashboard can call the
//! administration operations, not as a stability promise: implementing these traits outside
//! jobsmith, or relying on their exact signatures, is not covered by semver.

mod ack_plan;
mod administration;
mod common;
mod insert_database;
pub mod instrumented;
mod notifications;
#[cfg(feature = "postgres")]
pub mod postgres;
mod query_database;
mod runtime_ops;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub(crate) mod test_support;
pub(crate) mod unreadable;

pub use administration::Administration;
pub use insert_database::InsertDatabase;
pub use notifications::Notifications;
pub use query_database::QueryDatabase;
pub use runtime_ops::RuntimeOps;

pub use crate::types::{
    Ack, AckKind, CronFire, ExecutingRow, FetchCursor, FetchRequest, FetchedJob, HandBack, Heartbeat,
    InsertedJob, JobFilter, JobMatch, JobRow, JobState, MinuteStats, NewJob, NodeRow, Page, PartitionRequest,
    PartitionWeight, PartitionedFetch, QueryOp, QueryOutput, QueueSettings, QueueSettingsChange, RateLimit,
    RateLimitedFetch, RatedStamp, RescueReport, RescueRequest, Retention, SequenceOverride, SequencePolicy,
    SettingsUpdate, Signal, StageReport, StateCount, StepRecord, TxCompletion,
};

/// One database behind jobsmith: every operation of [`RuntimeOps`], [`Notifications`] and
/// [`Administration`], plus what identifies the engine. The runtime, the CLI and the dashboard
/// hold an `Arc<dyn Engine>`.
pub trait Engine: RuntimeOps + Notifications + Administration {
    /// A short name for logs: `postgres`, `sqlite`.
    fn name(&self) -> &'static str;

    /// The instance this engine serves: the PostgreSQL schema, or on SQLite the table prefix
    /// without its trailing underscore. Errors name it (see [`crate::Error::NotMigrated`]).
    fn schema(&self) -> &str;

    /// True for the tracing wrapper, so nothing wraps an engine twice.
    fn is_instrumented(&self) -> bool {
        false
    }
}

/// The engine traits, so their methods can be called on an `Arc<dyn Engine>`:
/// `use jobsmith::engine::prelude::*`.
pub mod prelude {
    pub use super::{Administration, Engine, Notifications, RuntimeOps};
}
