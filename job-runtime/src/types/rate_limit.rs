//! A queue's rate limit (at most `limit` jobs started in any window of `window`, across all
//! nodes), and the sliding log of recent starts both engines keep to enforce it (ADR 22).

use std::time::Duration;

use crate::error::{Error, Result};

/// At most `limit` jobs of a queue start in any window of `window`, across all nodes, whatever
/// each node's concurrency. Set with [`crate::RuntimeBuilder::rate_limit`] or at run time with
/// [`crate::Runtime::set_rate_limit`].
///
/// ```
/// use std::time::Duration;
/// let ten_a_second = jobsmith::RateLimit::per_second(10);
/// assert_eq!(ten_a_second, jobsmith::RateLimit::new(10, Duration::from_secs(1)));
/// assert_eq!(ten_a_second.to_string(), "10 per 1s");
///
/// // On a partitioned queue: 10 a second for each insurer, not for all of them together.
/// let per_insurer = ten_a_second.for_each_partition();
/// assert_eq!(per_insurer.to_string(), "10 per 1s for each partition");
/// assert_eq!("10/1s/partition".parse::<jobsmith::RateLimit>().unwrap(), per_insurer);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Most starts in any window.
    pub limit: u32,
    /// The window's length; whole milliseconds.
    pub window: Duration,
    /// Counted for each partition of the queue (its jobs' partition keys, see
    /// [`crate::InsertBuilder::partition`]) instead of for the whole queue: each partition may
    /// start `limit` jobs in any window. Jobs of no partition are not limited by it.
    pub per_partition: bool,
}

impl RateLimit {
    /// Most starts a limit may allow per window: the engines keep one timestamp per start in the
    /// window, rewritten at each fetch.
    pub const MAX_LIMIT: u32 = 10_000;
    /// Shortest window: below it the claim round trips and the guard (at least
    /// [`RateLimit::MIN_GUARD_MS`]), not the limit, set the pace. Ten a second is `10/1s`, not
    /// `1/100ms`.
    pub const MIN_WINDOW: Duration = Duration::from_millis(100);
    /// The shortest guard (see [`RateLimit::kept_for_ms`]): the spread of the delay from a claim to
    /// the job's start on a busy node is a few tens of milliseconds whatever the window.
    pub const MIN_GUARD_MS: i64 = 20;
    /// Longest window.
    pub const MAX_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

    /// `limit` starts in any window of `window` (checked when it is set).
    pub const fn new(limit: u32, window: Duration) -> Self {
        RateLimit { limit, window, per_partition: false }
    }

    /// The same limit, counted for each partition of the queue instead of for the whole queue
    /// ("10 a second per insurer"); see [`RateLimit::per_partition`].
    pub const fn for_each_partition(self) -> Self {
        RateLimit { per_partition: true, ..self }
    }

    /// `limit` starts in any second.
    pub const fn per_second(limit: u32) -> Self {
        RateLimit::new(limit, Duration::from_secs(1))
    }

    /// `limit` starts in any minute.
    pub const fn per_minute(limit: u32) -> Self {
        RateLimit::new(limit, Duration::from_secs(60))
    }

    /// The window in whole milliseconds, as stored.
    pub fn window_ms(&self) -> i64 {
        self.window.as_millis() as i64
    }

    /// How long the log keeps a start: the window plus a guard of 5 % of it, at least
    /// [`RateLimit::MIN_GUARD_MS`] and at most a second.
    /// The limit counts claims; a job's own code starts a few milliseconds after its claim, and
    /// that delay varies (6 to 21 ms measured on three loaded nodes). Without the guard a batch
    /// whose jobs started late and the next batch, claimed the moment the window had room, could
    /// put more than `limit` starts of the jobs' own clocks in one window. See ADR 22.
    pub fn kept_for_ms(&self) -> i64 {
        let window = self.window_ms();
        window + self.guard_ms()
    }

    /// The guard: how much longer than the window the log keeps a start, and how long after its
    /// claim a job may still start (a later one is released unstarted; ADR 22).
    pub fn guard_ms(&self) -> i64 {
        (self.window_ms() / 20).clamp(Self::MIN_GUARD_MS, 1_000)
    }

