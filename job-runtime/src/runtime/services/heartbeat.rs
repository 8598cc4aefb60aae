//! The heartbeat: this node's heartbeat row and its part in leader election.
//!
//! Every `heartbeat_interval` the node writes its heartbeat row and, if eligible, takes or renews
//! the leader lease (valid for `leader_lease`). A leader that dies stops renewing; another node
//! takes the lease at its first heartbeat after the lease expired, so takeover happens within
//! `leader_lease + heartbeat_interval`. A clean shutdown resigns and tells the others, who try
//! at once.
//!
//! Every beat has a deadline (half a lease, and never past the lease this node holds): a leader
//! whose database stops answering steps down before its lease can run out, so no two nodes lead
//! at once. Each beat also keeps `connected_since`, which rescue uses to judge other nodes only
//! over time this node itself was connected. Every few beats it reads the persisted queue
//! settings too, in case a notification was lost.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::Service;
use crate::engine::Heartbeat as Beat;
use crate::error::{Error, Result};
use crate::runtime::config::Config;
use crate::runtime::shared::Shared;

/// Heartbeats between two reads of the persisted queue settings.
pub(crate) const SETTINGS_EVERY: u64 = 10;

/// The heartbeat's settings.
#[derive(Debug, Clone)]
pub(crate) struct HeartbeatConfig {
    /// Time between two beats.
    pub(crate) interval: Duration,
    /// How long a lease lasts without renewal.
    pub(crate) lease: Duration,
    /// Whether this node seeks the lease.
    pub(crate) leader_eligible: bool,
    /// The longest one beat may take (half a lease).
    pub(crate) deadline: Duration,
    /// A gap between beats longer than this restarts `connected_since`.
    pub(crate) reconnect_gap: Duration,
    /// Beats between two reads of the persisted queue settings.
    pub(crate) settings_every: u64,
}

impl From<&Config> for HeartbeatConfig {
    fn from(config: &Config) -> Self {
        HeartbeatConfig {
            interval: config.heartbeat_interval,
            lease: config.leader_lease,
            leader_eligible: config.leader_eligible,
            deadline: config.beat_deadline(),
            reconnect_gap: config.reconnect_gap(),
            settings_every: SETTINGS_EVERY,
        }
    }
}

/// See the module doc.
pub(crate) struct Heartbeat {
    pub(crate) config: HeartbeatConfig,
    /// The queues this node runs, as its row lists them.
    pub(crate) queues: Vec<String>,
    /// Beats so far.
    pub(crate) beats: u64,
    /// When the lease this node last renewed runs out, by this node's clock, counted from before
    /// the renewal was sent and a tenth early: the lease in the database (renewal time + lease)
    /// never ends earlier, so stepping down at this instant is before another node can take over.
    pub(crate) lease_until: Option<Instant>,
}

impl Heartbeat {
    /// A heartbeat for `queues`, with no beat sent yet.
    pub(crate) fn new(config: HeartbeatConfig, queues: Vec<String>) -> Self {
        Heartbeat { config, queues, beats: 0, lease_until: None }
    }

    /// What is left of the lease this node counts on, if it leads.
    fn left_of_lease(&self, shared: &Shared) -> Option<Duration> {
        self.lease_until.filter(|_| shared.is_leader()).map(|u| u.saturating_duration_since(Instant::now()))
    }

    /// A deadline of at most half a lease, and no more than what is left of a held lease.
    fn bounded(&self, shared: &Shared) -> Duration {
        let mut deadline = self.config.deadline;
        if let Some(left) = self.left_of_lease(shared) {
            deadline = deadline.min(left);
        }
        deadline
    }
}

/// The share of a lease a leader counts on: it steps down a tenth of the lease early, so a timer
/// that fires late on a loaded machine still stops it before the lease can pass to another node.
fn counted_lease(lease: Duration) -> Duration {
    lease.mul_f64(0.9)
}

