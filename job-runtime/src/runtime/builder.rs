//! Configures a node: every option with its default, checked once at [`RuntimeBuilder::start`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::config::Config;
use super::handle::Runtime;
use super::lifecycle::{self, Plan};
use super::queue::QueueState;
use crate::app_state::States;
use crate::cron::CronEntry;
use crate::engine::{Engine, QueueSettingsChange, RateLimit, Retention};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::types::SequencePolicy;

/// Configures and starts a node.
///
/// ```no_run
/// # async fn demo(db: jobsmith::Db) -> jobsmith::Result<()> {
/// db.migrate().await?;
/// let runtime = db
///     .runtime()
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
    engine: Arc<dyn Engine>,
    node: Option<String>,
    queues: Vec<(String, usize)>,
    /// Settings given in code that are persisted at start (global and rate limits).
    persisted: Vec<(String, QueueSettingsChange)>,
    prefetch: Vec<(String, usize)>,
    registry: Option<Registry>,
    cron: Vec<Result<CronEntry>>,
    config: Config,
    states: States,
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

    /// Most jobs one fetch takes, at least 1. Default 1,000 (the free slots bound it first).
    pub fn fetch_batch(mut self, n: usize) -> Self {
        self.config.fetch_batch = n;
        self
    }

    /// Most results one write records, and how long a result may wait for others to join it.
    /// Defaults 1,000 and 1 ms; `max` must be at least 1.
    pub fn ack_batching(mut self, max: usize, delay: Duration) -> Self {
        self.config.ack_batch = max;
        self.config.ack_delay = delay;
        self
    }

    /// At most `limit` jobs of `queue` executing across all nodes at once (persisted, so every
    /// node honours it).
    pub fn global_limit(mut self, queue: impl Into<String>, limit: u32) -> Self {
        let change = QueueSettingsChange { global_limit: Some(Some(limit)), ..Default::default() };
        self.persisted.push((queue.into(), change));
        self
    }

    /// At most `rate.limit` jobs of `queue` started in any window of `rate.window`, across all
    /// nodes, whatever each node's concurrency (persisted, so every node honours it; change it at
    /// run time with [`crate::Runtime::set_rate_limit`]). A claim is a start: a rate-limited queue
    /// claims nothing ahead of its free slots, and a retried, snoozed or rescued job counts again
    /// when it starts again. See the flow-control guide and ADR 22.
    ///
    /// ```no_run
    /// # async fn demo(db: jobsmith::Db) -> jobsmith::Result<()> {
    /// // The benefits API allows 10 calls a second, however many nodes run the queue.
    /// let runtime = db
    ///     .runtime()
    ///     .queue("benefits", 20)
    ///     .rate_limit("benefits", jobsmith::RateLimit::per_second(10))
    ///     .start()
    ///     .await?;
    /// # runtime.shutdown().await }
    /// ```
    pub fn rate_limit(mut self, queue: impl Into<String>, rate: RateLimit) -> Self {
        let change = QueueSettingsChange { rate_limit: Some(Some(rate)), ..Default::default() };
        self.persisted.push((queue.into(), change));
        self
    }

    /// Partitions `queue`: at most `limit` jobs of one partition (the value of the arg a job type
    /// names in `#[job(partition = "...")]`, or [`crate::InsertBuilder::partition`]) executing at
    /// once across all nodes, and the partitions take turns, so one partition's backlog does not
    /// hold back another's first job (persisted, so every node honours it; change it at run time
    /// with [`crate::Runtime::set_partition_limit`]). Jobs of no partition run beside them as
    /// one more partition. See the flow-control guide and ADR 24.
    ///
    /// ```no_run
    /// # async fn demo(db: jobsmith::Db) -> jobsmith::Result<()> {
    /// // Two benefit checks at a time per insurer, insurers in turn.
    /// let runtime = db.runtime().queue("benefits", 20).partition_limit("benefits", 2).start().await?;
    /// # runtime.shutdown().await }
    /// ```
    pub fn partition_limit(mut self, queue: impl Into<String>, limit: u32) -> Self {
        let change = QueueSettingsChange { partition_limit: Some(Some(limit)), ..Default::default() };
        self.persisted.push((queue.into(), change));
        self
    }

    /// Runs each partition of `queue` as a sequence: its jobs one at a time, in insertion
    /// order, each starting only once the one before it finished (a job waiting for a retry
    /// has not; a discarded one has not either with [`SequencePolicy::WaitForRetries`], the
    /// default, and has with [`SequencePolicy::ContinueAfterDiscard`]). Partitions run side by
    /// side, in turn. Persisted like the other limits; change it at run time with
    /// [`crate::Runtime::set_sequence`]. See the flow-control guide and ADR 27.
    ///
    /// ```no_run
    /// # async fn demo(db: jobsmith::Db) -> jobsmith::Result<()> {
    /// // Each account's ledger entries in the order they were queued, accounts in parallel.
    /// let runtime = db
    ///     .runtime()
    ///     .queue("ledger", 20)
    ///     .sequence("ledger", jobsmith::SequencePolicy::WaitForRetries)
    ///     .start()
    ///     .await?;
    /// # runtime.shutdown().await }
    /// ```
    pub fn sequence(mut self, queue: impl Into<String>, policy: SequencePolicy) -> Self {
        let change = QueueSettingsChange { sequence: Some(Some(policy)), ..Default::default() };
        self.persisted.push((queue.into(), change));
        self
    }

    /// Fixes how many jobs `queue` claims beyond its free slots (they start the moment a slot
    /// frees instead of after a round trip); 0 claims only for free slots.
    ///
    /// Without this call a queue sizes that buffer itself: twice the jobs its slots finish
    /// during one fetch, from running averages of its job and fetch times, at most 32 per slot.
    /// Many short jobs get a buffer that hides the fetch's round trip; jobs much longer than a
    /// fetch get none (ADR 14). Set it only to bound the buffer differently.
    ///
    /// Claimed jobs are `executing` in the database (attempt counted, this node's name on them)
    /// while they wait here, in run order. A job fetched later with a higher priority goes ahead
    /// of them and takes the next free slot: it waits for the next fetch and a slot, not behind
    /// the buffer. Cancelling one takes it out unstarted; pausing the queue or
    /// shutting down gives the waiting ones back to `available` with their attempt returned and no
    /// error recorded; if the node dies they are rescued like running jobs. Under a global limit
    /// nothing is claimed ahead (claimed rows count against it on every node).
    ///
    /// ```no_run
    /// # async fn demo(db: jobsmith::Db) -> jobsmith::Result<()> {
    /// let runtime = db
    ///     .runtime()
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

    /// When the leader vacuums the jobs table itself: once it holds `min_dead` dead row versions,
    /// looked at every `interval`; `None` leaves it to autovacuum alone. Default: 100,000 dead
    /// versions, every 10 s. PostgreSQL only (SQLite has no dead versions).
    ///
    /// Why: every job leaves three or four dead row versions (claim, result, prune), and none of
    /// those updates is HOT, since `state` decides the partial indexes. Autovacuum wakes once a
    /// minute by default; under thousands of jobs a second that minute lets the table and the
    /// fetch index grow without bound (measured: 2.6 GB and 142 MB after 3 minutes at ~24k
    /// jobs/s; vacuuming every 10 s held them at ~400 MB and 36 MB, docs/benchmarks.md). A role
    /// that does not own the table gets a warning from the server and the pass does nothing.
    ///
    /// ```no_run
    /// # async fn demo(db: jobsmith::Db) -> jobsmith::Result<()> {
    /// use std::time::Duration;
    /// let runtime = db.runtime().queue("default", 10).vacuum(Some((50_000, Duration::from_secs(5)))).start().await?;
    /// # runtime.shutdown().await }
    /// ```
    pub fn vacuum(mut self, when: Option<(u64, Duration)>) -> Self {
        self.config.vacuum = when;
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

    /// The largest result a job may record, in bytes of its JSON encoding. Default 1 MiB
    /// ([`crate::defaults::DEFAULT_MAX_RESULT_BYTES`]). A larger result fails the attempt with an
    /// error that says so (and the job is retried like any failure): results live in the
    /// database, beside every job's row.
    pub fn max_result_bytes(mut self, bytes: usize) -> Self {
        self.config.max_result_bytes = bytes;
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

    /// Gives the jobs of this runtime `value`, which a job fn takes as a `State<T>` parameter
    /// (each job a clone of it). One value per type; a later one of the same type replaces it.
    /// `start()` fails if a job of a queue this runtime runs takes a state type nobody gave.
    ///
    /// ```no_run
    /// use jobsmith::State;
    ///
    /// #[derive(Clone)]
    /// struct App { http: String }
    ///
    /// #[jobsmith::job(queue = "benefits")]
    /// async fn sync_benefits(State(app): State<App>, patient_id: i64) -> Result<(), String> {
    ///     let _ = (app.http, patient_id);
    ///     Ok(())
    /// }
    ///
    /// # async fn demo(db: jobsmith::Db) -> jobsmith::Result<()> {
    /// let runtime = db.runtime().queue("benefits", 10).state(App { http: "client".into() }).start().await?;
    /// # runtime.shutdown().await }
    /// ```
    pub fn state<T: crate::app_state::StateValue>(mut self, value: T) -> Self {
        self.states.insert(value);
        self
    }

    /// Runs exactly these workers instead of every `#[job]` linked into the binary.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Starts the node: checks the workers and options, then starts every queue. The database
    /// must be migrated (see [`crate::Db::migrate`]).
    pub async fn start(self) -> Result<Runtime> {
        self.config.validate()?;
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
            let queue = QueueState::new(name.clone(), limit);
            // A queue that a job type declares heavier than 1 for takes jobs by weight from its
            // first fetch (ADR 23); any other learns it from the first heavy job it claims.
            if registry.iter().any(|w| w.options.queue == name && w.options.weight > 1) {
                queue.mark_weighted();
            }
            if queues.insert(name.clone(), Arc::new(queue)).is_some() {
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
        missing_states(&registry, &queues, &self.states)?;
        let node = self.node.unwrap_or_else(default_node_name);
        let plan = Plan {
            engine: self.engine,
            registry,
            node,
            config: self.config,
            queues,
            persisted: self.persisted,
            cron,
            states: self.states,
        };
        let (shared, supervisor) = lifecycle::start(plan).await?;
        Ok(Runtime::new(shared, supervisor))
    }
}

impl RuntimeBuilder {
    /// A builder on `engine` (see [`crate::Db::runtime`], the one way users make one).
    pub(crate) fn new(engine: Arc<dyn Engine>) -> Self {
        RuntimeBuilder {
            engine,
            node: None,
            queues: Vec::new(),
            persisted: Vec::new(),
            prefetch: Vec::new(),
            registry: None,
            cron: Vec::new(),
            config: Config::default(),
            states: States::new(),
            #[cfg(feature = "prometheus")]
            prometheus: None,
        }
    }
}

/// Refuses to start when a job this runtime runs takes state it was not given: every job whose
/// declared queue is one of `queues`, each with every missing type. A job of another queue (one
/// this node runs only if a row of it was inserted into a queue of this node) is not refused: it
/// may be meant for other nodes, and if it runs here without its state, it is retried (ADR 17).
fn missing_states(
    registry: &Registry,
    queues: &HashMap<String, Arc<QueueState>>,
    states: &States,
) -> Result<()> {
    let mut missing: Vec<String> = registry
        .iter()
        .filter(|w| queues.contains_key(w.options.queue))
        .flat_map(|w| states.missing(w.name, w.states))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort();
    Err(Error::MissingState(missing))
}

/// `hostname-pid`: unique per process on a host, readable in `attempted_by`. A second runtime
/// started in the same process gets `hostname-pid-2` (and so on): with one name, the second's
/// start took the first's executing jobs back as left over by an earlier run of the node, and
/// they ran twice (found by the typed-state tests, which start two runtimes at once). The first
/// keeps the plain name, so a container restarted as the same pid still takes back its jobs.
fn default_node_name() -> String {
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string());
    match STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
        0 => format!("{host}-{}", std::process::id()),
        n => format!("{host}-{}-{}", std::process::id(), n + 1),
    }
}
