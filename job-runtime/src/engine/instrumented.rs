//! Wraps any engine so every call gets one tracing span (`jobsmith.engine`, with the operation
//! and the engine's name), instead of each engine instrumenting itself.

use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Engine;
use crate::error::Result;
use crate::types::{
    Ack, ExecutingRow, FetchRequest, FetchedJob, Heartbeat, InsertedJob, JobFilter, JobRow, JobState,
    MinuteStats, NewJob, NodeRow, Page, QueueSettings, QueueSettingsChange, RescueReport, RescueRequest,
    Retention, Signal, StageReport, StateCount,
};

/// An engine whose calls are traced.
pub struct Instrumented(pub Arc<dyn Engine>);

impl Instrumented {
    /// Wraps `engine` unless it is wrapped already.
    pub fn wrap(engine: Arc<dyn Engine>) -> Arc<dyn Engine> {
        if engine.is_instrumented() { engine } else { Arc::new(Instrumented(engine)) }
    }
}

/// One span per call; and since every call of the runtime, the CLI and the dashboard passes
/// here, this is where a missing table becomes [`crate::Error::NotMigrated`].
macro_rules! traced {
    ($self:ident, $op:literal, $call:expr) => {{
        let span = tracing::debug_span!(target: "jobsmith", "jobsmith.engine", op = $op, engine = $self.0.name());
        $call.instrument(span).await.map_err(|e| e.or_not_migrated($self.0.schema()))
    }};
}

#[async_trait]
impl Engine for Instrumented {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn is_instrumented(&self) -> bool {
        true
    }
    async fn migrate(&self) -> Result<()> {
        traced!(self, "migrate", self.0.migrate())
    }
    async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>> {
        let out = traced!(self, "insert", self.0.insert(jobs))?;
        crate::insert::record_inserted(&out);
        Ok(out)
    }
    async fn fetch(&self, request: &FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        traced!(self, "fetch", self.0.fetch(request))
    }
    async fn ack(&self, node: &str, acks: &[Ack]) -> Result<u64> {
        traced!(self, "ack", self.0.ack(node, acks))
    }
    async fn now(&self) -> Result<DateTime<Utc>> {
        traced!(self, "now", self.0.now())
    }
    async fn heartbeat(&self, beat: &Heartbeat<'_>) -> Result<()> {
        traced!(self, "heartbeat", self.0.heartbeat(beat))
    }
    async fn remove_node(&self, node: &str) -> Result<()> {
        traced!(self, "remove_node", self.0.remove_node(node))
    }
    async fn live_nodes(&self, ttl: Duration) -> Result<Vec<NodeRow>> {
        traced!(self, "live_nodes", self.0.live_nodes(ttl))
    }
    async fn lead(&self, node: &str, ttl: Duration) -> Result<bool> {
        traced!(self, "lead", self.0.lead(node, ttl))
    }
    async fn resign(&self, node: &str) -> Result<()> {
        traced!(self, "resign", self.0.resign(node))
    }
    async fn leader(&self) -> Result<Option<String>> {
        traced!(self, "leader", self.0.leader())
    }
    async fn rescue(&self, request: &RescueRequest<'_>) -> Result<RescueReport> {
        traced!(self, "rescue", self.0.rescue(request))
    }
    async fn release_node(&self, node: &str) -> Result<RescueReport> {
        traced!(self, "release_node", self.0.release_node(node))
    }
    async fn executing(&self, node: &str) -> Result<Vec<ExecutingRow>> {
        traced!(self, "executing", self.0.executing(node))
    }
    async fn hand_back(&self, node: &str, claims: &[(i64, i64)], reason: &str) -> Result<Vec<i64>> {
        traced!(self, "hand_back", self.0.hand_back(node, claims, reason))
    }
    async fn prune(&self, retention: &Retention, limit: u32) -> Result<u64> {
        traced!(self, "prune", self.0.prune(retention, limit))
    }
    async fn cron_last(&self, name: &str) -> Result<Option<DateTime<Utc>>> {
        traced!(self, "cron_last", self.0.cron_last(name))
    }
    async fn cron_fire(
        &self,
        name: &str,
        expected: Option<DateTime<Utc>>,
        new_last: DateTime<Utc>,
        jobs: Vec<NewJob>,
    ) -> Result<bool> {
        traced!(self, "cron_fire", self.0.cron_fire(name, expected, new_last, jobs))
    }
    async fn queue_settings(&self) -> Result<Vec<QueueSettings>> {
        traced!(self, "queue_settings", self.0.queue_settings())
    }
    async fn stage(&self, limit: u32) -> Result<StageReport> {
        traced!(self, "stage", self.0.stage(limit))
    }
    async fn cancel_job(&self, id: i64) -> Result<Option<JobState>> {
        traced!(self, "cancel_job", self.0.cancel_job(id))
    }
    async fn retry_job(&self, id: i64) -> Result<bool> {
        traced!(self, "retry_job", self.0.retry_job(id))
    }
    async fn get_job(&self, id: i64) -> Result<Option<JobRow>> {
        traced!(self, "get_job", self.0.get_job(id))
    }
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<JobRow>> {
        traced!(self, "list_jobs", self.0.list_jobs(filter, page))
    }
    async fn delete_job(&self, id: i64) -> Result<bool> {
        traced!(self, "delete_job", self.0.delete_job(id))
    }
    async fn retry_jobs(&self, filter: &JobFilter) -> Result<u64> {
        traced!(self, "retry_jobs", self.0.retry_jobs(filter))
    }
    async fn throughput(&self, window: Duration) -> Result<Vec<MinuteStats>> {
        traced!(self, "throughput", self.0.throughput(window))
    }
    async fn make_due(&self, queue: &str) -> Result<u64> {
        traced!(self, "make_due", self.0.make_due(queue))
    }
    async fn claim(&self, ids: &[i64], node: &str) -> Result<Vec<FetchedJob>> {
        traced!(self, "claim", self.0.claim(ids, node))
    }
    async fn count_by_state(&self) -> Result<Vec<StateCount>> {
        traced!(self, "count_by_state", self.0.count_by_state())
    }
    fn schema(&self) -> &str {
        self.0.schema()
    }
    async fn update_queue_settings(
        &self,
        queue: &str,
        change: &QueueSettingsChange,
        allow_unknown: bool,
    ) -> Result<QueueSettings> {
        traced!(self, "update_queue_settings", self.0.update_queue_settings(queue, change, allow_unknown))
    }
    async fn listen(&self, signals: mpsc::UnboundedSender<Signal>, stop: CancellationToken) {
        self.0.listen(signals, stop).await
    }
}
