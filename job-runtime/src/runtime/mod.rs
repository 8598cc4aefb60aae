//! The runtime: a node that runs queues. Built with [`Runtime::builder`], stopped with
//! [`Runtime::shutdown`].
//!
//! Inside, each queue has a producer (fetch), each job runs in its own task (execute), one
//! completer writes results in batches (ack), one stager makes due jobs available (stage), and
//! one listener turns database notifications into wake-ups. Everything talks to the database only
//! through the [`Engine`].

pub(crate) mod claims;
mod completer;
pub(crate) mod control;
pub(crate) mod executor;
mod maintenance;
mod node;
mod producer;
mod queue;
mod stager;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cron::CronEntry;
use crate::engine::postgres::PostgresEngine;
use crate::engine::{Ack, AckKind, Engine, JobRow, NodeRow, QueueSettingsChange, Retention, Signal};
use crate::error::{Error, Result};
use crate::insert::DEFAULT_SCHEMA;
use crate::registry::Registry;
use crate::state::JobState;
use crate::types::SettingsUpdate;
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
    pub(crate) heartbeat_interval: Duration,
    pub(crate) node_ttl: Duration,
    pub(crate) leader_lease: Duration,
    pub(crate) leader_eligible: bool,
    pub(crate) rescue_interval: Duration,
    pub(crate) prune_interval: Duration,
    pub(crate) prune_batch: u32,
    pub(crate) retention: Retention,
    pub(crate) cron_from_attributes: bool,
    pub(crate) log_args: bool,
    pub(crate) gauge_interval: Duration,
    pub(crate) relaxed_fetch_commit: bool,
}

