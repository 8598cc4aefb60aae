//! Wraps any engine so every call gets one tracing span (`jobsmith.engine`, with the operation
//! and the engine's name), instead of each engine instrumenting itself.
//!
//! Inserts also come from outside any engine: `job.insert(&mut *tx)` and `insert_all` write
//! through the caller's own connection. They and [`super::RuntimeOps::insert`] all cross one
//! crate-private function here, `insert`, so every insert gets the same span, the same metrics
//! and the same error mapping.

use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Administration, Engine, Notifications, RuntimeOps};
use crate::error::Result;
use crate::types::{
    Ack, CronFire, ExecutingRow, FetchRequest, FetchedJob, HandBack, Heartbeat, InsertedJob, JobFilter,
    JobRow, JobState, MinuteStats, NewJob, NodeRow, Page, PartitionRequest, PartitionWeight,
    PartitionedFetch, QueueSettings, RateLimit, RateLimitedFetch, RescueReport, RescueRequest, Retention,
    SequenceOverride, SequencePolicy, SettingsUpdate, Signal, StageReport, StateCount,
};

/// An engine whose calls are traced.
pub struct Instrumented(pub Arc<dyn Engine>);

impl Instrumented {
    /// Wraps `engine` unless it is wrapped already.
    pub fn wrap(engine: Arc<dyn Engine>) -> Arc<dyn Engine> {
        if engine.is_instrumented() { engine } else { Arc::new(Instrumented(engine)) }
    }
}

/// The span of one engine operation `op` on engine `engine`.
fn span(op: &'static str, engine: &'static str) -> tracing::Span {
    tracing::debug_span!(target: "jobsmith", "jobsmith.engine", op = op, engine = engine)
}

/// One span per call; and since every call of the runtime, the CLI and the dashboard passes
/// here, this is where a missing table becomes [`crate::Error::NotMigrated`].
macro_rules! traced {
    ($self:ident, $op:literal, $call:expr) => {{ $call.instrument(span($op, $self.0.name())).await.map_err(|e| e.or_not_migrated($self.0.schema())) }};
}

/// The one seam of every insert, through an engine or the caller's connection: runs `insert` (on
/// engine `engine`, for the instance `schema`) in the span of the `insert` operation, names a
/// missing table [`crate::Error::NotMigrated`], and records the metrics and a debug event of each
/// new row (unique conflicts are not inserts).
pub(crate) async fn insert(
    engine: &'static str,
    schema: &str,
    insert: impl Future<Output = Result<Vec<InsertedJob>>>,
) -> Result<Vec<InsertedJob>> {
    let rows = insert.instrument(span("insert", engine)).await.map_err(|e| e.or_not_migrated(schema))?;
    // One counter update per run of rows of the same queue and worker, not one per row: a bulk
    // insert of one kind costs one label lookup, not thousands.
    let mut new = rows.iter().filter(|r| !r.conflict).peekable();
    while let Some(first) = new.next() {
        let mut count = 1;
        while new.next_if(|r| r.job.queue == first.job.queue && r.job.worker == first.job.worker).is_some() {
            count += 1;
        }
        crate::telemetry::inserted(&first.job.queue, &first.job.worker, count);
    }
    if tracing::enabled!(target: "jobsmith", tracing::Level::DEBUG) {
        for r in rows.iter().filter(|r| !r.conflict) {
            tracing::debug!(target: "jobsmith", job_id = r.job.id, queue = %r.job.queue, worker = %r.job.worker, state = %r.job.state, "job inserted");
        }
    }
    Ok(rows)
}

