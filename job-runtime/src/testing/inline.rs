//! Inline mode: an engine wrapper that runs every job inserted through it before the insert
//! returns, and every job a [`crate::Transaction`] inserted once it commits. Everything else is
//! passed to the engine it wraps, so an inline `Db` is a real database that also runs its jobs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Drain, drain_queue_with};
use crate::app_state::States;
use crate::db::Db;
use crate::engine::{
    Ack, Administration, CronFire, Engine, ExecutingRow, FetchRequest, FetchedJob, HandBack, Heartbeat,
    InsertedJob, JobFilter, JobRow, JobState, MinuteStats, NewJob, NodeRow, Notifications, Page,
    PartitionRequest, PartitionWeight, PartitionedFetch, QueueSettings, RateLimit, RateLimitedFetch,
    RescueReport, RescueRequest, Retention, RuntimeOps, SequenceOverride, SequencePolicy, SettingsUpdate,
    Signal, StageReport, StateCount,
};
use crate::error::Result;
use crate::transaction::new_work;

/// See the module doc. `plain` is the same database without inline mode: the helpers drain
/// through it, and a job that inserts through the inline `Db` drains again, recursively.
pub(crate) struct InlineEngine {
    inner: Arc<dyn Engine>,
    plain: Db,
    /// What the jobs run inline take as `State<T>`.
    states: States,
}

impl InlineEngine {
    /// `db` in inline mode.
    pub(crate) fn wrap(db: &Db, states: States) -> Arc<dyn Engine> {
        Arc::new(InlineEngine { inner: db.engine().clone(), plain: db.clone(), states })
    }

