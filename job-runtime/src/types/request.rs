//! What the runtime asks of an engine, when a call takes more than a value or two.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{FetchCursor, JobState, NewJob, QueueSettingsChange};

/// What a fetch asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest<'a> {
    /// Queue.
    pub queue: &'a str,
    /// Most slots to fill: jobs are taken in run order while their weights (each counted as at
    /// most `weight_cap`) add up to no more; with every weight 1, the most rows to take.
    pub limit: u32,
    /// The most one job's weight counts for, so a job heavier than the node's whole limit still
    /// runs (alone): the node's own limit, or the global limit if lower. `u32::MAX` for none.
    pub weight_cap: u32,
    /// The fetching node, stored in `attempted_by`.
    pub node: &'a str,
    /// At most this many rows of the queue may be executing across all nodes.
    pub global_limit: Option<u32>,
    /// Only rows after this place in run order: where the last full fetch ended, while nothing
    /// has become available since. It lets the database start its index scan there instead of
    /// stepping again over the entries of every row already taken (they stay in the index until
    /// vacuum). An optimisation only: an engine may ignore it, and an answer shorter than asked
    /// makes the producer look again without it.
    pub after: Option<FetchCursor>,
    /// The claim may commit without waiting for its write-ahead log to reach disk (PostgreSQL:
    /// `synchronous_commit = off` for that one transaction). If the database server crashes
    /// within that moment, the claim is undone: the jobs are `available` again and may run a
    /// second time, even while this node still runs them. Engines that cannot relax a commit
    /// ignore it. See [`crate::RuntimeBuilder::relaxed_fetch_commit`].
    pub relaxed_commit: bool,
}

impl FetchRequest<'_> {
    /// [`FetchRequest::weight_cap`] as the engines bind it (at least 1, at most what a weight can
    /// be).
    pub fn weight_cap(&self) -> i32 {
        self.weight_cap.clamp(1, u32::from(super::MAX_WEIGHT)) as i32
    }
}

/// One heartbeat of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat<'a> {
    /// The node.
    pub node: &'a str,
    /// The queues it runs.
    pub queues: &'a [String],
    /// A node whose previous heartbeat is older than this was disconnected: its
    /// `connected_since` starts again now (see [`RescueRequest`]).
    pub reconnect_gap: Duration,
}

/// What a rescue pass asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RescueRequest<'a> {
    /// The node doing the rescue. It rescues only if, by the database's clock at the moment the
    /// statement runs, its own heartbeat is younger than `reconnect_gap` and it has been connected
    /// (heartbeating without a gap longer than `reconnect_gap`) for at least `node_ttl`: right
    /// after an outage every heartbeat looks old, and a node still reconnecting cannot be told
    /// from a dead one.
    pub rescuer: &'a str,
    /// A node whose heartbeat is older than this is dead.
    pub node_ttl: Duration,
    /// See `rescuer`.
    pub reconnect_gap: Duration,
    /// Most jobs to move.
    pub limit: u32,
}

/// Which jobs a listing shows. Every field narrows; the default lists everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Any of these states (empty: all).
    pub states: Vec<JobState>,
    /// This queue.
    pub queue: Option<String>,
    /// This worker name.
    pub worker: Option<String>,
    /// Jobs carrying this tag.
    pub tag: Option<String>,
    /// A job id, or text that occurs in the args.
    pub search: Option<String>,
}

/// One page of a listing: newest first, ids below `before_id` when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Most rows.
    pub limit: u32,
    /// Only ids below this (the last id of the previous page).
    pub before_id: Option<i64>,
}

impl Default for Page {
    fn default() -> Self {
        Page { limit: 50, before_id: None }
    }
}

/// How long finished rows are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `completed` rows.
    pub completed: Duration,
    /// `cancelled` rows.
    pub cancelled: Duration,
    /// `discarded` rows.
    pub discarded: Duration,
}

/// A hand-back of claims a node lost (see [`crate::engine::RuntimeOps::hand_back`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandBack<'a> {
    /// The node the rows must still be `executing` by.
    pub node: &'a str,
    /// Row id and claim stamp pairs, as [`crate::engine::RuntimeOps::executing`] gave them.
    pub claims: &'a [(i64, i64)],
    /// Appended to each row's errors.
    pub reason: &'a str,
}

/// One firing of a cron entry (see [`crate::engine::RuntimeOps::cron_fire`]).
#[derive(Debug, Clone)]
pub struct CronFire<'a> {
    /// The entry's name.
    pub name: &'a str,
    /// The last slot this node saw recorded; the fire happens only if it is still the one stored.
    pub expected: Option<DateTime<Utc>>,
    /// The slot to record as the last one fired.
    pub new_last: DateTime<Utc>,
    /// The jobs to insert with it.
    pub jobs: Vec<NewJob>,
}

/// A change of one queue's persisted settings (see
/// [`crate::engine::Administration::update_queue_settings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingsUpdate<'a> {
    /// The queue.
    pub queue: &'a str,
    /// The fields to change.
    pub change: QueueSettingsChange,
    /// Store settings for a queue nobody knows yet (else refused with
    /// [`crate::error::Error::UnknownQueue`]).
    pub allow_unknown: bool,
}

/// A finished step of a running job, to record (see [`crate::JobContext::step`]).
#[derive(Debug, Clone, Copy)]
pub struct StepRecord<'a> {
    /// The node that runs the job.
    pub node: &'a str,
    /// The job.
    pub job: i64,
    /// The attempt that ran the step: a stale run (rescued and run elsewhere) records nothing.
    pub attempt: u32,
    /// The step's name, unique within the job.
    pub name: &'a str,
    /// Its value, encoded.
    pub output: &'a serde_json::Value,
}

/// A job's completion written in its own transaction (see [`crate::JobTx`]), with the guard of
/// the batched acks: only while the row is still `executing` by `node` in `attempt` under `claim`.
#[derive(Debug, Clone, Copy)]
pub struct TxCompletion<'a> {
    /// The node that runs the job.
    pub node: &'a str,
    /// The job.
    pub job: i64,
    /// The attempt that completes it.
    pub attempt: u32,
    /// The claim stamp of this run ([`super::FetchedJob::claim`]).
    pub claim: i64,
    /// The result to record with the completion, if any.
    pub output: Option<&'a serde_json::Value>,
}