#[async_trait]
impl RuntimeOps for Instrumented {
    async fn publish_catalog(
        &self,
        code: &[crate::types::CronEntryWrite],
        workers: &[crate::types::WorkerRow],
    ) -> Result<()> {
        traced!(self, "publish_catalog", self.0.publish_catalog(code, workers))
    }
    async fn set_cron_error(&self, name: &str, error: Option<&str>) -> Result<()> {
        traced!(self, "set_cron_error", self.0.set_cron_error(name, error))
    }
    async fn migrate(&self) -> Result<()> {
        traced!(self, "migrate", self.0.migrate())
    }
    async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>> {
        insert(self.0.name(), self.0.schema(), self.0.insert(jobs)).await
    }
    async fn committed(&self, queues: &[String]) -> Result<()> {
        self.0.committed(queues).await
    }
    async fn fetch(&self, request: &FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        traced!(self, "fetch", self.0.fetch(request))
    }
    async fn fetch_rate_limited(
        &self,
        request: &FetchRequest<'_>,
        rate: RateLimit,
    ) -> Result<RateLimitedFetch> {
        traced!(self, "fetch_rate_limited", self.0.fetch_rate_limited(request, rate))
    }
    async fn fetch_partitioned(
        &self,
        request: &FetchRequest<'_>,
        partitions: PartitionRequest<'_>,
    ) -> Result<PartitionedFetch> {
        traced!(self, "fetch_partitioned", self.0.fetch_partitioned(request, partitions))
    }
    async fn refund_rate_starts(&self, queue: &str, partition: Option<&str>, stamps: &[i64]) -> Result<()> {
        traced!(self, "refund_rate_starts", self.0.refund_rate_starts(queue, partition, stamps))
    }
    async fn ack(&self, node: &str, acks: &[Ack]) -> Result<u64> {
        traced!(self, "ack", self.0.ack(node, acks))
    }
    async fn stage(&self, limit: u32) -> Result<StageReport> {
        traced!(self, "stage", self.0.stage(limit))
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
    async fn hand_back(&self, request: &HandBack<'_>) -> Result<Vec<i64>> {
        traced!(self, "hand_back", self.0.hand_back(request))
    }
    async fn prune(&self, retention: &Retention, limit: u32) -> Result<u64> {
        traced!(self, "prune", self.0.prune(retention, limit))
    }
    async fn prune_rate_logs(&self) -> Result<u64> {
        traced!(self, "prune_rate_logs", self.0.prune_rate_logs())
    }
    async fn vacuum_jobs(&self, min_dead: u64) -> Result<Option<u64>> {
        traced!(self, "vacuum_jobs", self.0.vacuum_jobs(min_dead))
    }
    async fn cron_last(&self, name: &str) -> Result<Option<DateTime<Utc>>> {
        traced!(self, "cron_last", self.0.cron_last(name))
    }
    async fn cron_fire(&self, fire: CronFire<'_>) -> Result<bool> {
        traced!(self, "cron_fire", self.0.cron_fire(fire))
    }
    async fn queue_settings(&self) -> Result<Vec<QueueSettings>> {
        traced!(self, "queue_settings", self.0.queue_settings())
    }
    async fn step_output(&self, job: i64, name: &str) -> Result<Option<serde_json::Value>> {
        traced!(self, "step_output", self.0.step_output(job, name))
    }
    async fn record_step(&self, step: &crate::types::StepRecord<'_>) -> Result<bool> {
        traced!(self, "record_step", self.0.record_step(step))
    }
    async fn begin_job_tx(&self) -> Result<crate::transaction::OpenTx> {
        traced!(self, "begin_job_tx", self.0.begin_job_tx())
    }
    async fn complete_in_tx(
        &self,
        tx: &mut crate::Transaction,
        done: &crate::types::TxCompletion<'_>,
    ) -> Result<bool> {
        traced!(self, "complete_in_tx", self.0.complete_in_tx(tx, done))
    }
    async fn step_output_in_tx(
        &self,
        tx: &mut crate::Transaction,
        job: i64,
        name: &str,
    ) -> Result<Option<serde_json::Value>> {
        traced!(self, "step_output_in_tx", self.0.step_output_in_tx(tx, job, name))
    }
    async fn record_step_in_tx(
        &self,
        tx: &mut crate::Transaction,
        step: &crate::types::StepRecord<'_>,
    ) -> Result<bool> {
        traced!(self, "record_step_in_tx", self.0.record_step_in_tx(tx, step))
    }
    fn completed_in_tx(&self, job: i64) {
        self.0.completed_in_tx(job)
    }
    async fn get_job(&self, id: i64) -> Result<Option<JobRow>> {
        traced!(self, "get_job", self.0.get_job(id))
    }
    async fn cancel_job(&self, id: i64) -> Result<Option<JobState>> {
        traced!(self, "cancel_job", self.0.cancel_job(id))
    }
}

#[async_trait]
impl Notifications for Instrumented {
    async fn listen(&self, signals: mpsc::UnboundedSender<Signal>, stop: CancellationToken) {
        self.0.listen(signals, stop).await
    }
    async fn watch(&self, id: i64) -> Result<Option<JobState>> {
        traced!(self, "watch", self.0.watch(id))
    }
    async fn listen_finished(
        &self,
        finished: mpsc::UnboundedSender<Vec<i64>>,
        ready: tokio::sync::oneshot::Sender<()>,
        stop: CancellationToken,
    ) {
        self.0.listen_finished(finished, ready, stop).await
    }
}

#[async_trait]
impl Administration for Instrumented {
    async fn run_query(
        &self,
        m: &crate::types::JobMatch,
        op: crate::types::QueryOp,
    ) -> Result<crate::types::QueryOutput> {
        traced!(self, "run_query", self.0.run_query(m, op))
    }
    async fn cron_entries(&self) -> Result<Vec<crate::types::CronEntryRow>> {
        traced!(self, "cron_entries", self.0.cron_entries())
    }
    async fn save_cron_entry(&self, entry: &crate::types::CronEntryWrite) -> Result<()> {
        traced!(self, "save_cron_entry", self.0.save_cron_entry(entry))
    }
    async fn remove_cron_entry(&self, name: &str) -> Result<bool> {
        traced!(self, "remove_cron_entry", self.0.remove_cron_entry(name))
    }
    async fn pause_cron_entry(&self, name: &str, paused: bool) -> Result<bool> {
        traced!(self, "pause_cron_entry", self.0.pause_cron_entry(name, paused))
    }
    async fn run_cron_entry(&self, name: &str) -> Result<Option<crate::types::InsertedJob>> {
        traced!(self, "run_cron_entry", self.0.run_cron_entry(name))
    }
    async fn workers(&self) -> Result<Vec<crate::types::WorkerRow>> {
        traced!(self, "workers", self.0.workers())
    }
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<JobRow>> {
        traced!(self, "list_jobs", self.0.list_jobs(filter, page))
    }
    async fn retry_job(&self, id: i64) -> Result<bool> {
        traced!(self, "retry_job", self.0.retry_job(id))
    }
    async fn retry_jobs(&self, filter: &JobFilter) -> Result<u64> {
        traced!(self, "retry_jobs", self.0.retry_jobs(filter))
    }
    async fn delete_job(&self, id: i64) -> Result<bool> {
        traced!(self, "delete_job", self.0.delete_job(id))
    }
    async fn update_queue_settings(&self, update: &SettingsUpdate<'_>) -> Result<QueueSettings> {
        traced!(self, "update_queue_settings", self.0.update_queue_settings(update))
    }
    async fn set_partition_weight(&self, queue: &str, partition: &str, weight: Option<u32>) -> Result<()> {
        traced!(self, "set_partition_weight", self.0.set_partition_weight(queue, partition, weight))
    }
    async fn partition_weights(&self, queue: Option<&str>) -> Result<Vec<PartitionWeight>> {
        traced!(self, "partition_weights", self.0.partition_weights(queue))
    }
    async fn set_sequence_policy(
        &self,
        queue: &str,
        partition: &str,
        policy: Option<SequencePolicy>,
    ) -> Result<()> {
        traced!(self, "set_sequence_policy", self.0.set_sequence_policy(queue, partition, policy))
    }
    async fn sequence_policies(&self, queue: Option<&str>) -> Result<Vec<SequenceOverride>> {
        traced!(self, "sequence_policies", self.0.sequence_policies(queue))
    }
    async fn throughput(&self, window: Duration, queue: Option<&str>) -> Result<Vec<MinuteStats>> {
        traced!(self, "throughput", self.0.throughput(window, queue))
    }
    async fn get_result(&self, id: i64) -> Result<Option<serde_json::Value>> {
        traced!(self, "get_result", self.0.get_result(id))
    }
    async fn count_by_state(&self) -> Result<Vec<StateCount>> {
        traced!(self, "count_by_state", self.0.count_by_state())
    }
    async fn count_unfinished(&self) -> Result<Vec<StateCount>> {
        traced!(self, "count_unfinished", self.0.count_unfinished())
    }
}

impl Engine for Instrumented {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn schema(&self) -> &str {
        self.0.schema()
    }
    fn is_instrumented(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use crate::db::{Db, Pool};
    use crate::insert::JobExt;
    use crate::job::{Job, JobOptions};
    use crate::{Error, PerformFuture};

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Seam {
        n: i64,
    }

    impl Job for Seam {
        type Output = ();
        const NAME: &'static str = "seam";
        const OPTIONS: JobOptions = JobOptions { queue: "seam", ..JobOptions::DEFAULT };
        fn perform(self, _ctx: crate::JobContext) -> PerformFuture {
            Box::pin(async { Ok(crate::Outcome::Complete) })
        }
    }

    /// A span as a test sees it: name, `op` and `engine`.
    type SeenSpan = (String, String, String);

    /// Records every span opened while it is the thread's subscriber.
    #[derive(Default)]
    struct Spans {
        seen: Arc<Mutex<Vec<SeenSpan>>>,
        next: AtomicU64,
    }

    #[derive(Default)]
    struct Fields {
        op: String,
        engine: String,
    }

    impl tracing::field::Visit for Fields {
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            match field.name() {
                "op" => self.op = value.to_string(),
                "engine" => self.engine = value.to_string(),
                _ => {}
            }
        }
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.record_str(field, format!("{value:?}").trim_matches('"'))
        }
    }

