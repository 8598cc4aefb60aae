//! What the CLI and the dashboard do to jobs and queues beside the runtime: listings, retries,
//! deletes, queue settings, statistics.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::types::{
    CronEntryRow, CronEntryWrite, InsertedJob, JobFilter, JobMatch, JobRow, MinuteStats, Page,
    PartitionWeight, QueryOp, QueryOutput, QueueSettings, SequenceOverride, SequencePolicy, SettingsUpdate,
    StateCount, WorkerRow,
};

/// The administration operations (CLI, dashboard, [`crate::Runtime`]'s handle). Part of
/// [`super::Engine`].
#[async_trait]
pub trait Administration: Send + Sync + 'static {
    /// Jobs matching `filter`, newest first, one page.
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<JobRow>>;

    /// Makes a discarded or cancelled job available again with one more attempt; `false` if the
    /// job is not in such a state.
    async fn retry_job(&self, id: i64) -> Result<bool>;

    /// Retries every discarded or cancelled job matching `filter` (as [`Administration::retry_job`]);
    /// returns how many.
    async fn retry_jobs(&self, filter: &JobFilter) -> Result<u64>;

    /// Deletes a job that is not executing; false if it is executing or does not exist.
    async fn delete_job(&self, id: i64) -> Result<bool>;

    /// Changes the fields of the update's `queue`'s persisted settings that its `change` names,
    /// and only those, in one atomic write (concurrent changes of different fields all survive),
    /// then tells every node. Returns the settings after the change.
    ///
    /// Refused with [`crate::Error::UnknownQueue`], storing nothing, when the queue is unknown and
    /// `allow_unknown` is false. A queue is known when it has job rows, has stored settings, or is
    /// listed by a node row (a live node, or a dead one until the leader forgets it).
    async fn update_queue_settings(&self, update: &SettingsUpdate<'_>) -> Result<QueueSettings>;

    /// Sets `partition`'s weight in `queue` (its share of each turn of a partitioned fetch,
    /// ADR 26), or with `None` clears it (back to 1). Stored, so every node's next fetch uses
    /// it. Refuses a weight outside 1 to [`crate::MAX_PARTITION_WEIGHT`] and a key no job could
    /// have, storing nothing.
    async fn set_partition_weight(&self, queue: &str, partition: &str, weight: Option<u32>) -> Result<()>;

    /// The stored partition weights of `queue` (of every queue with `None`), by queue and key.
    async fn partition_weights(&self, queue: Option<&str>) -> Result<Vec<PartitionWeight>>;

    /// Chooses the failure policy of one sequence, the partition `partition` of the sequenced
    /// `queue`, in place of the queue's (ADR 27), or with `None` clears the choice (back to the
    /// queue's). Stored, so every node's next fetch uses it; it has no effect while the queue is
    /// not sequenced. Refuses a key no job could have, storing nothing.
    async fn set_sequence_policy(
        &self,
        queue: &str,
        partition: &str,
        policy: Option<SequencePolicy>,
    ) -> Result<()>;

    /// The sequences of `queue` (of every queue with `None`) with a policy of their own, by queue
    /// and key.
    async fn sequence_policies(&self, queue: Option<&str>) -> Result<Vec<SequenceOverride>>;

    /// Runs a typed query's operation ([`crate::Query`]: count, list, cancel, retry, delete,
    /// update) on the jobs `m` matches, as [`crate::Db::query`] does: the dashboard's and the
    /// CLI's bulk actions, which hold an engine rather than a pool.
    async fn run_query(&self, m: &JobMatch, op: QueryOp) -> Result<QueryOutput>;

    /// Every cron entry (the leader's code entries as it last published them, and the stored
    /// ones) with its last slot and that slot's job, by name.
    async fn cron_entries(&self) -> Result<Vec<CronEntryRow>>;

    /// Adds `entry` as a stored ([`crate::types::CronSource::Database`]) cron entry, or replaces
    /// the stored entry of that name (keeping its pause and its last slot). Refused, storing
    /// nothing, when a code entry has the name. The leader picks it up on its next cron pass.
    async fn save_cron_entry(&self, entry: &CronEntryWrite) -> Result<()>;

    /// Removes the stored cron entry `name` and its bookkeeping; `false` if there is none.
    /// Refused for a code entry.
    async fn remove_cron_entry(&self, name: &str) -> Result<bool>;

    /// Pauses (its slots pass without jobs) or resumes any cron entry; `false` if there is none.
    async fn pause_cron_entry(&self, name: &str, paused: bool) -> Result<bool>;

    /// Inserts one job of cron entry `name` now, outside its schedule (not unique, not counted as
    /// a slot); `None` if there is no such entry.
    async fn run_cron_entry(&self, name: &str) -> Result<Option<InsertedJob>>;

    /// The job types the leader runs, as it last published them, by name.
    async fn workers(&self) -> Result<Vec<WorkerRow>>;

    /// Completed jobs and failed attempts per minute over the last `window`, oldest first; of one
    /// queue with `Some`.
    async fn throughput(&self, window: Duration, queue: Option<&str>) -> Result<Vec<MinuteStats>>;

    /// The result a completed job recorded (see [`crate::Outcome::CompleteWith`]), as JSON; `None`
    /// if it recorded none, has not completed, or was pruned.
    async fn get_result(&self, id: i64) -> Result<Option<serde_json::Value>>;

    /// Job counts per queue and state, for status views and tests.
    async fn count_by_state(&self) -> Result<Vec<StateCount>>;

    /// [`Administration::count_by_state`] for the states a job can still leave (available,
    /// scheduled, executing, retryable). An engine whose finished rows are many should answer it
    /// without reading them (the gauges ask every few seconds; the finished counts rarely).
    async fn count_unfinished(&self) -> Result<Vec<StateCount>> {
        let mut counts = self.count_by_state().await?;
        counts.retain(|c| !c.state.is_final());
        Ok(counts)
    }
}
