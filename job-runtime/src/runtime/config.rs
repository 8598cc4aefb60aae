//! A runtime's tunables: their defaults, named, and the one check that refuses bad values.
//!
//! Nothing is clamped: a value that cannot work (a batch of 0, an interval of 0, timings that
//! would take live nodes for dead) is refused at [`crate::RuntimeBuilder::start`] with a message
//! that names the setting, so a typo never turns silently into another setting.

use std::time::Duration;

use crate::engine::Retention;
use crate::error::{Error, Result};

/// How often an idle queue looks for work when no notification arrives.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long shutdown lets running jobs finish before handing them back.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(15);
/// Most jobs one fetch takes (the free slots bound it first).
pub const DEFAULT_FETCH_BATCH: usize = 1_000;
/// Most results one write records.
pub const DEFAULT_ACK_BATCH: usize = 1_000;
/// How long a result may wait for others to join its write.
pub const DEFAULT_ACK_DELAY: Duration = Duration::from_millis(1);
/// How often a node heartbeats and renews or seeks the leader lease.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// A node whose heartbeat is older than this is dead.
pub const DEFAULT_NODE_TTL: Duration = Duration::from_secs(10);
/// How long a leader lease lasts without renewal.
pub const DEFAULT_LEADER_LEASE: Duration = Duration::from_secs(5);
/// How often the leader rescues jobs of dead nodes, and every node reconciles its claims.
pub const DEFAULT_RESCUE_INTERVAL: Duration = Duration::from_secs(2);
/// Most jobs one rescue statement moves.
pub const DEFAULT_RESCUE_BATCH: u32 = 1_000;
/// How often the leader prunes finished rows.
pub const DEFAULT_PRUNE_INTERVAL: Duration = Duration::from_secs(30);
/// Most rows one prune statement deletes.
pub const DEFAULT_PRUNE_BATCH: u32 = 10_000;
/// How often the leader looks at the jobs table's dead row versions (PostgreSQL).
pub const DEFAULT_VACUUM_INTERVAL: Duration = Duration::from_secs(10);
/// Dead row versions of the jobs table at which the leader vacuums it (PostgreSQL).
pub const DEFAULT_VACUUM_MIN_DEAD: u64 = 100_000;
/// Most rows one staging statement makes available.
pub const DEFAULT_STAGE_BATCH: u32 = 5_000;
/// How often the leader refreshes the jobs-per-state gauges.
pub const DEFAULT_GAUGE_INTERVAL: Duration = Duration::from_secs(10);
/// How often the leader looks for due cron slots (it also wakes for the next slot).
pub const DEFAULT_CRON_INTERVAL: Duration = Duration::from_secs(1);
/// How long completed rows are kept.
pub const DEFAULT_RETENTION_COMPLETED: Duration = Duration::from_secs(24 * 3600);
/// How long cancelled and discarded rows are kept.
pub const DEFAULT_RETENTION_FAILED: Duration = Duration::from_secs(7 * 24 * 3600);
/// The largest result a job may record, in bytes of its JSON encoding (1 MiB).
pub const DEFAULT_MAX_RESULT_BYTES: usize = 1 << 20;

/// Tunables of a runtime. Every field has a default (the constants above); see
/// [`crate::RuntimeBuilder`] for what each one does.
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
    pub(crate) rescue_batch: u32,
    pub(crate) prune_interval: Duration,
    pub(crate) prune_batch: u32,
    /// Vacuum the jobs table at this many dead row versions, looking this often; `None`: never.
    pub(crate) vacuum: Option<(u64, Duration)>,
    pub(crate) stage_batch: u32,
    pub(crate) retention: Retention,
    pub(crate) cron_from_attributes: bool,
    pub(crate) cron_interval: Duration,
    pub(crate) log_args: bool,
    pub(crate) max_result_bytes: usize,
    pub(crate) gauge_interval: Duration,
    pub(crate) relaxed_fetch_commit: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            poll_interval: DEFAULT_POLL_INTERVAL,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            fetch_batch: DEFAULT_FETCH_BATCH,
            ack_batch: DEFAULT_ACK_BATCH,
            ack_delay: DEFAULT_ACK_DELAY,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            node_ttl: DEFAULT_NODE_TTL,
            leader_lease: DEFAULT_LEADER_LEASE,
            leader_eligible: true,
            rescue_interval: DEFAULT_RESCUE_INTERVAL,
            rescue_batch: DEFAULT_RESCUE_BATCH,
            prune_interval: DEFAULT_PRUNE_INTERVAL,
            prune_batch: DEFAULT_PRUNE_BATCH,
            vacuum: Some((DEFAULT_VACUUM_MIN_DEAD, DEFAULT_VACUUM_INTERVAL)),
            stage_batch: DEFAULT_STAGE_BATCH,
            retention: Retention {
                completed: DEFAULT_RETENTION_COMPLETED,
                cancelled: DEFAULT_RETENTION_FAILED,
                discarded: DEFAULT_RETENTION_FAILED,
            },
            cron_from_attributes: true,
            cron_interval: DEFAULT_CRON_INTERVAL,
            log_args: false,
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
            gauge_interval: DEFAULT_GAUGE_INTERVAL,
            relaxed_fetch_commit: false,
        }
    }
}