    impl tracing::Subscriber for Spans {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            let mut fields = Fields::default();
            span.record(&mut fields);
            self.seen.lock().unwrap().push((span.metadata().name().to_string(), fields.op, fields.engine));
            tracing::span::Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &tracing::Event<'_>) {}
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// A counter as a test sees it: name, sorted labels, value.
    type SeenCounter = (String, Vec<(String, String)>, u64);

    /// Runs `f` with a fresh subscriber and metrics recorder of this thread, and returns its output
    /// with the `jobsmith.engine` spans and the counters it recorded.
    async fn observe<T>(f: impl Future<Output = T>) -> (T, Vec<SeenSpan>, Vec<SeenCounter>) {
        let spans = Spans::default();
        let seen = spans.seen.clone();
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let out = {
            let _spans = tracing::subscriber::set_default(spans);
            let _metrics = metrics::set_default_local_recorder(&recorder);
            f.await
        };
        let spans = seen.lock().unwrap().iter().filter(|s| s.0 == "jobsmith.engine").cloned().collect();
        let mut counters: Vec<SeenCounter> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| {
                let DebugValue::Counter(n) = value else { return None };
                let mut labels: Vec<(String, String)> =
                    key.key().labels().map(|l| (l.key().to_string(), l.value().to_string())).collect();
                labels.sort();
                Some((key.key().name().to_string(), labels, n))
            })
            .collect();
        counters.sort();
        (out, spans, counters)
    }

