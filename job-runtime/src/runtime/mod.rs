//! The runtime: a node that runs queues. Built with [`crate::Db::runtime`], stopped with
//! [`Runtime::shutdown`].
//!
//! Inside, each queue has a producer (fetch, `producer.rs`), each job runs in its own task
//! (execute, `executor.rs`), one completer writes results in batches (ack, `completer.rs`), and
//! the background services (`services/`: stager, claims reconciler, heartbeat, and on the leader
//! rescuer, pruner, cron, gauges) share one shape. `lifecycle.rs` starts and stops them in a
//! defined order; `shared.rs` holds what they share. Everything talks to the database only
//! through the [`crate::engine::Engine`].

mod builder;
mod claim_ahead;
pub(crate) mod claims;
mod completer;
pub(crate) mod config;
pub(crate) mod control;
pub(crate) mod executor;
mod handle;
mod lifecycle;
mod producer;
mod queue;
mod services;
mod shared;
mod signals;

pub use builder::RuntimeBuilder;
pub use handle::Runtime;
pub use queue::QueueInfo;

/// The runtime's defaults, named (each is documented where it is set, on [`RuntimeBuilder`]).
pub mod defaults {
    pub use super::config::{
        DEFAULT_ACK_BATCH, DEFAULT_ACK_DELAY, DEFAULT_CRON_INTERVAL, DEFAULT_FETCH_BATCH,
        DEFAULT_GAUGE_INTERVAL, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_LEADER_LEASE, DEFAULT_MAX_RESULT_BYTES,
        DEFAULT_NODE_TTL, DEFAULT_POLL_INTERVAL, DEFAULT_PRUNE_BATCH, DEFAULT_PRUNE_INTERVAL,
        DEFAULT_RESCUE_BATCH, DEFAULT_RESCUE_INTERVAL, DEFAULT_RETENTION_COMPLETED, DEFAULT_RETENTION_FAILED,
        DEFAULT_SHUTDOWN_GRACE, DEFAULT_STAGE_BATCH, DEFAULT_VACUUM_INTERVAL, DEFAULT_VACUUM_MIN_DEAD,
    };
}