impl Config {
    /// Refuses every value that cannot work, naming the setting. Called once, by `start`.
    pub(crate) fn validate(&self) -> Result<()> {
        let refuse = |message: String| Err(Error::InvalidOption(message));
        for (name, value) in [("fetch_batch", self.fetch_batch), ("ack_batching's max", self.ack_batch)] {
            if value == 0 {
                return refuse(format!("{name} must be at least 1, got 0"));
            }
        }
        for (name, value) in [
            ("poll_interval", self.poll_interval),
            ("heartbeat_interval", self.heartbeat_interval),
            ("rescue_interval", self.rescue_interval),
            ("the prune interval (retention)", self.prune_interval),
            ("gauge_interval", self.gauge_interval),
            ("the vacuum interval", self.vacuum.map_or(Duration::MAX, |v| v.1)),
        ] {
            if value.is_zero() {
                return refuse(format!("{name} must be longer than zero: a zero interval would never rest"));
            }
        }
        // Every node, eligible or not: a beat's deadline is half a lease.
        if self.heartbeat_interval * 2 >= self.leader_lease {
            return refuse(format!(
                "heartbeat_interval ({:?}) must be under half the leader_lease ({:?}): a leader that cannot \
                 renew must step down before its lease runs out",
                self.heartbeat_interval, self.leader_lease
            ));
        }
        // A live node's heartbeats are at most this far apart (an interval plus a beat that takes
        // its whole deadline); a TTL no longer than that would take live nodes for dead.
        let gap = self.reconnect_gap();
        if self.node_ttl <= gap.max(self.heartbeat_interval * 2) {
            return refuse(format!(
                "node_ttl ({:?}) must be more than heartbeat_interval + leader_lease / 2 ({gap:?}) and more than \
                 twice the heartbeat_interval, or live nodes are taken for dead",
                self.node_ttl
            ));
        }
        Ok(())
    }

    /// A node whose heartbeats are further apart than this was cut off from the database: beats
    /// come every `heartbeat_interval` and take at most a beat deadline. Its `connected_since`
    /// starts again (see `RescueRequest`).
    pub(crate) fn reconnect_gap(&self) -> Duration {
        self.heartbeat_interval + self.beat_deadline()
    }

    /// How long one heartbeat (with its lease renewal) may take: half a lease. With the heartbeat
    /// interval under half a lease (checked by [`Config::validate`]), a leader that cannot renew
    /// steps down at most `heartbeat_interval + lease / 2` after its last renewal, before its
    /// lease runs out.
    pub(crate) fn beat_deadline(&self) -> Duration {
        self.leader_lease / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(config: Config) -> String {
        match config.validate() {
            Err(Error::InvalidOption(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn zero_batches_are_refused_not_clamped() {
        let message = refused(Config { fetch_batch: 0, ..Config::default() });
        assert!(message.contains("fetch_batch must be at least 1"), "{message}");
        let message = refused(Config { ack_batch: 0, ..Config::default() });
        assert!(message.contains("ack_batching"), "{message}");
    }

    #[test]
    fn zero_intervals_are_refused() {
        let message = refused(Config { poll_interval: Duration::ZERO, ..Config::default() });
        assert!(message.contains("poll_interval must be longer than zero"), "{message}");
        let message = refused(Config { gauge_interval: Duration::ZERO, ..Config::default() });
        assert!(message.contains("gauge_interval"), "{message}");
    }

    #[test]
    fn timings_that_take_live_nodes_for_dead_are_refused() {
        let slow_beat = Config { heartbeat_interval: Duration::from_secs(3), ..Config::default() };
        assert!(refused(slow_beat).contains("under half the leader_lease"));
        let short_ttl = Config { node_ttl: Duration::from_secs(3), ..Config::default() };
        assert!(refused(short_ttl).contains("node_ttl"));
    }
}