    /// From the stored columns (both present or both absent).
    pub(crate) fn from_columns(
        limit: Option<i64>,
        window_ms: Option<i64>,
        per_partition: bool,
    ) -> Option<RateLimit> {
        match (limit, window_ms) {
            (Some(limit), Some(ms)) if limit > 0 && ms > 0 => Some(RateLimit {
                per_partition,
                ..RateLimit::new(limit as u32, Duration::from_millis(ms as u64))
            }),
            _ => None,
        }
    }

    /// Refuses a limit the engines cannot keep, with a message that says what is allowed.
    pub fn check(&self) -> Result<()> {
        if self.limit == 0 || self.limit > Self::MAX_LIMIT {
            return Err(Error::InvalidOption(format!(
                "a rate limit allows 1 to {} starts per window, got {}; pause the queue to stop it",
                Self::MAX_LIMIT,
                self.limit
            )));
        }
        if self.window < Self::MIN_WINDOW
            || self.window > Self::MAX_WINDOW
            || !self.window.subsec_nanos().is_multiple_of(1_000_000)
        {
            return Err(Error::InvalidOption(format!(
                "a rate limit's window must be whole milliseconds from {:?} to {:?}, got {:?}",
                Self::MIN_WINDOW,
                Self::MAX_WINDOW,
                self.window
            )));
        }
        Ok(())
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} per {}", self.limit, humantime::format_duration(self.window))?;
        if self.per_partition {
            f.write_str(" for each partition")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for RateLimit {
    type Err = Error;

    /// `10/1s`, `600/1m`, `5/250ms` (a count, a slash, a duration as `humantime` reads it),
    /// and `10/1s/partition` for each partition of the queue.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidOption(format!(
                "a rate limit looks like `10/1s` or `600/1m` (`10/1s/partition` for each partition), got {s:?}"
            ))
        };
        let (rest, per_partition) = match s.trim().strip_suffix("/partition") {
            Some(rest) => (rest, true),
            None => (s, false),
        };
        let (limit, window) = rest.split_once('/').ok_or_else(bad)?;
        let limit: u32 = limit.trim().parse().map_err(|_| bad())?;
        let window = humantime::parse_duration(window.trim()).map_err(|_| bad())?;
        let rate = RateLimit { per_partition, ..RateLimit::new(limit, window) };
        rate.check()?;
        Ok(rate)
    }
}

/// What a rate-limited fetch returns (see [`crate::engine::RuntimeOps::fetch_rate_limited`]).
#[derive(Debug)]
pub struct RateLimitedFetch {
    /// The claimed jobs.
    pub jobs: Vec<super::FetchedJob>,
    /// Set when the limit, not the queue, ended the fetch short: no job of the queue may start
    /// for this long (by the database's clock), after which the oldest start in the window
    /// leaves it.
    pub limited_for: Option<Duration>,
    /// No later than the claim's stamp, by this process's monotonic clock: taken once the fetch
    /// holds the queue's lock, before the statement that stamps the claim. A job must start
    /// within the guard of it (ADR 22).
    pub claimed: std::time::Instant,
    /// The start recorded for each of `jobs` in the queue's log, in milliseconds since the epoch
    /// by the database's clock: what [`crate::engine::RuntimeOps::refund_rate_starts`] takes
    /// back for a job released unstarted.
    pub stamp_ms: i64,
}

/// The starts of one queue within the current window, oldest first, in milliseconds since the
/// epoch by the database's clock; both engines keep it as one stored value per queue and decide
/// with it under the queue's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RateLog {
    starts: Vec<i64>,
}

impl RateLog {
    /// The stored starts still inside the window (and its guard) that ends at `now`.
    pub(crate) fn recent(mut starts: Vec<i64>, rate: RateLimit, now: i64) -> RateLog {
        let since = now - rate.kept_for_ms();
        starts.retain(|t| *t > since);
        starts.sort_unstable();
        RateLog { starts }
    }

    /// The stored starts as they are (for a refund, which prunes nothing).
    pub(crate) fn stored(mut starts: Vec<i64>) -> RateLog {
        starts.sort_unstable();
        RateLog { starts }
    }

    /// How many more may start now.
    pub(crate) fn room(&self, rate: RateLimit) -> u32 {
        (rate.limit as usize).saturating_sub(self.starts.len()) as u32
    }

    /// Records `n` starts at `now`.
    pub(crate) fn started(&mut self, n: usize, now: i64) {
        self.starts.extend(std::iter::repeat_n(now, n));
    }

