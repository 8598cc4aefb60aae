//! Partitioned queues (ADR 24): what a partitioned fetch asks for and returns.

/// What [`crate::engine::RuntimeOps::fetch_partitioned`] asks for beyond a plain fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRequest<'a> {
    /// Most jobs of one partition executing at once, across all nodes (`None`: no such limit).
    pub limit: Option<u32>,
    /// Most starts of one partition in any window, across all nodes (`None`: no such limit);
    /// each partition's starts are logged as a rate-limited queue's are (ADR 25).
    pub rate: Option<super::RateLimit>,
    /// Start after this partition (where this node's last partitioned fetch ended), so the
    /// partitions take turns; `None` starts at the first.
    pub after: Option<&'a str>,
}

/// What a partitioned fetch returns.
#[derive(Debug)]
pub struct PartitionedFetch {
    /// The claimed jobs.
    pub jobs: Vec<super::FetchedJob>,
    /// The partition the fetch ended at (the next one starts after it), if it took any job of
    /// a partition.
    pub last_partition: Option<String>,
    /// The partition of each of `jobs`, in the same order (`None`: a job of no partition).
    pub partitions: Vec<Option<String>>,
    /// With a rate limit per partition: the claim's instant and its stamp in the partitions'
    /// logs, as [`super::RateLimitedFetch`] has them.
    pub rated: Option<RatedStamp>,
    /// With a rate limit per partition: set when a partition with available jobs had a full
    /// window, to when the first such window has room again (the producer looks then).
    pub window_opens_in: Option<std::time::Duration>,
}

/// When and how a rate-limited claim was stamped (see [`super::RateLimitedFetch::claimed`]).
#[derive(Debug, Clone, Copy)]
pub struct RatedStamp {
    /// No later than the stamp, by this process's monotonic clock.
    pub claimed: std::time::Instant,
    /// The start recorded for each job claimed, in milliseconds since the epoch by the
    /// database's clock.
    pub stamp_ms: i64,
}

/// How many jobs without a partition a partitioned fetch looks for among the first of its
/// queue in run order: they have no index of their own (one would cost every insert), so a
/// bounded look, and a job of no partition behind this many others waits for them to start.
pub const UNPARTITIONED_LOOKAHEAD: u32 = 1_000;

/// The most passes of one partitioned fetch: each takes an equal share for each partition with
/// room and work, and the next shares out what partitions with less than their share left.
pub(crate) const PARTITION_PASSES: usize = 4;

/// How many jobs of each partition one pass of a fetch takes: an equal share of `limit` among `open`
/// partitions (rounded up), at most what each partition has room for. The rest of a full
/// fetch's room goes to the next fetch, which starts after the last partition served.
pub(crate) fn share(limit: u32, open: u32) -> u32 {
    if open == 0 { 0 } else { limit.div_ceil(open) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_share_a_fetch_equally_rounding_up() {
        assert_eq!(share(50, 1), 50);
        assert_eq!(share(50, 3), 17);
        assert_eq!(share(50, 100), 1);
        assert_eq!(share(50, 0), 0);
    }
}
