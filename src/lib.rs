// The README and the guides are doctests written against both engines.
#![cfg_attr(all(feature = "postgres", feature = "sqlite"), doc = include_str!("../README.md"))]
#![cfg_attr(
    not(all(feature = "postgres", feature = "sqlite")),
    doc = "Typed, durable background jobs for Rust on PostgreSQL and SQLite: see the README."
)]

// The facade lists what users write, by name, so the crate root is the API and nothing else: the
// runtime's internals, serde and inventory stay out of it. The code `#[job]` generates reaches
// its support through `__private`.

pub use jobsmith_macros::job;

pub use jobsmith_runtime::{
    Change, CronAdmin, CronEntry, CronEntryRow, CronEntrySpec, CronListing, CronSource, CronSpec, Db, Error,
    InsertBuilder, InsertedJob, IntoOutcome, Job, JobContext, JobExt, JobFilter, JobHandle, JobMatch,
    JobOptions, JobRow, JobState, JobTx, MAX_ATTEMPTS_LIMIT, MAX_PARTITION_KEY_BYTES, MAX_PARTITION_WEIGHT,
    MAX_WEIGHT, MinuteStats, MissedSlots, NewJob, NodeRow, OnConflict, Outcome, Page, PartitionWeight,
    PerformFuture, Pool, Query, QueueInfo, QueueSettings, QueueSettingsChange, RateLimit, Registry,
    RescueReport, Result, Retention, Runtime, RuntimeBuilder, SequenceOverride, SequencePolicy, State,
    StateCount, StateNeed, StateValue, States, StepError, Transaction, TypedJob, UniqueOptions, Updated,
    WorkerEntry, WorkerRow, default_backoff, insert_all, insert_all_in,
};

#[cfg(feature = "postgres")]
pub use jobsmith_runtime::{migrate, migrate_schema};

pub use jobsmith_runtime::{
    backoff, cron, defaults, engine, prelude, preview, query, telemetry, testing, trace_context,
};

#[cfg(all(feature = "postgres", feature = "sqlite"))]
pub mod guides;

#[cfg(feature = "dashboard")]
pub mod dashboard;

/// Registers a hand-written [`Job`] type with every default runtime of this binary (what
/// `#[job]` does for the types it generates). Or hand a runtime an explicit list with
/// [`RuntimeBuilder::registry`].
///
/// ```
/// # use jobsmith::{Job, JobContext, JobOptions, Outcome, PerformFuture};
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Vacuum;
/// impl Job for Vacuum {
///     type Output = ();
///     const NAME: &'static str = "register_worker_example_vacuum";
///     const OPTIONS: JobOptions = JobOptions::DEFAULT;
///     fn perform(self, _ctx: JobContext) -> PerformFuture {
///         Box::pin(async { Ok(Outcome::Complete) })
///     }
/// }
/// jobsmith::register_worker!(Vacuum);
/// ```
#[macro_export]
macro_rules! register_worker {
    ($job:ty) => {
        $crate::__private::inventory::submit! { $crate::WorkerEntry::of::<$job>() }
    };
}

/// Paths used by the code `#[job]` generates. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use jobsmith_runtime::__query_method;
    pub use jobsmith_runtime::app_state::{missing_at_run, state_of};
    pub use jobsmith_runtime::inventory;
    pub use jobsmith_runtime::query::ArgCapture;
    pub use jobsmith_runtime::serde;
    pub use jobsmith_runtime::{
        CronSpec, IntoOutcome, Job, JobContext, JobOptions, JobState, JobTx, OnConflict, Outcome,
        PerformFuture, Query, State, StateNeed, UniqueOptions, WorkerEntry,
    };
    pub use std::boxed::Box;
    pub use std::time::Duration;
}
