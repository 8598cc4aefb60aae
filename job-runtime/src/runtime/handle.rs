//! The handle on a running node: queue controls, look-ups, and shutdown.

use std::sync::Arc;

use super::control::StopReason;
use super::lifecycle::{self, Supervisor};
use super::queue::{QueueInfo, QueueState};
use super::shared::Shared;
use crate::engine::{Engine, JobRow, NodeRow, QueueSettingsChange, RateLimit};
use crate::error::{Error, Result};
use crate::state::JobState;
use crate::types::{SequencePolicy, SettingsUpdate};

/// A running node. Dropping it without [`Runtime::shutdown`] stops nothing cleanly: call
/// `shutdown` so running jobs finish or are handed back.
pub struct Runtime {
    shared: Arc<Shared>,
    supervisor: Supervisor,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("node", &self.shared.node).finish_non_exhaustive()
    }
}

impl Runtime {
    pub(crate) fn new(shared: Arc<Shared>, supervisor: Supervisor) -> Self {
        Runtime { shared, supervisor }
    }

    /// This node's name.
    pub fn node_name(&self) -> &str {
        &self.shared.node
    }

    /// The engine this node runs on.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.shared.engine
    }

    fn queue(&self, name: &str) -> Result<&Arc<QueueState>> {
        self.shared
            .queues
            .get(name)
            .ok_or_else(|| Error::InvalidOption(format!("queue `{name}` does not run on this node")))
    }

    /// Stops fetching on `queue` on this node; running jobs finish, and jobs claimed ahead (see
    /// [`RuntimeBuilder::prefetch`]) go back to `available` unstarted.
    ///
    /// Returns once no fetch of this queue is in flight: a job inserted after it returns does not
    /// start on this node until [`resume_queue`](Self::resume_queue). A fetch waiting on an
    /// unreachable database is waited for too, at most until the pool gives up on it.
    pub async fn pause_queue(&self, queue: &str) -> Result<()> {
        let q = self.queue(queue)?;
        q.set_paused(true);
        drop(q.fetch_gate().await);
        self.shared.release_buffered(q);
        Ok(())
    }

    /// Fetches again on `queue`.
    pub fn resume_queue(&self, queue: &str) -> Result<()> {
        self.queue(queue)?.set_paused(false);
        Ok(())
    }

    /// Changes the concurrency of `queue` on this node. Lowering it lets running jobs finish and
    /// starts no new ones until the count is under the new limit.
    pub fn scale_queue(&self, queue: &str, concurrency: usize) -> Result<()> {
        if concurrency == 0 {
            return Err(Error::InvalidOption(
                "concurrency must be at least 1; pause the queue instead".into(),
            ));
        }
        self.queue(queue)?.set_limit(concurrency);
        Ok(())
    }

    /// Pauses `queue` on every node, now and for nodes started later (persisted).
    ///
    /// Like every `*_everywhere` method and [`set_global_limit`](Self::set_global_limit), refused
    /// with [`Error::UnknownQueue`] for a queue that no node runs and that has no jobs and no stored
    /// settings (a typo, most often). To store settings for a queue that nodes will run later, call
    /// [`crate::engine::Administration::update_queue_settings`] with `allow_unknown` (through [`Runtime::engine`]).
    pub async fn pause_queue_everywhere(&self, queue: &str) -> Result<()> {
        self.change_settings(queue, |c| c.paused = Some(true)).await
    }

    /// Resumes `queue` on every node (persisted).
    pub async fn resume_queue_everywhere(&self, queue: &str) -> Result<()> {
        self.change_settings(queue, |c| c.paused = Some(false)).await
    }

    /// Sets the concurrency of `queue` on every node (persisted).
    pub async fn scale_queue_everywhere(&self, queue: &str, concurrency: u32) -> Result<()> {
        if concurrency == 0 {
            return Err(Error::InvalidOption(
                "concurrency must be at least 1; pause the queue instead".into(),
            ));
        }
        self.change_settings(queue, |c| c.concurrency = Some(Some(concurrency))).await
    }

    /// Sets or clears the cluster-wide limit of `queue` (persisted).
    pub async fn set_global_limit(&self, queue: &str, limit: Option<u32>) -> Result<()> {
        if limit == Some(0) {
            return Err(Error::InvalidOption(
                "a global limit must be at least 1; pause the queue instead".into(),
            ));
        }
        self.change_settings(queue, |c| c.global_limit = Some(limit)).await
    }

    /// Sets or clears the rate limit of `queue` on every node (persisted): at most `rate.limit`
    /// jobs started in any window of `rate.window`. See [`crate::RuntimeBuilder::rate_limit`].
    ///
    /// ```no_run
    /// # async fn demo(runtime: jobsmith::Runtime) -> jobsmith::Result<()> {
    /// runtime.set_rate_limit("benefits", Some(jobsmith::RateLimit::per_second(5))).await?;
    /// runtime.set_rate_limit("benefits", None).await?; // unlimited again
    /// # Ok(()) }
    /// ```
    pub async fn set_rate_limit(&self, queue: &str, rate: Option<RateLimit>) -> Result<()> {
        self.change_settings(queue, |c| c.rate_limit = Some(rate)).await
    }

    /// Sets or clears the partition limit of `queue` on every node (persisted): at most `limit`
    /// jobs of one partition executing at once, partitions in turn. See
    /// [`crate::RuntimeBuilder::partition_limit`].
    pub async fn set_partition_limit(&self, queue: &str, limit: Option<u32>) -> Result<()> {
        if limit == Some(0) {
            return Err(Error::InvalidOption(
                "a partition limit must be at least 1; pause the queue instead".into(),
            ));
        }
        self.change_settings(queue, |c| c.partition_limit = Some(limit)).await
    }

    /// Runs each partition of `queue` as a sequence with `policy` on every node (persisted), or
    /// with `None` stops. See [`crate::RuntimeBuilder::sequence`].
    pub async fn set_sequence(&self, queue: &str, policy: Option<SequencePolicy>) -> Result<()> {
        self.change_settings(queue, |c| c.sequence = Some(policy)).await
    }

    /// Sets the weight of `partition` in `queue` (stored; every node's next fetch uses it), or
    /// with `None` clears it: in each turn of a partitioned fetch the partition gives `weight`
    /// jobs where a partition without a weight gives one, so under contention it gets that many
    /// times the share. 1 to [`crate::MAX_PARTITION_WEIGHT`]. See the flow-control guide and
    /// ADR 26.
    ///
    /// ```no_run
    /// # async fn demo(runtime: jobsmith::Runtime) -> jobsmith::Result<()> {
    /// // The big clinic gets three times a small one's share of the reminders queue.
    /// runtime.set_partition_weight("reminders", "clinic-7", Some(3)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_partition_weight(
        &self,
        queue: &str,
        partition: &str,
        weight: Option<u32>,
    ) -> Result<()> {
        self.shared.engine.set_partition_weight(queue, partition, weight).await
    }

    /// Cron entries at run time, as [`crate::Db::cron`].
    pub fn cron(&self) -> crate::CronAdmin<'_> {
        crate::CronAdmin::new(self.shared.engine.as_ref())
    }

    /// Chooses the failure policy of one sequence (the partition `partition` of the sequenced
    /// `queue`) in place of the queue's, or with `None` clears the choice: the ledger queue waits
    /// for a discarded job to be dealt with, but one account's sequence may go on after a
    /// discard. Stored, so every node's next fetch uses it; no effect while the queue is not
    /// sequenced. See the flow-control guide and ADR 27.
    ///
    /// ```no_run
    /// # async fn demo(runtime: jobsmith::Runtime) -> jobsmith::Result<()> {
    /// use jobsmith::SequencePolicy;
    /// runtime.set_sequence_policy("ledger", "account-7", Some(SequencePolicy::ContinueAfterDiscard)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_sequence_policy(
        &self,
        queue: &str,
        partition: &str,
        policy: Option<SequencePolicy>,
    ) -> Result<()> {
        self.shared.engine.set_sequence_policy(queue, partition, policy).await
    }

    async fn change_settings(
        &self,
        queue: &str,
        change: impl FnOnce(&mut QueueSettingsChange),
    ) -> Result<()> {
        let mut fields = QueueSettingsChange::default();
        change(&mut fields);
        // One atomic write of just these fields: a concurrent change of another field survives.
        let update = SettingsUpdate { queue, change: fields, allow_unknown: false };
        self.shared.engine.update_queue_settings(&update).await?;
        // Apply here at once; other nodes apply on the notification (or at their start).
        self.shared.apply_settings().await
    }

    /// Whether this node holds the leader lease.
    pub fn is_leader(&self) -> bool {
        self.shared.is_leader()
    }

    /// The current leader, if any node holds a live lease.
    pub async fn leader(&self) -> Result<Option<String>> {
        self.shared.engine.leader().await
    }

    /// Nodes with a live heartbeat.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>> {
        self.shared.engine.live_nodes(self.shared.config.node_ttl).await
    }

    /// The state of every queue on this node, sorted by name.
    pub fn queues(&self) -> Vec<QueueInfo> {
        let mut all: Vec<QueueInfo> =
            self.shared.queues.values().map(|q| QueueInfo::from(q.as_ref())).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Cancels a job that has not finished, wherever it is: waiting rows become `cancelled`, and a
    /// running one has its token fired on the node that runs it. Returns the state it had, or
    /// `None` if it had already finished or does not exist.
    pub async fn cancel_job(&self, id: i64) -> Result<Option<JobState>> {
        let before = self.shared.engine.cancel_job(id).await?;
        if before == Some(JobState::Executing) {
            self.shared.stop_local_job(id, StopReason::Cancelled);
        }
        Ok(before)
    }

    /// Runs a discarded or cancelled job again (one more attempt is allowed). `false` if the job is
    /// in no such state.
    pub async fn retry_job(&self, id: i64) -> Result<bool> {
        self.shared.engine.retry_job(id).await
    }

    /// One job by id.
    pub async fn get_job(&self, id: i64) -> Result<Option<JobRow>> {
        self.shared.engine.get_job(id).await
    }

    /// Stops the node cleanly: no new fetches; running jobs get the grace period; jobs still
    /// running after it have their token fired and go back to `available` without using up the
    /// attempt; every result is written before this returns.
    pub async fn shutdown(self) -> Result<()> {
        lifecycle::shutdown(self.shared, self.supervisor).await;
        Ok(())
    }
}
