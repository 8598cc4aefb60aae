//! This node's heartbeat and its part in leader election.
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
//! over time this node itself was connected.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::backoff::reconnect_delay;
use crate::engine::Heartbeat;

/// Heartbeats between two reads of the persisted queue settings.
const SETTINGS_EVERY: u64 = 10;

/// How long one heartbeat (with its lease renewal) may take: half a lease. With the heartbeat
/// interval under half a lease (checked at start), a leader that cannot renew steps down at most
/// `heartbeat_interval + lease / 2` after its last renewal, before its lease runs out.
pub(crate) fn beat_deadline(lease: Duration) -> Duration {
    lease / 2
}

/// The share of a lease a leader counts on: it steps down a tenth of the lease early, so a timer
/// that fires late on a loaded machine still stops it before the lease can pass to another node.
fn counted_lease(lease: Duration) -> Duration {
    lease.mul_f64(0.9)
}

/// What is left of `until` (the end of the lease this node counts on), if it leads.
fn left_of_lease(shared: &Shared, until: Option<Instant>) -> Option<Duration> {
    until
        .filter(|_| shared.is_leader.load(Ordering::Acquire))
        .map(|u| u.saturating_duration_since(Instant::now()))
}

pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let queues: Vec<String> = shared.queues.keys().cloned().collect();
    let mut failures = 0u32;
    let mut beats = 0u64;
    // When the lease this node last renewed runs out, by this node's clock, counted from before
    // the renewal was sent and a tenth early: the lease in the database (renewal time + lease)
    // never ends earlier, so stepping down at this instant is before another node can take over.
    let mut lease_until: Option<Instant> = None;
    let lease = shared.config.leader_lease;
    let gap = shared.config.reconnect_gap();
    loop {
        beats += 1;
        let sent = Instant::now();
        let beat = async {
            let heartbeat = Heartbeat { node: &shared.node, queues: &queues, reconnect_gap: gap };
            shared.engine.heartbeat(&heartbeat).await?;
            if shared.config.leader_eligible {
                shared.engine.lead(&shared.node, lease).await
            } else {
                Ok(false)
            }
        };
        // A beat gets half a lease, and a leader no more than what is left of its lease: a
        // database that does not answer (the pool waits up to its acquire timeout, 30 s by
        // default) must not keep a leader that cannot renew believing it leads.
        let mut deadline = beat_deadline(lease);
        if let Some(left) = left_of_lease(&shared, lease_until) {
            deadline = deadline.min(left);
        }
        let outcome = match tokio::time::timeout(deadline, beat).await {
            Ok(result) => result,
            Err(_) => Err(crate::error::Error::Unexpected(format!(
                "heartbeat did not complete within {deadline:?}"
            ))),
        };
        let wait = match outcome {
            Ok(leads) => {
                failures = 0;
                shared.connected_since.lock().expect("connected_since").get_or_insert_with(Instant::now);
                lease_until = leads.then(|| sent + counted_lease(lease));
                let was = shared.is_leader.swap(leads, Ordering::AcqRel);
                if leads != was {
                    if leads {
                        tracing::info!(target: "jobsmith", node = %shared.node, "jobsmith node became the leader");
                        shared.leader_wake.notify_waiters();
                    } else {
                        tracing::info!(target: "jobsmith", node = %shared.node, "jobsmith node is no longer the leader");
                    }
                }
                // Queue settings arrive by notification; reading them every few beats as well
                // covers a lost notification or a pooler that does not pass LISTEN through. After
                // the beat, and bounded by what is left of the lease, so it never holds a renewal
                // back.
                if beats.is_multiple_of(SETTINGS_EVERY) {
                    let mut limit = beat_deadline(lease);
                    if let Some(left) = left_of_lease(&shared, lease_until) {
                        limit = limit.min(left);
                    }
                    match tokio::time::timeout(limit, super::apply_settings(&shared)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(target: "jobsmith", error = %e, "jobsmith could not reload queue settings")
                        }
                        Err(_) => {
                            tracing::warn!(target: "jobsmith", "jobsmith queue settings reload timed out")
                        }
                    }
                }
                shared.config.heartbeat_interval
            }
            Err(e) => {
                failures += 1;
                // Disconnected: heartbeat ages seen after this say nothing about other nodes
                // until this node has been connected again for a whole node TTL (see rescue).
                *shared.connected_since.lock().expect("connected_since") = None;
                lease_until = None;
                // Without a heartbeat we cannot know we still hold the lease: stop leading.
                if shared.is_leader.swap(false, Ordering::AcqRel) {
                    tracing::warn!(target: "jobsmith", node = %shared.node, "jobsmith leader lost its database; stepping down");
                }
                tracing::warn!(target: "jobsmith", error = %e, "jobsmith heartbeat failed; retrying");
                reconnect_delay(failures).min(shared.config.heartbeat_interval)
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = shared.try_lead.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    if shared.is_leader.swap(false, Ordering::AcqRel)
        && let Err(e) = shared.engine.resign(&shared.node).await
    {
        tracing::warn!(target: "jobsmith", error = %e, "jobsmith could not resign leadership; it lapses with the lease");
    }
    if let Err(e) = shared.engine.remove_node(&shared.node).await {
        tracing::warn!(target: "jobsmith", error = %e, "jobsmith could not remove its node row; it lapses with the heartbeat");
    }
}
