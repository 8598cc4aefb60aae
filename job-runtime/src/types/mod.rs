//! The row and value types that cross the engine seam: what engines store and return, and what
//! the runtime asks of them.
//!
//! A leaf module: it uses nothing of the runtime but [`crate::error`], so the engines, the insert
//! API and telemetry can all depend on it without depending on each other. Every type is also
//! re-exported where it lived before (`jobsmith::engine::Ack`, `jobsmith::JobRow`, ...).

mod ack;
mod cron_entry;
mod job;
mod matcher;
mod new_job;
mod partition;
mod queue;
mod rate_limit;
mod report;
mod request;
mod state;

pub use ack::{Ack, AckKind};
pub use cron_entry::{CronEntryRow, CronEntryWrite, CronSource, JobTemplate, WorkerRow};
pub use job::{ExecutingRow, FetchCursor, FetchedJob, JobRow, MinuteStats, NodeRow, StateCount};
pub use matcher::{JobChange, JobMatch, QueryOp, QueryOutput, Updated};
pub(crate) use new_job::Schedule;
pub use new_job::{InsertedJob, MAX_PARTITION_KEY_BYTES, MAX_WEIGHT, NewJob, OnConflict};
pub use partition::{
    MAX_PARTITION_WEIGHT, PartitionRequest, PartitionWeight, PartitionedFetch, RatedStamp,
    UNPARTITIONED_LOOKAHEAD,
};
pub(crate) use partition::{
    PARTITION_PASSES, check_weight as check_partition_weight, place_of, share as partition_share,
};
pub use queue::{QueueSettings, QueueSettingsChange, SequenceOverride, SequencePolicy};
pub(crate) use rate_limit::RateLog;
pub use rate_limit::{RateLimit, RateLimitedFetch};
pub use report::{RescueReport, Signal, StageReport};
pub use request::{
    CronFire, FetchRequest, HandBack, Heartbeat, JobFilter, Page, RescueRequest, Retention, SettingsUpdate,
    StepRecord, TxCompletion,
};
pub use state::JobState;
