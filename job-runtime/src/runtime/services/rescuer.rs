//! The rescuer (leader only): jobs `executing` on nodes whose heartbeat lapsed go back to
//! `available` (or `discarded` when out of attempts).
//!
//! Only while this node has been connected for a whole `node_ttl` without a break: right after an
//! outage every other node's heartbeat looks old, and one still reconnecting cannot be told from
//! one that died. Waiting one TTL gives every live node the time to heartbeat again; a node that
//! truly died stays silent and is rescued then. The statement itself checks this by the
//! database's clock when it runs (the rescuer's own heartbeat fresh, its `connected_since` a TTL
//! old), so one delayed by an outage or a frozen server finds nothing to do; the check here only
//! saves the round trip, and the deadline keeps a hung statement from holding the loop.

use std::time::Duration;

use super::Service;
use crate::engine::{RescueReport, RescueRequest};
use crate::error::{Error, Result};
use crate::runtime::config::Config;
use crate::runtime::shared::Shared;

/// The rescuer's settings.
#[derive(Debug, Clone)]
pub(crate) struct RescuerConfig {
    /// Time between two passes.
    pub(crate) interval: Duration,
    /// A node whose heartbeat is older than this is dead; also how long this node must have been
    /// connected before it judges others.
    pub(crate) node_ttl: Duration,
    /// A heartbeat gap longer than this is a disconnection (see `RescueRequest`).
    pub(crate) reconnect_gap: Duration,
    /// Most jobs one statement moves; a full batch is followed by another in the same pass.
    pub(crate) batch: u32,
    /// The longest one statement may take.
    pub(crate) deadline: Duration,
}

impl From<&Config> for RescuerConfig {
    fn from(config: &Config) -> Self {
        RescuerConfig {
            interval: config.rescue_interval,
            node_ttl: config.node_ttl,
            reconnect_gap: config.reconnect_gap(),
            batch: config.rescue_batch,
            deadline: config.node_ttl / 4,
        }
    }
}

/// See the module doc.
pub(crate) struct Rescuer {
    pub(crate) config: RescuerConfig,
}

impl super::Report for RescueReport {
    fn log_at_info(&self) -> bool {
        false
    }

    fn rows(&self) -> u64 {
        self.rescued + self.discarded
    }
}

impl Service for Rescuer {
    const NAME: &'static str = "rescuer";
    type Report = RescueReport;

    fn interval(&self) -> Duration {
        self.config.interval
    }

    fn leader_only(&self) -> bool {
        true
    }

    async fn run_once(&mut self, shared: &Shared) -> Result<RescueReport> {
        let c = &self.config;
        let mut total = RescueReport::default();
        loop {
            if !connected_for(shared, c.node_ttl) {
                tracing::debug!(target: "jobsmith", "jobsmith rescue waits: this node has not been connected for a node TTL yet");
                break;
            }
            let request = RescueRequest {
                rescuer: &shared.node,
                node_ttl: c.node_ttl,
                reconnect_gap: c.reconnect_gap,
                limit: c.batch,
            };
            let r = match tokio::time::timeout(c.deadline, shared.engine.rescue(&request)).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(Error::Unexpected(format!(
                        "rescue did not complete within {:?}",
                        c.deadline
                    )));
                }
            };
            total.rescued += r.rescued;
            total.discarded += r.discarded;
            if r.rescued + r.discarded < u64::from(c.batch) {
                break;
            }
        }
        crate::telemetry::rescued(total.rescued + total.discarded);
        if total.rescued + total.discarded > 0 {
            tracing::warn!(target: "jobsmith", rescued = total.rescued, discarded = total.discarded,
                "jobsmith rescued jobs of dead nodes");
        }
        Ok(total)
    }
}

/// Whether this node's heartbeats have succeeded without a break for at least `ttl`.
fn connected_for(shared: &Shared, ttl: Duration) -> bool {
    shared.connected_since.lock().expect("connected_since").is_some_and(|since| since.elapsed() >= ttl)
}
