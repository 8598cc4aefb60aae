//! Leader-only maintenance. Each service has its config, a `run_once` that returns what it did,
//! and runs in [`every`]: a ticker that only works while this node leads.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::cron::{CronEntry, due_slots};
use crate::engine::{RescueReport, RescueRequest, Retention};
use crate::error::Result;
use crate::types::CronFire;

/// Runs `job` every `interval` while this node leads (and once as soon as it becomes leader).
pub(crate) async fn every<F, Fut>(
    shared: Arc<Shared>,
    interval: Duration,
    stop: CancellationToken,
    what: &str,
    mut job: F,
) where
    F: FnMut(Arc<Shared>) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Duration>>>,
{
    loop {
        let mut wait = interval;
        if shared.is_leader.load(Ordering::Acquire) {
            match job(shared.clone()).await {
                Ok(sooner) => wait = sooner.map_or(interval, |s| s.min(interval)),
                Err(e) => {
                    tracing::warn!(target: "jobsmith", error = %e, service = what, "jobsmith maintenance failed; will retry")
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = shared.leader_wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Rescue: jobs `executing` on nodes whose heartbeat lapsed go back to `available`.
///
/// Only while this node has been connected for a whole `node_ttl` without a break: right after an
/// outage every other node's heartbeat looks old, and one still reconnecting cannot be told from
/// one that died. Waiting one TTL gives every live node the time to heartbeat again; a node that
/// truly died stays silent and is rescued then. The statement itself checks this by the
/// database's clock when it runs (the rescuer's own heartbeat fresh, its `connected_since` a TTL
/// old), so one delayed by an outage or a frozen server finds nothing to do; the check here only
/// saves the round trip, and the deadline keeps a hung statement from holding the loop.
pub(crate) async fn rescue_once(shared: &Shared) -> Result<RescueReport> {
    let ttl = shared.config.node_ttl;
    let mut total = RescueReport::default();
    loop {
        if !connected_for(shared, ttl) {
            tracing::debug!(target: "jobsmith", "jobsmith rescue waits: this node has not been connected for a node TTL yet");
            break;
        }
        let request = RescueRequest {
            rescuer: &shared.node,
            node_ttl: ttl,
            reconnect_gap: shared.config.reconnect_gap(),
            limit: 1_000,
        };
        let r = match tokio::time::timeout(ttl / 4, shared.engine.rescue(&request)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(crate::error::Error::Unexpected(format!(
                    "rescue did not complete within {:?}",
                    ttl / 4
                )));
            }
        };
        total.rescued += r.rescued;
        total.discarded += r.discarded;
        if r.rescued + r.discarded < 1_000 {
            break;
        }
    }
    crate::telemetry::rescued(total.rescued + total.discarded);
    if total.rescued + total.discarded > 0 {
        tracing::warn!(target: "jobsmith",
            rescued = total.rescued,
            discarded = total.discarded,
            "jobsmith rescued jobs of dead nodes"
        );
    }
    Ok(total)
}

/// Whether this node's heartbeats have succeeded without a break for at least `ttl`.
fn connected_for(shared: &Shared, ttl: Duration) -> bool {
    shared.connected_since.lock().expect("connected_since").is_some_and(|since| since.elapsed() >= ttl)
}

/// Prune: deletes finished rows past their retention, in bounded batches so no statement holds
/// many locks or runs long.
pub(crate) async fn prune_once(shared: &Shared, retention: &Retention, batch: u32) -> Result<u64> {
    let mut total = 0;
    loop {
        let n = shared.engine.prune(retention, batch).await?;
        total += n;
        if n < u64::from(batch) {
            break;
        }
        tokio::task::yield_now().await;
    }
    if total > 0 {
        tracing::info!(target: "jobsmith", pruned = total, "jobsmith pruned finished jobs");
    }
    Ok(total)
}

/// Cron: inserts the jobs of every due slot. Returns the jobs inserted and when the next slot of
/// any entry falls due.
pub(crate) async fn cron_once(shared: &Shared, entries: &[CronEntry]) -> Result<(usize, Option<Duration>)> {
    let mut fired = 0;
    let now = shared.engine.now().await?;
    let mut next: Option<Duration> = None;
    for entry in entries {
        let last = shared.engine.cron_last(entry.name()).await?;
        let due = due_slots(entry.schedule(), last, now, entry.missed_policy());
        if let Some(new_last) = due.last {
            let jobs = due.fire.iter().map(|slot| entry.job_for(*slot)).collect::<Vec<_>>();
            let n = jobs.len();
            if shared
                .engine
                .cron_fire(CronFire { name: entry.name(), expected: last, new_last, jobs })
                .await?
            {
                fired += n;
                if n > 0 {
                    tracing::info!(target: "jobsmith", entry = entry.name(), slots = n, "jobsmith cron fired");
                }
            }
        }
        if let Some(t) = entry.schedule().next_after(now) {
            let d = (t - now).to_std().unwrap_or_default();
            next = Some(next.map_or(d, |n| n.min(d)));
        }
    }
    Ok((fired, next))
}

/// Gauges: jobs per queue and state, refreshed by the leader only, so a cluster does not run the
/// count on every node.
pub(crate) async fn gauges_once(
    shared: &Shared,
    previous: &mut std::collections::HashSet<(String, String)>,
) -> Result<()> {
    let counts = shared.engine.count_by_state().await?;
    crate::telemetry::state_gauges(&counts, previous);
    Ok(())
}