impl Config {
    /// A node whose heartbeats are further apart than this was cut off from the database: beats
    /// come every `heartbeat_interval` and take at most a beat deadline. Its `connected_since`
    /// starts again (see `RescueRequest`).
    pub(crate) fn reconnect_gap(&self) -> Duration {
        self.heartbeat_interval + node::beat_deadline(self.leader_lease)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(15),
            fetch_batch: 1_000,
            ack_batch: 1_000,
            ack_delay: Duration::from_millis(1),
            heartbeat_interval: Duration::from_secs(1),
            node_ttl: Duration::from_secs(10),
            leader_lease: Duration::from_secs(5),
            leader_eligible: true,
            rescue_interval: Duration::from_secs(2),
            prune_interval: Duration::from_secs(30),
            prune_batch: 10_000,
            retention: Retention {
                completed: Duration::from_secs(24 * 3600),
                cancelled: Duration::from_secs(7 * 24 * 3600),
                discarded: Duration::from_secs(7 * 24 * 3600),
            },
            cron_from_attributes: true,
            log_args: false,
            gauge_interval: Duration::from_secs(10),
            relaxed_fetch_commit: false,
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
    pub(crate) is_leader: AtomicBool,
    /// Wakes the leader-only services when this node becomes leader.
    pub(crate) leader_wake: Notify,
    /// Makes the heartbeat loop try for the lease now (the leader resigned).
    pub(crate) try_lead: Notify,
    /// The claims this node holds (see `claims`).
    pub(crate) claims: Arc<claims::Claims>,
    /// Since when this node's heartbeats have succeeded without a break (`None` while they
    /// fail). Rescue judges other nodes' heartbeat ages only over time this node was connected.
    pub(crate) connected_since: Mutex<Option<std::time::Instant>>,
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
    global_limits: Vec<(String, u32)>,
    prefetch: Vec<(String, usize)>,
    registry: Option<Registry>,
    cron: Vec<Result<CronEntry>>,
    config: Config,
    schema_misplaced: Option<String>,
    #[cfg(feature = "prometheus")]
    prometheus: Option<std::net::SocketAddr>,
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

    /// The schema of the instance (PostgreSQL, with [`Runtime::builder`]). Default `jobsmith`.
    /// A builder from a [`crate::Db`] or an engine already has its instance: setting a schema
    /// there is refused at start rather than silently ignored.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        match &mut self.source {
            Source::Postgres { schema, .. } => *schema = name.into(),
            Source::Engine(_) => self.schema_misplaced = Some(name.into()),
        }
        self
    }

    /// At most `limit` jobs of `queue` executing across all nodes at once (persisted, so every
    /// node honours it).
    pub fn global_limit(mut self, queue: impl Into<String>, limit: u32) -> Self {
        self.global_limits.push((queue.into(), limit));
        self
    }

    /// Lets `queue` claim up to `jobs` more than its free slots, to start the moment a slot frees
    /// instead of after a round trip. Default 0. For many short jobs; see the queues guide and
    /// ADR 8.
    ///
    /// Claimed jobs are `executing` in the database (attempt counted, this node's name on them)
    /// while they wait here, in run order. A job inserted later with a higher priority waits
    /// behind at most `jobs` of them. Cancelling one takes it out unstarted; pausing the queue or
    /// shutting down gives the waiting ones back to `available` with their attempt returned and no
    /// error recorded; if the node dies they are rescued like running jobs. Under a global limit
    /// nothing is claimed ahead (claimed rows count against it on every node).
    ///
    /// ```no_run
    /// # async fn demo(pool: sqlx::PgPool) -> jobsmith::Result<()> {
    /// let runtime = jobsmith::Runtime::builder(pool)
    ///     .queue("events", 100)
    ///     .prefetch("events", 100)
    ///     .start()
    ///     .await?;
    /// # runtime.shutdown().await }
    /// ```
    pub fn prefetch(mut self, queue: impl Into<String>, jobs: usize) -> Self {
        self.prefetch.push((queue.into(), jobs));
        self
    }

    /// Lets each fetch commit without waiting for PostgreSQL to flush it to disk
    /// (`synchronous_commit = off` for the fetch's own transaction, nothing else). Default false.
    ///
    /// A fetch's commit only records which node took which jobs. If the database server crashes
    /// in the moment before that record reaches disk, the claim is undone: the jobs become
    /// `available` again with their attempt uncounted and may run a second time, possibly while
    /// this node still runs them. Inserts and results keep waiting for the flush, so no job and no
    /// recorded result is lost. On the benchmark machine this cut the idle insert-to-start
    /// latency by one disk flush and raised burn-down by 20-30 % (docs/benchmarks.md, ADR 9).
    /// Ignored by SQLite.
    pub fn relaxed_fetch_commit(mut self, relaxed: bool) -> Self {
        self.config.relaxed_fetch_commit = relaxed;
        self
    }

    /// How often the node writes its heartbeat and renews or seeks the leader lease. Default 1 s;
    /// must be under half the leader lease (checked at start).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.config.heartbeat_interval = interval;
        self
    }

    /// A node whose heartbeat is older than this is dead: its running jobs are rescued. Default
    /// 10 s. It must exceed `heartbeat_interval + leader_lease / 2` (checked at start); a live
    /// node that misses it (a long GC-like stall, a partition) has its jobs run again elsewhere.
    /// Rescue also waits until the rescuer itself has been connected this long.
    pub fn node_ttl(mut self, ttl: Duration) -> Self {
        self.config.node_ttl = ttl;
        self
    }

    /// How long a leader lease lasts without renewal. Default 5 s; another node takes over at most
    /// `lease + heartbeat_interval` after the leader dies.
    pub fn leader_lease(mut self, lease: Duration) -> Self {
        self.config.leader_lease = lease;
        self
    }

    /// Whether this node may lead (run cron, rescue and pruning). Default true; web nodes that
    /// only insert can opt out.
    pub fn leader_eligible(mut self, eligible: bool) -> Self {
        self.config.leader_eligible = eligible;
        self
    }

    /// How often the leader looks for jobs of dead nodes, and every node for claims it lost (see
    /// the many-nodes guide). Default 2 s.
    pub fn rescue_interval(mut self, interval: Duration) -> Self {
        self.config.rescue_interval = interval;
        self
    }

    /// How long finished rows are kept, and how often the leader prunes. Defaults: completed
    /// 1 day, cancelled and discarded 7 days, every 30 s, 10,000 rows per statement.
    pub fn retention(mut self, retention: Retention, interval: Duration) -> Self {
        self.config.retention = retention;
        self.config.prune_interval = interval;
        self
    }

    /// Inserts `job` at every slot of `expr` (UTC; see [`CronEntry`] for time zones and catch-up).
    pub fn cron<J: crate::job::Job>(
        mut self,
        expr: &str,
        job: impl Into<crate::insert::InsertBuilder<J>>,
    ) -> Self {
        self.cron.push(CronEntry::new(expr, job));
        self
    }

    /// Adds a configured cron entry.
    pub fn cron_entry(mut self, entry: CronEntry) -> Self {
        self.cron.push(Ok(entry));
        self
    }

    /// Whether `#[job(cron = ...)]` schedules run. Default true.
    pub fn cron_from_attributes(mut self, enabled: bool) -> Self {
        self.config.cron_from_attributes = enabled;
        self
    }

    /// Records each job's args in its tracing span. Default false: args may hold personal data.
    pub fn log_args(mut self, enabled: bool) -> Self {
        self.config.log_args = enabled;
        self
    }

    /// How often the leader refreshes the jobs-per-state gauges. Default 10 s.
    pub fn gauge_interval(mut self, interval: Duration) -> Self {
        self.config.gauge_interval = interval;
        self
    }

    /// Serves Prometheus metrics at `http://addr/metrics` (feature `prometheus`). Installs the
    /// process-wide metrics recorder, so call it on one runtime only.
    #[cfg(feature = "prometheus")]
    pub fn prometheus(mut self, addr: std::net::SocketAddr) -> Self {
        self.prometheus = Some(addr);
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
        if let Some(schema) = self.schema_misplaced {
            return Err(Error::InvalidOption(format!(
                "schema(`{schema}`) on a runtime built from a Db or engine: choose the schema where the Db \
                 is made (`Db::postgres(pool, \"{schema}\")`)"
            )));
        }
        let engine: Arc<dyn Engine> = match self.source {
            Source::Postgres { pool, schema } => Arc::new(PostgresEngine::new(pool, &schema)?),
            Source::Engine(engine) => engine,
        };
        let engine = crate::engine::instrumented::Instrumented::wrap(engine);
        let c = &self.config;
        if c.leader_eligible && c.heartbeat_interval * 2 >= c.leader_lease {
            return Err(Error::InvalidOption(format!(
                "heartbeat_interval ({:?}) must be under half the leader_lease ({:?}): a leader that cannot \
                 renew must step down before its lease runs out",
                c.heartbeat_interval, c.leader_lease
            )));
        }
        // A live node's heartbeats are at most this far apart (an interval plus a beat that takes its
        // whole deadline); a TTL no longer than that would take live nodes for dead.
        let gap = c.reconnect_gap();
        if c.node_ttl <= gap.max(c.heartbeat_interval * 2) {
            return Err(Error::InvalidOption(format!(
                "node_ttl ({:?}) must be more than heartbeat_interval + leader_lease / 2 ({gap:?}) and more than \
                 twice the heartbeat_interval, or live nodes are taken for dead",
                c.node_ttl
            )));
        }
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
        for (name, jobs) in &self.prefetch {
            match queues.get(name) {
                Some(q) => q.set_prefetch(*jobs),
                None => {
                    return Err(Error::InvalidOption(format!(
                        "prefetch for queue `{name}`, which this node does not run"
                    )));
                }
            }
        }
        #[cfg(feature = "prometheus")]
        if let Some(addr) = self.prometheus {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .with_http_listener(addr)
                .install()
                .map_err(|e| {
                    Error::InvalidOption(format!("cannot serve Prometheus metrics on {addr}: {e}"))
                })?;
        }
        let mut cron = Vec::new();
        for entry in self.cron {
            cron.push(entry?);
        }
        if self.config.cron_from_attributes {
            for worker in registry.iter() {
                if let Some(spec) = worker.options.cron {
                    let schedule = crate::cron::Schedule::parse(spec.expr, spec.timezone)?;
                    cron.push(CronEntry::from_parts(
                        worker.name.to_string(),
                        schedule,
                        (worker.build_empty)()?,
                    ));
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for entry in &cron {
            if !names.insert(entry.name().to_string()) {
                return Err(Error::InvalidOption(format!(
                    "two cron entries are named `{}`; name one with CronEntry::named",
                    entry.name()
                )));
            }
        }
        // If this node leads, it inserts these entries' jobs; on a queue it does not run they wait
        // for some other node, or forever if none runs it (often a typo in `on_queue`).
        if self.config.leader_eligible {
            for entry in cron.iter().filter(|entry| !queues.contains_key(entry.queue())) {
                tracing::warn!(target: "jobsmith",
                    "jobsmith cron entry `{}` inserts jobs into queue `{}`, which this node does not run; \
                     they wait until a node that runs it fetches them", entry.name(), entry.queue());
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
            is_leader: AtomicBool::new(false),
            leader_wake: Notify::new(),
            try_lead: Notify::new(),
            claims: Arc::default(),
            connected_since: Mutex::new(None),
        });

        // Persisted queue settings: global limits from this builder first, then apply all. A
        // limit configured here is meant, so it is stored even for a queue nobody knows yet.
        for (queue, limit) in &self.global_limits {
            let change = QueueSettingsChange { global_limit: Some(Some(*limit)), ..Default::default() };
            engine.update_queue_settings(&SettingsUpdate { queue, change, allow_unknown: true }).await?;
        }
        apply_settings(&shared).await?;

        let stop_fetching = CancellationToken::new();
        let stop_services = CancellationToken::new();
        let stop_completer = CancellationToken::new();
        let stop_heartbeat = CancellationToken::new();
        let mut services = Vec::new();

        let completer = completer::Completer {
            handle: shared.completer.clone(),
            engine: engine.clone(),
            node: node.clone(),
            rx: ack_rx,
            batch: shared.config.ack_batch,
            delay: shared.config.ack_delay,
            stager: stager_wake,
            claims: shared.claims.clone(),
        };
        let completer_task = tokio::spawn(completer.run(stop_completer.clone()));

        let (signal_tx, signal_rx) = mpsc::unbounded_channel();
        {
            let engine = engine.clone();
            let stop = stop_services.clone();
            services.push(tokio::spawn(async move { engine.listen(signal_tx, stop).await }));
        }
        services.push(tokio::spawn(dispatch_signals(shared.clone(), signal_rx, stop_services.clone())));

        // Jobs an earlier run of this node name left `executing` (a crash, then a restart with the
        // same name, as containers do) can be running nowhere: take them back now, since this
        // node's fresh heartbeat would otherwise keep them from ever being rescued.
        let released = engine.release_node(&node).await?;
        if released.rescued + released.discarded > 0 {
            crate::telemetry::rescued(released.rescued + released.discarded);
            tracing::warn!(target: "jobsmith", node = %node, rescued = released.rescued, discarded = released.discarded,
                "jobsmith took back jobs left running by an earlier run of this node");
        }
        // The first heartbeat (and lease attempt) before any job starts, so this node's jobs are
        // never taken for a dead node's.
        let queue_names: Vec<String> = shared.queues.keys().cloned().collect();
        let gap = shared.config.reconnect_gap();
        engine
            .heartbeat(&crate::engine::Heartbeat { node: &node, queues: &queue_names, reconnect_gap: gap })
            .await?;
        *shared.connected_since.lock().expect("connected_since") = Some(std::time::Instant::now());
        let heartbeat = tokio::spawn(node::run(shared.clone(), stop_heartbeat.clone()));
        let maintain = |interval: Duration, what: &'static str| {
            let shared = shared.clone();
            let stop = stop_services.clone();
            (shared, stop, interval, what)
        };
        {
            let (shared, stop, interval, what) = maintain(shared.config.rescue_interval, "rescue");
            services.push(tokio::spawn(maintenance::every(shared, interval, stop, what, |s| async move {
                maintenance::rescue_once(&s).await.map(|_| None)
            })));
        }
        {
            let (shared, stop, interval, what) = maintain(shared.config.prune_interval, "prune");
            services.push(tokio::spawn(maintenance::every(shared, interval, stop, what, |s| async move {
                let retention = s.config.retention;
                maintenance::prune_once(&s, &retention, s.config.prune_batch).await.map(|_| None)
            })));
        }
        {
            let (shared, stop, interval, what) = maintain(shared.config.gauge_interval, "gauges");
            let previous = Arc::new(tokio::sync::Mutex::new(std::collections::HashSet::new()));
            services.push(tokio::spawn(maintenance::every(shared, interval, stop, what, move |s| {
                let previous = previous.clone();
                async move { maintenance::gauges_once(&s, &mut *previous.lock().await).await.map(|_| None) }
            })));
        }
        if !cron.is_empty() {
            let entries = Arc::new(cron);
            let (shared, stop, _, what) = maintain(Duration::from_secs(1), "cron");
            services.push(tokio::spawn(maintenance::every(
                shared,
                Duration::from_secs(1),
                stop,
                what,
                move |s| {
                    let entries = entries.clone();
                    async move { maintenance::cron_once(&s, &entries).await.map(|(_, next)| next) }
                },
            )));
        }

        let mut producers = Vec::new();
        if !shared.queues.is_empty() {
            services.push(tokio::spawn(claims::run(shared.clone(), stop_services.clone())));
            services.push(tokio::spawn(stager::run(shared.clone(), stop_services.clone())));
            for queue in shared.queues.values() {
                producers.push(tokio::spawn(producer::run(
                    shared.clone(),
                    queue.clone(),
                    stop_fetching.clone(),
                )));
            }
        }
        tracing::info!(target: "jobsmith", node = %node, engine = engine.name(), queues = shared.queues.len(), "jobsmith node started");
        Ok(Runtime {
            shared,
            stop_fetching,
            stop_services,
            stop_completer,
            stop_heartbeat,
            producers,
            services,
            completer_task,
            heartbeat,
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
    stop_heartbeat: CancellationToken,
    producers: Vec<JoinHandle<()>>,
    services: Vec<JoinHandle<()>>,
    completer_task: JoinHandle<()>,
    heartbeat: JoinHandle<()>,
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
        RuntimeBuilder {
            source,
            node: None,
            queues: Vec::new(),
            global_limits: Vec::new(),
            prefetch: Vec::new(),
            registry: None,
            cron: Vec::new(),
            config: Config::default(),
            schema_misplaced: None,
            #[cfg(feature = "prometheus")]
            prometheus: None,
        }
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
        release_buffered(&self.shared, q);
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

    async fn change_settings(
        &self,
        queue: &str,
        change: impl FnOnce(&mut QueueSettingsChange),
    ) -> Result<()> {
        let mut fields = QueueSettingsChange::default();
        change(&mut fields);
        // One atomic write of just these fields: a concurrent change of another field survives.
        self.shared
            .engine
            .update_queue_settings(&SettingsUpdate { queue, change: fields, allow_unknown: false })
            .await?;
        // Apply here at once; other nodes apply on the notification (or at their start).
        apply_settings(&self.shared).await
    }

    /// Whether this node holds the leader lease.
    pub fn is_leader(&self) -> bool {
        self.shared.is_leader.load(Ordering::Acquire)
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
        // Jobs claimed ahead never start now; they go back for other nodes.
        for q in shared.queues.values() {
            q.close();
            release_buffered(&shared, q);
        }
        shared.tasks.close();
        if tokio::time::timeout(shared.config.shutdown_grace, shared.tasks.wait()).await.is_err() {
            let ids: Vec<i64> = shared.running_jobs.lock().expect("running map").keys().copied().collect();
            tracing::info!(target: "jobsmith", node = %shared.node, jobs = ids.len(), "jobsmith grace period over; handing jobs back");
            for id in ids {
                stop_local_job(&shared, id, StopReason::Shutdown);
            }
            shared.tasks.wait().await;
        }
        self.stop_completer.cancel();
        let _ = self.completer_task.await;
        // Every result is written: a row still executing by this node that it does not hold is
        // a claim it lost (its answer never arrived). Hand those back too, so nothing of this
        // node stays executing. Held ones are results the completer could not write; those are
        // rescued once this node's row is gone.
        if !shared.queues.is_empty() {
            match claims::at_shutdown(&shared).await {
                Ok(ids) if !ids.is_empty() => {
                    tracing::warn!(target: "jobsmith", node = %shared.node, jobs = ids.len(), "jobsmith handed back lost claims at shutdown")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(target: "jobsmith", error = %e, "jobsmith could not look for lost claims at shutdown; they are rescued once this node's row is gone")
                }
            }
        }
        self.stop_services.cancel();
        for s in self.services {
            let _ = s.await;
        }
        // Last: resign and remove the node row, once nothing of ours is executing.
        self.stop_heartbeat.cancel();
        let _ = self.heartbeat.await;
        tracing::info!(target: "jobsmith", node = %shared.node, "jobsmith node stopped");
        Ok(())
    }
}

fn stop_local_job(shared: &Shared, id: i64, reason: StopReason) {
    if let Some(control) = shared.running_jobs.lock().expect("running map").get(&id) {
        control.stop(reason);
    }
    // A cancelled job still waiting in a prefetch buffer leaves it at once rather than holding
    // its place until a slot frees.
    if reason == StopReason::Cancelled {
        for q in shared.queues.values() {
            if let Some(c) = q.take_claimed(id) {
                shared.running_jobs.lock().expect("running map").remove(&id);
                let reason = "cancelled by request".to_string();
                shared.completer.send(Ack {
                    id,
                    attempt: c.job.attempt,
                    claim: Some(c.job.claim),
                    kind: AckKind::Cancel { reason },
                });
            }
        }
    }
}

/// Gives the jobs waiting in `queue`'s prefetch buffer back to `available`, unstarted.
pub(crate) fn release_buffered(shared: &Shared, queue: &QueueState) {
    let released = queue.take_buffer();
    if released.is_empty() {
        return;
    }
    let mut running = shared.running_jobs.lock().expect("running map");
    for c in &released {
        running.remove(&c.job.id);
    }
    drop(running);
    for c in released {
        shared.completer.send(Ack {
            id: c.job.id,
            attempt: c.job.attempt,
            claim: Some(c.job.claim),
            kind: AckKind::Release,
        });
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
                if let Err(e) = apply_settings(&shared).await {
                    tracing::warn!(target: "jobsmith", error = %e, "jobsmith could not reload queue settings");
                }
            }
            Signal::QueueSettings(queue) => {
                if shared.queues.contains_key(&queue)
                    && let Err(e) = apply_settings(&shared).await
                {
                    tracing::warn!(target: "jobsmith", error = %e, "jobsmith could not reload queue settings");
                }
            }
            Signal::LeaderResigned => shared.try_lead.notify_one(),
        }
    }
}

/// Applies persisted settings to this node's queues.
pub(crate) async fn apply_settings(shared: &Shared) -> Result<()> {
    for settings in shared.engine.queue_settings().await? {
        if let Some(q) = shared.queues.get(&settings.name) {
            if let Some(paused) = settings.paused {
                q.set_paused(paused);
                if paused {
                    release_buffered(shared, q);
                }
            }
            if let Some(n) = settings.concurrency {
                q.set_limit(n as usize);
            }
            q.set_global_limit(settings.global_limit);
        }
    }
    Ok(())
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
