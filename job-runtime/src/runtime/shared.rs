//! What every task of a runtime shares, and the few operations on it that several tasks need
//! (giving back prefetched jobs, applying persisted queue settings, stopping a local job). They
//! live here, beside the state they change, so no task calls back into the module that spawned it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::task::TaskTracker;

use super::claims::Claims;
use super::completer::CompleterHandle;
use super::config::Config;
use super::control::{JobControl, StopReason};
use super::queue::QueueState;
use crate::engine::{Ack, AckKind, Engine};
use crate::error::Result;
use crate::registry::Registry;

/// What every task of a runtime shares.
pub(crate) struct Shared {
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) registry: Registry,
    pub(crate) node: String,
    pub(crate) config: Config,
    pub(crate) queues: HashMap<String, Arc<QueueState>>,
    pub(crate) running_jobs: Mutex<HashMap<i64, JobControl>>,
    pub(crate) completer: CompleterHandle,
    pub(crate) stager_wake: Arc<Notify>,
    /// Every executing job's task, so shutdown can wait for them.
    pub(crate) tasks: TaskTracker,
    pub(crate) is_leader: AtomicBool,
    /// Wakes the leader-only services when this node becomes leader.
    pub(crate) leader_wake: Notify,
    /// Makes the heartbeat try for the lease now (the leader resigned).
    pub(crate) try_lead: Notify,
    /// The claims this node holds (see `claims`).
    pub(crate) claims: Arc<Claims>,
    /// Since when this node's heartbeats have succeeded without a break (`None` while they
    /// fail). Rescue judges other nodes' heartbeat ages only over time this node was connected.
    pub(crate) connected_since: Mutex<Option<std::time::Instant>>,
    /// What the jobs take as `State<T>` (see `RuntimeBuilder::state`).
    pub(crate) states: crate::app_state::States,
    /// Held while settings are read and applied, so two applies never interleave (see
    /// `apply_settings`).
    pub(crate) settings_apply: tokio::sync::Mutex<()>,
    /// A reload of the settings, asked for by a notification, waits to run (see `signals`).
    pub(crate) settings_reload_queued: AtomicBool,
}

impl Shared {
    /// Whether this node holds the leader lease.
    pub(crate) fn is_leader(&self) -> bool {
        self.is_leader.load(Ordering::Acquire)
    }

    /// Gives the jobs waiting in `queue`'s prefetch buffer back to `available`, unstarted.
    pub(crate) fn release_buffered(&self, queue: &QueueState) {
        let released = queue.take_buffer();
        if released.is_empty() {
            return;
        }
        let mut running = self.running_jobs.lock().expect("running map");
        for c in &released {
            running.remove(&c.job.id);
        }
        drop(running);
        // Each log (the queue's, or a partition's) gets back its own starts.
        let mut stamps: std::collections::BTreeMap<Option<&str>, Vec<i64>> = Default::default();
        for rated in released.iter().filter_map(|c| c.rated.as_ref()) {
            stamps.entry(rated.partition.as_deref()).or_default().push(rated.stamp_ms);
        }
        for (partition, stamps) in stamps {
            self.refund_rate_starts(&queue.name, partition, stamps);
        }
        for c in released {
            self.completer.send(Ack {
                id: c.job.id,
                attempt: c.job.attempt,
                claim: Some(c.job.claim),
                kind: AckKind::Release,
            });
        }
    }

    /// Takes back the rate-log starts of claims released unstarted (see [`RatedClaim`]), in the
    /// background: a refund that fails or never runs (the process ends first) only leaves the
    /// start to age out of the window, as it would have.
    pub(crate) fn refund_rate_starts(&self, queue: &str, partition: Option<&str>, stamps: Vec<i64>) {
        if stamps.is_empty() {
            return;
        }
        let engine = self.engine.clone();
        let queue = queue.to_string();
        let partition = partition.map(str::to_string);
        tokio::spawn(async move {
            if let Err(error) = engine.refund_rate_starts(&queue, partition.as_deref(), &stamps).await {
                tracing::warn!(target: "jobsmith", %queue, %error, "could not refund a released job's rate-limit start");
            }
        });
    }

    /// Applies persisted settings to this node's queues.
    ///
    /// One apply at a time, from the read to the last setting: the heartbeat's periodic apply and
    /// the one a change notification starts can overlap, and the older read, finishing last,
    /// would put back what the change replaced. In turn, the apply that starts last reads last.
    pub(crate) async fn apply_settings(&self) -> Result<()> {
        let _one_at_a_time = self.settings_apply.lock().await;
        for settings in self.engine.queue_settings().await? {
            if let Some(q) = self.queues.get(&settings.name) {
                if let Some(paused) = settings.paused {
                    q.set_paused(paused);
                    if paused {
                        self.release_buffered(q);
                    }
                }
                if let Some(n) = settings.concurrency {
                    q.set_limit(n as usize);
                }
                let reshapes_fetch = q.global_limit() != settings.global_limit
                    || q.rate_limit() != settings.rate_limit
                    || q.partition_limit() != settings.partition_limit
                    || q.sequence() != settings.sequence;
                if reshapes_fetch {
                    // A fetch in flight under the old limits ends first (the producer holds the
                    // gate across a fetch and its claims): once the node shows a new limit, no
                    // claim is made under the old one. Without it, a fetch built just before the
                    // change could wait for a connection and claim unlimited afterwards.
                    let _gate = q.fetch_gate().await;
                    q.set_global_limit(settings.global_limit);
                    q.set_rate_limit(settings.rate_limit);
                    q.set_partition_limit(settings.partition_limit);
                    q.set_sequence(settings.sequence);
                }
            }
        }
        Ok(())
    }

    /// Stops job `id` if it runs here (its token fires); a cancelled job still waiting in a
    /// prefetch buffer leaves it at once rather than holding its place until a slot frees.
    /// [`Shared::stop_local_job`] for one claim of the row only: a run or buffered claim of the
    /// same row under another claim is left alone.
    pub(crate) fn stop_local_claim(&self, id: i64, claim: i64) {
        if let Some(control) = self.running_jobs.lock().expect("running map").get(&id)
            && control.claim == claim
        {
            control.stop(StopReason::Cancelled);
        }
        for q in self.queues.values() {
            if let Some(c) = q.take_claimed_if(id, claim) {
                self.cancel_buffered(c);
            }
        }
    }

    /// A claim taken out of a prefetch buffer before it ran: cancelled without running.
    fn cancel_buffered(&self, c: super::queue::Claimed) {
        let id = c.job.id;
        self.running_jobs.lock().expect("running map").remove(&id);
        let reason = "cancelled by request".to_string();
        self.completer.send(Ack {
            id,
            attempt: c.job.attempt,
            claim: Some(c.job.claim),
            kind: AckKind::Cancel { reason },
        });
    }

    pub(crate) fn stop_local_job(&self, id: i64, reason: StopReason) {
        if let Some(control) = self.running_jobs.lock().expect("running map").get(&id) {
            control.stop(reason);
        }
        if reason == StopReason::Cancelled {
            for q in self.queues.values() {
                if let Some(c) = q.take_claimed(id) {
                    self.cancel_buffered(c);
                }
            }
        }
    }
}
