//! The runtime: a node that runs queues. Built with [`Runtime::builder`], stopped with
//! [`Runtime::shutdown`].
//!
//! Inside, each queue has a producer (fetch), each job runs in its own task (execute), one
//! completer writes results in batches (ack), one stager makes due jobs available (stage), and
//! one listener turns database notifications into wake-ups. Everything talks to the database only
//! through the [`Engine`](crate::engine::Engine).

mod completer;
mod control;
mod executor;
mod producer;
mod queue;
mod stager;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::postgres::PostgresEngine;
use crate::engine::{Engine, JobRow, Signal};
use crate::error::{Error, Result};
use crate::insert::DEFAULT_SCHEMA;
use crate::registry::Registry;
use crate::state::JobState;
use control::{JobControl, StopReason};
pub use queue::QueueInfo;
use queue::QueueState;

/// Tunables of a runtime. Every field has a default; see [`RuntimeBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) poll_interval: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) fetch_batch: usize,
    pub(crate) ack_batch: usize,
    pub(crate) ack_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(15),
            fetch_batch: 1_000,
            ack_batch: 1_000,
            ack_delay: Duration::from_millis(1),
        }
    }
}

/// What every task of a runtime shares.
pub(crate) struct Shared {
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) registry: Registry,
    pub(crate) node: String,
    pub(crate) config: Config,
    pub(crate) queues: HashMap<String, Arc<QueueState>>,
    pub(crate) running_jobs: Mutex<HashMap<i64, JobControl>>,
    pub(crate) completer: completer::CompleterHandle,
    pub(crate) stager_wake: Arc<Notify>,
    pub(crate) tasks: TaskTracker,
}

enum Source {
    Postgres { pool: PgPool, schema: String },
    Engine(Arc<dyn Engine>),
}

/// Configures and starts a node.
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) -> jobsmith::Result<()> {
/// jobsmith::migrate(&pool).await?;
/// let runtime = jobsmith::Runtime::builder(pool)
///     .queue("default", 10)
///     .queue("events", 50)
///     .queue("mailers", 20)
///     .queue("maintenance", 5)
///     .start()
///     .await?;
/// // ... later
/// runtime.shutdown().await?;
/// # Ok(()) }
/// ```
pub struct RuntimeBuilder {
    source: Source,
    node: Option<String>,
    queues: Vec<(String, usize)>,
    registry: Option<Registry>,
    config: Config,
}

impl RuntimeBuilder {
    /// Runs queue `name` with at most `concurrency` jobs at once on this node. A node with no
    /// queues only inserts and controls (a web server, say).
    pub fn queue(mut self, name: impl Into<String>, concurrency: usize) -> Self {
        self.queues.push((name.into(), concurrency));
        self
    }

    /// The node's name in `attempted_by` and logs. Default: hostname and process id.
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.node = Some(name.into());
        self
    }

    /// How often an idle queue looks for work when no notification arrives. Default 1 s.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval;
        self
    }

    /// How long shutdown lets running jobs finish before they are stopped and handed back.
    /// Default 15 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// Most jobs one fetch takes. Default 1,000 (the free slots bound it first).
    pub fn fetch_batch(mut self, n: usize) -> Self {
        self.config.fetch_batch = n.max(1);
        self
    }

    /// Most results one write records, and how long a result may wait for others to join it.
    /// Defaults 1,000 and 1 ms.
    pub fn ack_batching(mut self, max: usize, delay: Duration) -> Self {
        self.config.ack_batch = max.max(1);
        self.config.ack_delay = delay;
        self
    }

    /// The schema of the instance (PostgreSQL). Default `jobsmith`.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        if let Source::Postgres { schema, .. } = &mut self.source {
            *schema = name.into();
        }
        self
    }

    /// Runs exactly these workers instead of every `#[job]` linked into the binary.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Starts the node: checks the workers and options, then starts every queue. The schema must
    /// be migrated (see [`crate::migrate`]).
    pub async fn start(self) -> Result<Runtime> {
        let engine: Arc<dyn Engine> = match self.source {
            Source::Postgres { pool, schema } => Arc::new(PostgresEngine::new(pool, &schema)?),
            Source::Engine(engine) => engine,
        };
        let engine: Arc<dyn Engine> = Arc::new(crate::engine::instrumented::Instrumented(engine));
        let registry = match self.registry {
            Some(r) => r,
            None => Registry::from_inventory()?,
        };
        let mut queues = HashMap::new();
        for (name, limit) in self.queues {
            if name.is_empty() || limit == 0 {
                return Err(Error::InvalidOption(format!(
                    "queue `{name}` needs a non-empty name and a concurrency of at least 1"
                )));
            }
            if queues.insert(name.clone(), Arc::new(QueueState::new(name.clone(), limit))).is_some() {
                return Err(Error::InvalidOption(format!("queue `{name}` is configured twice")));
            }
        }
        let node = self.node.unwrap_or_else(default_node_name);
        let (completer_handle, ack_rx) = completer::channel();
        let stager_wake = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            engine: engine.clone(),
            registry,
            node: node.clone(),
            config: self.config,
            queues,
            running_jobs: Mutex::new(HashMap::new()),
            completer: completer_handle,
            stager_wake: stager_wake.clone(),
            tasks: TaskTracker::new(),
        });

        let stop_fetching = CancellationToken::new();
        let stop_services = CancellationToken::new();
        let stop_completer = CancellationToken::new();
        let mut services = Vec::new();

        let completer = completer::Completer {
            engine: engine.clone(),
            rx: ack_rx,
            batch: shared.config.ack_batch,
            delay: shared.config.ack_delay,
            stager: stager_wake,
        };
        let completer_task = tokio::spawn(completer.run(stop_completer.clone()));

        let (signal_tx, signal_rx) = mpsc::unbounded_channel();
        {
            let engine = engine.clone();
            let stop = stop_services.clone();
            services.push(tokio::spawn(async move { engine.listen(signal_tx, stop).await }));
        }
        services.push(tokio::spawn(dispatch_signals(shared.clone(), signal_rx, stop_services.clone())));

        let mut producers = Vec::new();
        if !shared.queues.is_empty() {
            services.push(tokio::spawn(stager::run(shared.clone(), stop_services.clone())));
            for queue in shared.queues.values() {
                producers.push(tokio::spawn(producer::run(
                    shared.clone(),
                    queue.clone(),
                    stop_fetching.clone(),
                )));
            }
        }
        tracing::info!(node = %node, engine = engine.name(), queues = shared.queues.len(), "jobsmith node started");
        Ok(Runtime {
            shared,
            stop_fetching,
            stop_services,
            stop_completer,
            producers,
            services,
            completer_task,
        })
    }
}

