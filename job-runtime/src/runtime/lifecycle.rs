//! A node's life: what starts, in which order, and how it stops.
//!
//! Every task of a node belongs to a [`Phase`]. Each phase has its own cancellation token, a
//! child of one parent token, and shutdown stops the phases in the order the enum lists them,
//! with the steps between them that make a stop clean (running jobs finish or are handed back,
//! every result is written, lost claims are handed back) written out in [`shutdown`]. A new task
//! picks its phase; a new step goes between the phases it must follow and precede.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::claims;
use super::completer::{self, Completer};
use super::config::Config;
use super::control::StopReason;
use super::producer;
use super::queue::QueueState;
use super::services::{self, Service};
use super::shared::Shared;
use super::signals;
use crate::cron::CronEntry;
use crate::engine::{Engine, Heartbeat, QueueSettingsChange};
use crate::error::Result;
use crate::registry::Registry;
use crate::types::SettingsUpdate;

/// The groups of a node's tasks, in the order shutdown stops them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// One producer per queue: stopped first, so nothing new is fetched.
    Producers,
    /// The completer: stopped once every job has ended, after writing every result.
    Completer,
    /// The listener, signal dispatch and the background services but the heartbeat.
    Services,
    /// The heartbeat: last, so the node row and the lease outlive everything else.
    Heartbeat,
}

impl Phase {
    const ALL: [Phase; 4] = [Phase::Producers, Phase::Completer, Phase::Services, Phase::Heartbeat];
}

/// The tasks of a node by phase, under one parent token.
pub(crate) struct Supervisor {
    parent: CancellationToken,
    phases: Vec<(Phase, CancellationToken, Vec<JoinHandle<()>>)>,
}

impl Supervisor {
    fn new() -> Self {
        let parent = CancellationToken::new();
        let phases = Phase::ALL.iter().map(|p| (*p, parent.child_token(), Vec::new())).collect();
        Supervisor { parent, phases }
    }

    fn phase(&mut self, phase: Phase) -> &mut (Phase, CancellationToken, Vec<JoinHandle<()>>) {
        self.phases.iter_mut().find(|(p, _, _)| *p == phase).expect("every phase exists")
    }

    /// Spawns a task of `phase`, given that phase's token.
    fn spawn<F, Fut>(&mut self, phase: Phase, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (_, token, handles) = self.phase(phase);
        let task = task(token.clone());
        handles.push(tokio::spawn(task));
    }

    /// Spawns background service `service` in `phase`, run by the one service loop.
    fn service<S: Service>(&mut self, phase: Phase, shared: &Arc<Shared>, service: S) {
        let shared = shared.clone();
        self.spawn(phase, move |stop| services::run(service, shared, stop));
    }

    /// Stops every task of `phase` and waits for them.
    async fn stop(&mut self, phase: Phase) {
        let (_, token, handles) = self.phase(phase);
        token.cancel();
        for handle in std::mem::take(handles) {
            let _ = handle.await;
        }
    }
}

/// Everything a node is started from, checked by the builder.
pub(crate) struct Plan {
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) registry: Registry,
    pub(crate) node: String,
    pub(crate) config: Config,
    pub(crate) queues: HashMap<String, Arc<QueueState>>,
    /// Settings given in code, stored at start (see `RuntimeBuilder::global_limit`).
    pub(crate) persisted: Vec<(String, QueueSettingsChange)>,
    pub(crate) cron: Vec<CronEntry>,
    pub(crate) states: crate::app_state::States,
}

/// Starts a node: settings first, then the completer, the listener, the take-back of an earlier
/// run's jobs, the first heartbeat, the services, and the producers last, so no job starts before
/// everything that records its end is running.
pub(crate) async fn start(plan: Plan) -> Result<(Arc<Shared>, Supervisor)> {
    let mut supervisor = Supervisor::new();
    match start_in(plan, &mut supervisor).await {
        Ok(shared) => Ok((shared, supervisor)),
        Err(e) => {
            // Nothing half-started stays behind: the completer and the listener (which holds a
            // connection) stop with the parent token.
            supervisor.parent.cancel();
            Err(e)
        }
    }
}

