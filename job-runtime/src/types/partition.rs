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
    /// Set when the `after` partition still has this many heads of its turn to give (its weight
    /// is more than it gave in the last fetch's last turn; ADR 26): the walk starts *at* it, and
    /// it gives that many in its first turn.
    pub resume: Option<u32>,
    /// Each partition is a sequence (ADR 27): a partition gives a job only when its first job
    /// that has not finished (by id; under this policy) is available, and gives that job.
    pub sequence: Option<super::SequencePolicy>,
}

/// What a partitioned fetch returns.
#[derive(Debug)]
pub struct PartitionedFetch {
    /// The claimed jobs.
    pub jobs: Vec<super::FetchedJob>,
    /// The partition the fetch ended at (the next one starts after it), if it took any job of
    /// a partition: the partition of the last job in turn order.
    pub last_partition: Option<String>,
    /// How many heads of its last turn `last_partition` had left (more than 0 only for a
    /// partition with a weight): the next fetch resumes it with that many first.
    pub last_turn_left: u32,
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

/// The most a partition's weight may be: its share of a partitioned fetch's turns, against 1 for
/// a partition without one (see [`crate::Runtime::set_partition_weight`]).
pub const MAX_PARTITION_WEIGHT: u32 = 100;

/// A partition's stored weight (ADR 26): in each turn of a partitioned fetch it gives `weight`
/// jobs where a partition without one gives one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionWeight {
    /// The queue.
    pub queue: String,
    /// The partition's key.
    pub partition: String,
    /// 1 to [`MAX_PARTITION_WEIGHT`].
    pub weight: u32,
}

/// Refuses a weight outside 1 to [`MAX_PARTITION_WEIGHT`] or a key no job could have.
pub(crate) fn check_weight(partition: &str, weight: Option<u32>) -> crate::error::Result<()> {
    crate::insert::check_partition_key(partition)?;
    match weight {
        Some(w) if w == 0 || w > MAX_PARTITION_WEIGHT => Err(crate::error::Error::InvalidOption(format!(
            "a partition's weight must be 1 to {MAX_PARTITION_WEIGHT}, got {w}; clear it for the default of 1"
        ))),
        _ => Ok(()),
    }
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

/// Where a partition's `nth` head (0-based) falls when the partition has weight `weight` (it
/// gives `weight` heads a turn where a partition of weight 1 gives one): its turn, and how many
/// heads of that turn are left after it. A partition resumed with `credit` heads left of its
/// turn (see [`PartitionRequest::resume`]) gives that many in its first turn. The PostgreSQL
/// statement computes the same in SQL.
pub(crate) fn place_of(nth: usize, weight: u32, credit: Option<u32>) -> (usize, u32) {
    let weight = weight.max(1) as usize;
    match credit.map(|c| c as usize) {
        Some(credit) if nth < credit => (0, (credit - 1 - nth) as u32),
        Some(credit) => (1 + (nth - credit) / weight, (weight - 1 - (nth - credit) % weight) as u32),
        None => (nth / weight, (weight - 1 - nth % weight) as u32),
    }
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

    #[test]
    fn a_weighted_partition_gives_its_weight_in_heads_each_turn() {
        let places = |weight, credit| (0..7).map(|n| place_of(n, weight, credit)).collect::<Vec<_>>();
        assert_eq!(places(3, None), [(0, 2), (0, 1), (0, 0), (1, 2), (1, 1), (1, 0), (2, 2)]);
        assert_eq!(places(1, None)[..3], [(0, 0), (1, 0), (2, 0)]);
        // Resumed with two heads of its turn left: two, then turns of three.
        assert_eq!(places(3, Some(2))[..6], [(0, 1), (0, 0), (1, 2), (1, 1), (1, 0), (2, 2)]);
    }

    #[test]
    fn weights_outside_their_range_and_keys_no_job_has_are_refused() {
        assert!(check_weight("acme", Some(3)).is_ok() && check_weight("acme", None).is_ok());
        let zero = check_weight("acme", Some(0)).unwrap_err().to_string();
        assert!(zero.contains("1 to 100, got 0"), "{zero}");
        assert!(check_weight("acme", Some(101)).is_err());
        assert!(check_weight("", Some(2)).is_err());
    }
}
