//! How far ahead of its free slots a queue claims jobs by default: enough to keep every slot busy
//! through one fetch round trip, measured, never more than [`MAX_AHEAD_PER_SLOT`] per slot.
//!
//! A queue that claims only for its free slots spends most of a burn-down with its slots waiting
//! on the fetch: throughput is about `limit / fetch time` (docs/benchmarks.md). A queue that
//! claims a fixed number ahead fixes that for short jobs but holds claimed jobs back from other
//! nodes for long ones. The number that is right is the jobs the queue finishes while one fetch is
//! in flight, `limit * fetch time / job time`: this module keeps running averages of both times
//! and claims twice that (one round trip of margin, so the slots do not run dry while the next
//! fetch is in flight). Short jobs get a buffer; jobs much longer than a fetch get none, which is
//! the old behaviour. ADR 14 says why this is the default.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The most jobs claimed ahead per slot: a bound for when the measured times are off, not the
/// usual size (which is what the slots finish in two fetches). Measured on no-op jobs
/// (docs/benchmarks.md), where the bound is what decides: at C = 50, 4 per slot burned down
/// 23-30k jobs/s and 8 per slot 29k against 16-19k claiming none (2026-11-30); on 2026-12-01,
/// after the fetch and result statements got cheaper, 32 per slot 60-79k against 43-61k with 8
/// (C = 100: 74-77k against 53-78k).
pub(crate) const MAX_AHEAD_PER_SLOT: usize = 32;

/// The weight of a new sample in the running averages, as a shift: 1/8. Recent enough to follow
/// a queue whose jobs change, smooth enough that one slow fetch does not empty the buffer.
const SHIFT: u32 = 3;

/// Running averages of how long a job holds its slot and how long a fetch takes, for one queue.
#[derive(Debug, Default)]
pub(crate) struct ClaimAhead {
    job_nanos: AtomicU64,
    fetch_nanos: AtomicU64,
}

impl ClaimAhead {
    /// A job of the queue ran for `took`.
    pub(crate) fn job_ran(&self, took: Duration) {
        average_in(&self.job_nanos, took);
    }

    /// A fetch of the queue took `took`, from sending to its jobs in hand.
    pub(crate) fn fetched(&self, took: Duration) {
        average_in(&self.fetch_nanos, took);
    }

    /// How many jobs to hold claimed beyond `limit` running ones: twice what the slots finish
    /// during one fetch, at most [`MAX_AHEAD_PER_SLOT`] per slot; 0 until both times are known.
    pub(crate) fn target(&self, limit: usize) -> usize {
        let job = self.job_nanos.load(Ordering::Relaxed);
        let fetch = self.fetch_nanos.load(Ordering::Relaxed);
        if job == 0 || fetch == 0 {
            return 0;
        }
        let cap = limit.saturating_mul(MAX_AHEAD_PER_SLOT);
        let wanted = (2 * limit as u128 * u128::from(fetch)) / u128::from(job);
        wanted.min(cap as u128) as usize
    }
}

/// Folds `sample` into the running average in `slot` (the first sample is taken as it is).
/// Concurrent updates may lose one another's sample, which an average of many can afford.
fn average_in(slot: &AtomicU64, sample: Duration) {
    // At least 1 ns, so a measured zero never reads as "no sample yet".
    let sample = (sample.as_nanos().min(u128::from(u64::MAX >> SHIFT)) as u64).max(1);
    let old = slot.load(Ordering::Relaxed);
    let new = if old == 0 { sample } else { old - (old >> SHIFT) + (sample >> SHIFT) };
    slot.store(new.max(1), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn nothing_ahead_until_both_times_are_known() {
        let c = ClaimAhead::default();
        assert_eq!(c.target(10), 0);
        c.job_ran(MS);
        assert_eq!(c.target(10), 0, "no fetch measured yet");
        c.fetched(MS);
        assert_eq!(c.target(10), 20, "10 slots finish 10 jobs per 1 ms fetch; twice that");
    }

    #[test]
    fn long_jobs_get_no_buffer_and_short_ones_at_most_the_cap() {
        let long = ClaimAhead::default();
        long.job_ran(Duration::from_secs(1));
        long.fetched(2 * MS);
        assert_eq!(long.target(50), 0, "50 slots of 1 s jobs finish 0.1 jobs per 2 ms fetch");

        let short = ClaimAhead::default();
        short.job_ran(Duration::from_micros(5));
        short.fetched(2 * MS);
        assert_eq!(short.target(50), 50 * MAX_AHEAD_PER_SLOT);
    }

    #[test]
    fn the_average_follows_a_change_of_job_time() {
        let c = ClaimAhead::default();
        c.fetched(MS);
        c.job_ran(Duration::from_micros(10));
        assert_eq!(c.target(10), 10 * MAX_AHEAD_PER_SLOT, "capped");
        for _ in 0..64 {
            c.job_ran(Duration::from_millis(100));
        }
        assert_eq!(c.target(10), 0, "the jobs became long: nothing claimed ahead");
    }
}