    async fn sqlite() -> (Db, sqlx::SqlitePool) {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let Pool::Sqlite(pool) = db.pool().clone() else { unreachable!() };
        (db, pool)
    }

    #[tokio::test]
    async fn transactional_inserts_are_traced_and_counted_like_engine_inserts() {
        let (db, pool) = sqlite().await;
        db.migrate().await.unwrap();

        let (stored, by_engine, engine_counters) = observe(db.insert(Seam { n: 1 })).await;
        assert!(!stored.unwrap().conflict);
        assert_eq!(by_engine, vec![("jobsmith.engine".into(), "insert".into(), "sqlite".into())]);
        assert_eq!(
            engine_counters,
            vec![(
                crate::telemetry::INSERTED.to_string(),
                vec![("queue".into(), "seam".into()), ("worker".into(), "seam".into())],
                1
            )]
        );

        let mut tx = pool.begin().await.unwrap();
        let (stored, in_tx, tx_counters) = observe(Seam { n: 2 }.insert(&mut *tx)).await;
        assert!(!stored.unwrap().conflict);
        assert_eq!(in_tx, by_engine, "the same span as Db::insert");
        assert_eq!(tx_counters, engine_counters, "the same metrics as Db::insert");

        let (stored, all, all_counters) =
            observe(crate::insert_all(&mut *tx, vec![Seam { n: 3 }.build().unwrap()])).await;
        assert_eq!(stored.unwrap().len(), 1);
        assert_eq!(all, by_engine);
        assert_eq!(all_counters, engine_counters);
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn both_insert_paths_name_a_missing_schema() {
        let (db, pool) = sqlite().await;
        let err = db.insert(Seam { n: 1 }).await.unwrap_err();
        assert!(matches!(err, Error::NotMigrated { .. }), "{err}");
        let mut tx = pool.begin().await.unwrap();
        let err = Seam { n: 1 }.insert(&mut *tx).await.unwrap_err();
        assert!(matches!(err, Error::NotMigrated { .. }), "{err}");
    }
}