/// What one beat found.
#[derive(Debug)]
pub(crate) struct HeartbeatReport {
    /// This node leads after the beat.
    #[expect(dead_code, reason = "read through Debug, in the pass's log line")]
    pub(crate) leads: bool,
}

impl super::Report for HeartbeatReport {}

impl Service for Heartbeat {
    const NAME: &'static str = "heartbeat";
    type Report = HeartbeatReport;

    fn interval(&self) -> Duration {
        self.config.interval
    }

    fn wake<'a>(&self, shared: &'a Shared) -> Option<&'a Notify> {
        Some(&shared.try_lead)
    }

    async fn run_once(&mut self, shared: &Shared) -> Result<HeartbeatReport> {
        self.beats += 1;
        let sent = Instant::now();
        let c = &self.config;
        let beat = async {
            let heartbeat = Beat { node: &shared.node, queues: &self.queues, reconnect_gap: c.reconnect_gap };
            shared.engine.heartbeat(&heartbeat).await?;
            if c.leader_eligible { shared.engine.lead(&shared.node, c.lease).await } else { Ok(false) }
        };
        // A database that does not answer (the pool waits up to its acquire timeout, 30 s by
        // default) must not keep a leader that cannot renew believing it leads.
        let deadline = self.bounded(shared);
        let outcome = match tokio::time::timeout(deadline, beat).await {
            Ok(result) => result,
            Err(_) => Err(Error::Unexpected(format!("heartbeat did not complete within {deadline:?}"))),
        };
        let leads = match outcome {
            Ok(leads) => leads,
            Err(e) => {
                // Disconnected: heartbeat ages seen after this say nothing about other nodes
                // until this node has been connected again for a whole node TTL (see rescue).
                *shared.connected_since.lock().expect("connected_since") = None;
                self.lease_until = None;
                // Without a heartbeat we cannot know we still hold the lease: stop leading.
                if shared.is_leader.swap(false, Ordering::AcqRel) {
                    tracing::warn!(target: "jobsmith", node = %shared.node, "jobsmith leader lost its database; stepping down");
                }
                return Err(e);
            }
        };
        shared.connected_since.lock().expect("connected_since").get_or_insert_with(Instant::now);
        self.lease_until = leads.then(|| sent + counted_lease(self.config.lease));
        let was = shared.is_leader.swap(leads, Ordering::AcqRel);
        if leads != was {
            if leads {
                tracing::info!(target: "jobsmith", node = %shared.node, "jobsmith node became the leader");
                shared.leader_wake.notify_waiters();
            } else {
                tracing::info!(target: "jobsmith", node = %shared.node, "jobsmith node is no longer the leader");
            }
        }
        // Queue settings arrive by notification; reading them every few beats as well covers a
        // lost notification or a pooler that does not pass LISTEN through. After the beat, and
        // bounded by what is left of the lease, so it never holds a renewal back.
        if self.beats.is_multiple_of(self.config.settings_every) {
            match tokio::time::timeout(self.bounded(shared), shared.apply_settings()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(target: "jobsmith", error = %e, "jobsmith could not reload queue settings")
                }
                Err(_) => tracing::warn!(target: "jobsmith", "jobsmith queue settings reload timed out"),
            }
        }
        Ok(HeartbeatReport { leads })
    }

    /// Resigns (the others try at once) and removes the node row, last of all.
    async fn stopped(&mut self, shared: &Shared) {
        if shared.is_leader.swap(false, Ordering::AcqRel)
            && let Err(e) = shared.engine.resign(&shared.node).await
        {
            tracing::warn!(target: "jobsmith", error = %e, "jobsmith could not resign leadership; it lapses with the lease");
        }
        if let Err(e) = shared.engine.remove_node(&shared.node).await {
            tracing::warn!(target: "jobsmith", error = %e, "jobsmith could not remove its node row; it lapses with the heartbeat");
        }
    }
}