async fn start_in(plan: Plan, supervisor: &mut Supervisor) -> Result<Arc<Shared>> {
    let Plan { engine, registry, node, config, queues, persisted, cron, states } = plan;
    let (completer_handle, ack_rx) = completer::channel();
    let stager_wake = Arc::new(Notify::new());
    let shared = Arc::new(Shared {
        engine: engine.clone(),
        registry,
        node: node.clone(),
        config,
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
        states,
        settings_apply: tokio::sync::Mutex::new(()),
        settings_reload_queued: AtomicBool::new(false),
    });
    let config = &shared.config;

    // Persisted queue settings: global and rate limits from the builder first, then apply all. A
    // limit configured in code is meant, so it is stored even for a queue nobody knows yet.
    for (queue, change) in &persisted {
        let change = *change;
        engine.update_queue_settings(&SettingsUpdate { queue, change, allow_unknown: true }).await?;
    }
    shared.apply_settings().await?;

    let completer = Completer {
        handle: shared.completer.clone(),
        engine: engine.clone(),
        node: node.clone(),
        rx: ack_rx,
        batch: config.ack_batch,
        delay: config.ack_delay,
        stager: stager_wake,
        claims: shared.claims.clone(),
    };
    supervisor.spawn(Phase::Completer, |stop| completer.run(stop));

    let (signal_tx, signal_rx) = mpsc::unbounded_channel();
    {
        let engine = engine.clone();
        supervisor.spawn(Phase::Services, move |stop| async move { engine.listen(signal_tx, stop).await });
        let shared = shared.clone();
        supervisor.spawn(Phase::Services, move |stop| signals::dispatch(shared, signal_rx, stop));
    }

    // Jobs an earlier run of this node name left `executing` (a crash, then a restart with the
    // same name, as containers do) can be running nowhere: take them back now, since this node's
    // fresh heartbeat would otherwise keep them from ever being rescued.
    let released = engine.release_node(&node).await?;
    if released.rescued + released.discarded > 0 {
        crate::telemetry::rescued(released.rescued + released.discarded);
        tracing::warn!(target: "jobsmith", node = %node, rescued = released.rescued, discarded = released.discarded,
            "jobsmith took back jobs left running by an earlier run of this node");
    }
    // The first heartbeat (and lease attempt) before any job starts, so this node's jobs are
    // never taken for a dead node's.
    let queue_names: Vec<String> = shared.queues.keys().cloned().collect();
    let beat = Heartbeat { node: &node, queues: &queue_names, reconnect_gap: config.reconnect_gap() };
    engine.heartbeat(&beat).await?;
    *shared.connected_since.lock().expect("connected_since") = Some(std::time::Instant::now());
    let heartbeat = services::heartbeat::Heartbeat::new(config.into(), queue_names);
    supervisor.service(Phase::Heartbeat, &shared, heartbeat);

    supervisor.service(Phase::Services, &shared, services::rescuer::Rescuer { config: config.into() });
    supervisor.service(Phase::Services, &shared, services::pruner::Pruner { config: config.into() });
    if let Some((min_dead, interval)) = config.vacuum {
        supervisor.service(Phase::Services, &shared, services::vacuumer::Vacuumer { min_dead, interval });
    }
    let gauges = services::gauges::Gauges::new(config.into());
    supervisor.service(Phase::Services, &shared, gauges);
    // Always: entries stored in the database may be added at any time (ADR 30).
    let cron = services::cron::Cron::new(config.into(), Arc::new(cron));
    supervisor.service(Phase::Services, &shared, cron);
    if !shared.queues.is_empty() {
        let reconciler =
            services::reconciler::ClaimsReconciler { config: config.into(), ledger: Default::default() };
        supervisor.service(Phase::Services, &shared, reconciler);
        supervisor.service(Phase::Services, &shared, services::stager::Stager { config: config.into() });
        for queue in shared.queues.values() {
            let (shared, queue) = (shared.clone(), queue.clone());
            supervisor.spawn(Phase::Producers, move |stop| producer::run(shared, queue, stop));
        }
    }
    tracing::info!(target: "jobsmith", node = %node, engine = engine.name(), queues = shared.queues.len(), "jobsmith node started");
    Ok(shared)
}

/// Stops a node cleanly, phase by phase: no new fetches; running jobs get the grace period, then
/// have their token fired and go back to `available` with the attempt returned; every result is
/// written; lost claims are handed back; then the services, and last the heartbeat (resign,
/// remove the node row).
pub(crate) async fn shutdown(shared: Arc<Shared>, mut supervisor: Supervisor) {
    supervisor.stop(Phase::Producers).await;
    // Jobs claimed ahead never start now; they go back for other nodes.
    for q in shared.queues.values() {
        q.close();
        shared.release_buffered(q);
    }
    shared.tasks.close();
    if tokio::time::timeout(shared.config.shutdown_grace, shared.tasks.wait()).await.is_err() {
        let ids: Vec<i64> = shared.running_jobs.lock().expect("running map").keys().copied().collect();
        tracing::info!(target: "jobsmith", node = %shared.node, jobs = ids.len(), "jobsmith grace period over; handing jobs back");
        for id in ids {
            shared.stop_local_job(id, StopReason::Shutdown);
        }
        shared.tasks.wait().await;
    }
    supervisor.stop(Phase::Completer).await;
    // Every result is written: a row still executing by this node that it does not hold is a
    // claim it lost (its answer never arrived). Hand those back too, so nothing of this node stays
    // executing. Held ones are results the completer could not write; those are rescued once this
    // node's row is gone.
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
    supervisor.stop(Phase::Services).await;
    supervisor.stop(Phase::Heartbeat).await;
    supervisor.parent.cancel();
    tracing::info!(target: "jobsmith", node = %shared.node, "jobsmith node stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_stop_in_order_and_the_parent_reaches_them_all() {
        let mut supervisor = Supervisor::new();
        let order = Arc::new(Mutex::new(Vec::new()));
        for phase in Phase::ALL {
            let order = order.clone();
            supervisor.spawn(phase, move |stop| async move {
                stop.cancelled().await;
                order.lock().unwrap().push(phase);
            });
        }
        supervisor.stop(Phase::Producers).await;
        assert_eq!(*order.lock().unwrap(), vec![Phase::Producers], "only the stopped phase ended");
        supervisor.stop(Phase::Completer).await;
        // The parent stops whatever is left.
        supervisor.parent.cancel();
        for (_, _, handles) in &mut supervisor.phases {
            for handle in std::mem::take(handles) {
                handle.await.unwrap();
            }
        }
        let order = order.lock().unwrap();
        assert_eq!(&order[..2], &[Phase::Producers, Phase::Completer]);
        assert_eq!(order.len(), 4);
    }
}
