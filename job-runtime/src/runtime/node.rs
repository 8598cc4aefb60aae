//! This node's heartbeat and its part in leader election.
//!
//! Every `heartbeat_interval` the node writes its heartbeat row and, if eligible, takes or renews
//! the leader lease (valid for `leader_lease`). A leader that dies stops renewing; another node
//! takes the lease at its first heartbeat after the lease expired, so takeover happens within
//! `leader_lease + heartbeat_interval`. A clean shutdown resigns and tells the others, who try
//! at once.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::backoff::reconnect_delay;

/// Heartbeats between two reads of the persisted queue settings.
const SETTINGS_EVERY: u64 = 10;

pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let queues: Vec<String> = shared.queues.keys().cloned().collect();
    let mut failures = 0u32;
    let mut beats = 0u64;
    loop {
        beats += 1;
        // Queue settings arrive by notification; reading them every few beats as well covers a
        // lost notification or a pooler that does not pass LISTEN through.
        if beats.is_multiple_of(SETTINGS_EVERY)
            && let Err(e) = super::apply_settings(&shared).await
        {
            tracing::warn!(target: "jobsmith", error = %e, "jobsmith could not reload queue settings");
        }
        let beat = async {
            shared.engine.heartbeat(&shared.node, &queues).await?;
            if shared.config.leader_eligible {
                shared.engine.lead(&shared.node, shared.config.leader_lease).await
            } else {
                Ok(false)
            }
        };
        let wait = match beat.await {
            Ok(leads) => {
                failures = 0;
                let was = shared.is_leader.swap(leads, Ordering::AcqRel);
                if leads != was {
                    if leads {
                        tracing::info!(target: "jobsmith", node = %shared.node, "jobsmith node became the leader");
                        shared.leader_wake.notify_waiters();
                    } else {
                        tracing::info!(target: "jobsmith", node = %shared.node, "jobsmith node is no longer the leader");
                    }
                }
                shared.config.heartbeat_interval
            }
            Err(e) => {
                failures += 1;
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
