#![doc = include_str!("../README.md")]

pub use jobsmith_macros::job;
pub use jobsmith_runtime::*;
pub mod guides;

#[cfg(feature = "dashboard")]
pub mod dashboard;

/// Paths used by the code `#[job]` generates. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use jobsmith_runtime::inventory;
    pub use jobsmith_runtime::serde;
    pub use jobsmith_runtime::{
        CronSpec, IntoOutcome, Job, JobContext, JobOptions, JobState, Outcome, PerformFuture, UniqueOptions,
        WorkerEntry,
    };
    pub use std::boxed::Box;
    pub use std::time::Duration;
}