/// A running node. Dropping it without [`Runtime::shutdown`] stops nothing cleanly: call
/// `shutdown` so running jobs finish or are handed back.
pub struct Runtime {
    shared: Arc<Shared>,
    stop_fetching: CancellationToken,
    stop_services: CancellationToken,
    stop_completer: CancellationToken,
    producers: Vec<JoinHandle<()>>,
    services: Vec<JoinHandle<()>>,
    completer_task: JoinHandle<()>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("node", &self.shared.node).finish_non_exhaustive()
    }
}

impl Runtime {
    /// A builder for a node on PostgreSQL.
    pub fn builder(pool: PgPool) -> RuntimeBuilder {
        Self::builder_with(Source::Postgres { pool, schema: DEFAULT_SCHEMA.to_string() })
    }

    /// A builder for a node on any [`Engine`].
    pub fn builder_with_engine(engine: Arc<dyn Engine>) -> RuntimeBuilder {
        Self::builder_with(Source::Engine(engine))
    }

    fn builder_with(source: Source) -> RuntimeBuilder {
        RuntimeBuilder { source, node: None, queues: Vec::new(), registry: None, config: Config::default() }
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

    /// Stops fetching on `queue` on this node; running jobs finish.
    pub fn pause_queue(&self, queue: &str) -> Result<()> {
        self.queue(queue)?.set_paused(true);
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
            stop_local_job(&self.shared, id, StopReason::Cancelled);
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
        let shared = self.shared.clone();
        self.stop_fetching.cancel();
        for p in self.producers {
            let _ = p.await;
        }
        shared.tasks.close();
        if tokio::time::timeout(shared.config.shutdown_grace, shared.tasks.wait()).await.is_err() {
            let ids: Vec<i64> = shared.running_jobs.lock().expect("running map").keys().copied().collect();
            tracing::info!(node = %shared.node, jobs = ids.len(), "jobsmith grace period over; handing jobs back");
            for id in ids {
                stop_local_job(&shared, id, StopReason::Shutdown);
            }
            shared.tasks.wait().await;
        }
        self.stop_completer.cancel();
        let _ = self.completer_task.await;
        self.stop_services.cancel();
        for s in self.services {
            let _ = s.await;
        }
        tracing::info!(node = %shared.node, "jobsmith node stopped");
        Ok(())
    }
}

fn stop_local_job(shared: &Shared, id: i64, reason: StopReason) {
    if let Some(control) = shared.running_jobs.lock().expect("running map").get(&id) {
        control.stop(reason);
    }
}

/// Turns outside signals into local wake-ups and cancels.
async fn dispatch_signals(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Signal>,
    stop: CancellationToken,
) {
    loop {
        let signal = tokio::select! {
            _ = stop.cancelled() => return,
            s = rx.recv() => match s { Some(s) => s, None => return },
        };
        match signal {
            Signal::Available(queue) => {
                if let Some(q) = shared.queues.get(&queue) {
                    q.hint_work();
                }
            }
            Signal::Scheduled => shared.stager_wake.notify_one(),
            Signal::CancelJob(id) => stop_local_job(&shared, id, StopReason::Cancelled),
            Signal::Resync => {
                for q in shared.queues.values() {
                    q.hint_work();
                }
                shared.stager_wake.notify_one();
            }
        }
    }
}

/// `hostname-pid`: unique per process on a host, readable in `attempted_by`.
fn default_node_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string());
    format!("{host}-{}", std::process::id())
}