    /// Runs every job of `queues`, scheduled ones too, and what those jobs insert.
    async fn run(&self, queues: &[String]) -> Result<()> {
        let drain = Drain { with_scheduled: true, recursive: true };
        for queue in queues {
            Box::pin(drain_queue_with(&self.plain, queue, drain, &self.states)).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl RuntimeOps for InlineEngine {
    async fn publish_catalog(
        &self,
        code: &[crate::types::CronEntryWrite],
        workers: &[crate::types::WorkerRow],
    ) -> Result<()> {
        self.inner.publish_catalog(code, workers).await
    }
    async fn set_cron_error(&self, name: &str, error: Option<&str>) -> Result<()> {
        self.inner.set_cron_error(name, error).await
    }
    async fn migrate(&self) -> Result<()> {
        self.inner.migrate().await
    }
    async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>> {
        let rows = self.inner.insert(jobs).await?;
        self.run(&new_work(&rows)).await?;
        Ok(rows)
    }
    async fn committed(&self, queues: &[String]) -> Result<()> {
        self.run(queues).await
    }
    async fn fetch(&self, request: &FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        self.inner.fetch(request).await
    }
    async fn fetch_rate_limited(
        &self,
        request: &FetchRequest<'_>,
        rate: RateLimit,
    ) -> Result<RateLimitedFetch> {
        self.inner.fetch_rate_limited(request, rate).await
    }
    async fn fetch_partitioned(
        &self,
        request: &FetchRequest<'_>,
        partitions: PartitionRequest<'_>,
    ) -> Result<PartitionedFetch> {
        self.inner.fetch_partitioned(request, partitions).await
    }
    async fn refund_rate_starts(&self, queue: &str, partition: Option<&str>, stamps: &[i64]) -> Result<()> {
        self.inner.refund_rate_starts(queue, partition, stamps).await
    }
    async fn ack(&self, node: &str, acks: &[Ack]) -> Result<u64> {
        self.inner.ack(node, acks).await
    }
    async fn stage(&self, limit: u32) -> Result<StageReport> {
        self.inner.stage(limit).await
    }
    async fn now(&self) -> Result<DateTime<Utc>> {
        self.inner.now().await
    }
    async fn heartbeat(&self, beat: &Heartbeat<'_>) -> Result<()> {
        self.inner.heartbeat(beat).await
    }
    async fn remove_node(&self, node: &str) -> Result<()> {
        self.inner.remove_node(node).await
    }
    async fn live_nodes(&self, ttl: Duration) -> Result<Vec<NodeRow>> {
        self.inner.live_nodes(ttl).await
    }
    async fn lead(&self, node: &str, ttl: Duration) -> Result<bool> {
        self.inner.lead(node, ttl).await
    }
    async fn resign(&self, node: &str) -> Result<()> {
        self.inner.resign(node).await
    }
    async fn leader(&self) -> Result<Option<String>> {
        self.inner.leader().await
    }
    async fn rescue(&self, request: &RescueRequest<'_>) -> Result<RescueReport> {
        self.inner.rescue(request).await
    }
    async fn release_node(&self, node: &str) -> Result<RescueReport> {
        self.inner.release_node(node).await
    }
    async fn executing(&self, node: &str) -> Result<Vec<ExecutingRow>> {
        self.inner.executing(node).await
    }
    async fn hand_back(&self, request: &HandBack<'_>) -> Result<Vec<i64>> {
        self.inner.hand_back(request).await
    }
    async fn prune(&self, retention: &Retention, limit: u32) -> Result<u64> {
        self.inner.prune(retention, limit).await
    }
    async fn prune_rate_logs(&self) -> Result<u64> {
        self.inner.prune_rate_logs().await
    }
    async fn vacuum_jobs(&self, min_dead: u64) -> Result<Option<u64>> {
        self.inner.vacuum_jobs(min_dead).await
    }
    async fn cron_last(&self, name: &str) -> Result<Option<DateTime<Utc>>> {
        self.inner.cron_last(name).await
    }
    async fn cron_fire(&self, fire: CronFire<'_>) -> Result<bool> {
        self.inner.cron_fire(fire).await
    }
    async fn queue_settings(&self) -> Result<Vec<QueueSettings>> {
        self.inner.queue_settings().await
    }
    async fn step_output(&self, job: i64, name: &str) -> Result<Option<serde_json::Value>> {
        self.inner.step_output(job, name).await
    }
    async fn record_step(&self, step: &crate::types::StepRecord<'_>) -> Result<bool> {
        self.inner.record_step(step).await
    }
    async fn begin_job_tx(&self) -> Result<crate::transaction::OpenTx> {
        self.inner.begin_job_tx().await
    }
    async fn complete_in_tx(
        &self,
        tx: &mut crate::Transaction,
        done: &crate::types::TxCompletion<'_>,
    ) -> Result<bool> {
        self.inner.complete_in_tx(tx, done).await
    }
    async fn step_output_in_tx(
        &self,
        tx: &mut crate::Transaction,
        job: i64,
        name: &str,
    ) -> Result<Option<serde_json::Value>> {
        self.inner.step_output_in_tx(tx, job, name).await
    }
    async fn record_step_in_tx(
        &self,
        tx: &mut crate::Transaction,
        step: &crate::types::StepRecord<'_>,
    ) -> Result<bool> {
        self.inner.record_step_in_tx(tx, step).await
    }
    fn completed_in_tx(&self, job: i64) {
        self.inner.completed_in_tx(job)
    }
    async fn get_job(&self, id: i64) -> Result<Option<JobRow>> {
        self.inner.get_job(id).await
    }
    async fn cancel_job(&self, id: i64) -> Result<Option<JobState>> {
        self.inner.cancel_job(id).await
    }
}

#[async_trait]
impl Notifications for InlineEngine {
    async fn listen(&self, signals: mpsc::UnboundedSender<Signal>, stop: CancellationToken) {
        self.inner.listen(signals, stop).await
    }
    async fn watch(&self, id: i64) -> Result<Option<JobState>> {
        self.inner.watch(id).await
    }
    async fn listen_finished(
        &self,
        finished: mpsc::UnboundedSender<Vec<i64>>,
        ready: tokio::sync::oneshot::Sender<()>,
        stop: CancellationToken,
    ) {
        self.inner.listen_finished(finished, ready, stop).await
    }
}

#[async_trait]
impl Administration for InlineEngine {
    async fn run_query(
        &self,
        m: &crate::types::JobMatch,
        op: crate::types::QueryOp,
    ) -> Result<crate::types::QueryOutput> {
        self.inner.run_query(m, op).await
    }
    async fn cron_entries(&self) -> Result<Vec<crate::types::CronEntryRow>> {
        self.inner.cron_entries().await
    }
    async fn save_cron_entry(&self, entry: &crate::types::CronEntryWrite) -> Result<()> {
        self.inner.save_cron_entry(entry).await
    }
    async fn remove_cron_entry(&self, name: &str) -> Result<bool> {
        self.inner.remove_cron_entry(name).await
    }
    async fn pause_cron_entry(&self, name: &str, paused: bool) -> Result<bool> {
        self.inner.pause_cron_entry(name, paused).await
    }
    async fn run_cron_entry(&self, name: &str) -> Result<Option<crate::types::InsertedJob>> {
        self.inner.run_cron_entry(name).await
    }
    async fn workers(&self) -> Result<Vec<crate::types::WorkerRow>> {
        self.inner.workers().await
    }
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<JobRow>> {
        self.inner.list_jobs(filter, page).await
    }
    async fn retry_job(&self, id: i64) -> Result<bool> {
        self.inner.retry_job(id).await
    }
    async fn retry_jobs(&self, filter: &JobFilter) -> Result<u64> {
        self.inner.retry_jobs(filter).await
    }
    async fn delete_job(&self, id: i64) -> Result<bool> {
        self.inner.delete_job(id).await
    }
    async fn update_queue_settings(&self, update: &SettingsUpdate<'_>) -> Result<QueueSettings> {
        self.inner.update_queue_settings(update).await
    }
    async fn set_partition_weight(&self, queue: &str, partition: &str, weight: Option<u32>) -> Result<()> {
        self.inner.set_partition_weight(queue, partition, weight).await
    }
    async fn partition_weights(&self, queue: Option<&str>) -> Result<Vec<PartitionWeight>> {
        self.inner.partition_weights(queue).await
    }
    async fn set_sequence_policy(
        &self,
        queue: &str,
        partition: &str,
        policy: Option<SequencePolicy>,
    ) -> Result<()> {
        self.inner.set_sequence_policy(queue, partition, policy).await
    }
    async fn sequence_policies(&self, queue: Option<&str>) -> Result<Vec<SequenceOverride>> {
        self.inner.sequence_policies(queue).await
    }
    async fn throughput(&self, window: Duration, queue: Option<&str>) -> Result<Vec<MinuteStats>> {
        self.inner.throughput(window, queue).await
    }
    async fn get_result(&self, id: i64) -> Result<Option<serde_json::Value>> {
        self.inner.get_result(id).await
    }
    async fn count_by_state(&self) -> Result<Vec<StateCount>> {
        self.inner.count_by_state().await
    }
    async fn count_unfinished(&self) -> Result<Vec<StateCount>> {
        self.inner.count_unfinished().await
    }
}

impl Engine for InlineEngine {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn schema(&self) -> &str {
        self.inner.schema()
    }
    fn is_instrumented(&self) -> bool {
        // The engine it wraps is, and every call passes through it.
        self.inner.is_instrumented()
    }
}