    /// Takes back one start recorded at each of `stamps` (claims released unstarted); a stamp
    /// that already left the log changes nothing.
    pub(crate) fn refund(&mut self, stamps: &[i64]) {
        for stamp in stamps {
            if let Some(at) = self.starts.iter().position(|t| t == stamp) {
                self.starts.remove(at);
            }
        }
    }

    /// When the log is full, how long until its oldest start leaves it.
    pub(crate) fn full_for(&self, rate: RateLimit, now: i64) -> Option<Duration> {
        if self.starts.len() < rate.limit as usize {
            return None;
        }
        let oldest = *self.starts.first()?;
        let ms = (oldest + rate.kept_for_ms() - now).max(1);
        Some(Duration::from_millis(ms as u64))
    }

    /// The starts to store.
    pub(crate) fn starts(&self) -> &[i64] {
        &self.starts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_older_than_the_window_leave_it() {
        let rate = RateLimit::per_second(3);
        let log = RateLog::recent(vec![1_000, 1_460, 1_500, 2_100], rate, 2_510);
        assert_eq!(log.starts(), &[1_500, 2_100], "kept for a second and its 50 ms guard");
        assert_eq!(log.room(rate), 1);
        let log = RateLog::recent(vec![1_000, 1_500], rate, 2_040);
        assert_eq!(log.starts(), &[1_000, 1_500], "a second ago is still inside the guard");
    }

    #[test]
    fn a_refund_takes_back_one_start_of_its_stamp() {
        let rate = RateLimit::per_second(3);
        let mut log = RateLog::recent(vec![1_500, 1_500, 1_700], rate, 1_800);
        log.refund(&[1_500]);
        assert_eq!(log.starts(), &[1_500, 1_700]);
        log.refund(&[1_200]);
        assert_eq!(log.starts(), &[1_500, 1_700], "a stamp not in the log refunds nothing");
        assert_eq!(log.room(rate), 1);
    }

    #[test]
    fn a_full_log_says_when_its_oldest_start_leaves() {
        let rate = RateLimit::per_second(2);
        let mut log = RateLog::recent(vec![1_200], rate, 1_900);
        assert_eq!(log.full_for(rate, 1_900), None);
        log.started(1, 1_900);
        assert_eq!(log.room(rate), 0);
        assert_eq!(log.full_for(rate, 1_900), Some(Duration::from_millis(350)), "1,200 leaves at 2,250");
    }

    #[test]
    fn the_guard_is_five_percent_of_the_window_at_least_20_ms_and_at_most_a_second() {
        assert_eq!(RateLimit::per_second(1).kept_for_ms(), 1_050);
        assert_eq!(RateLimit::new(1, Duration::from_secs(3_600)).kept_for_ms(), 3_601_000);
        assert_eq!(RateLimit::new(1, Duration::from_millis(100)).guard_ms(), 20);
    }

    #[test]
    fn limits_outside_what_the_engines_keep_are_refused() {
        assert!(RateLimit::per_second(0).check().is_err());
        assert!(RateLimit::per_second(RateLimit::MAX_LIMIT + 1).check().is_err());
        assert!(RateLimit::new(1, Duration::from_millis(99)).check().is_err());
        assert!(RateLimit::new(1, Duration::from_millis(100)).check().is_ok());
        assert!(RateLimit::new(1, Duration::from_micros(1_500_500)).check().is_err());
        assert!(RateLimit::per_minute(600).check().is_ok());
    }

    #[test]
    fn reads_the_cli_spelling() {
        assert_eq!("10/1s".parse::<RateLimit>().unwrap(), RateLimit::per_second(10));
        assert_eq!(" 600 / 1m".parse::<RateLimit>().unwrap(), RateLimit::per_minute(600));
        let err = "10 per second".parse::<RateLimit>().unwrap_err().to_string();
        assert!(err.contains("`10/1s`"), "{err}");
        assert!("0/1s".parse::<RateLimit>().is_err());
        let per_partition = "10/1s/partition".parse::<RateLimit>().unwrap();
        assert_eq!(per_partition, RateLimit::per_second(10).for_each_partition());
        assert!(per_partition.per_partition && !RateLimit::per_second(10).per_partition);
        assert!("10/1s/tenant".parse::<RateLimit>().is_err());
        assert!("/partition".parse::<RateLimit>().is_err());
    }
}
