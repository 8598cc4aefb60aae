//! The default retry delay.

use std::time::Duration;

/// The default delay after failed attempt `attempt` (1-based):
/// `15 s + 2^attempt s`, capped at 2^20 s for the exponential part, then jitter of up to ±10 %.
///
/// Attempt 1 waits about 17 s, attempt 5 about 47 s, attempt 10 about 17 min, attempt 20 about
/// 12 days. A job overrides it with `#[job(backoff = my_fn)]` or its own `Job::backoff`.
///
/// ```
/// let d = jobsmith::default_backoff(3).as_secs_f64();
/// assert!((23.0 * 0.9..=23.0 * 1.1).contains(&d));
/// ```
pub fn default_backoff(attempt: u32) -> Duration {
    let exp = 2f64.powi(attempt.min(20) as i32);
    with_jitter(Duration::from_secs_f64(15.0 + exp), 0.10)
}

/// Spreads `base` uniformly over `base * (1 ± fraction)`, so many jobs that failed together do not
/// retry together.
pub fn with_jitter(base: Duration, fraction: f64) -> Duration {
    let factor = 1.0 + fraction * (fastrand::f64() * 2.0 - 1.0);
    base.mul_f64(factor.max(0.0))
}

/// Delay before retrying a failed database call (fetch, ack, listen): 100 ms doubling to 5 s, so
/// an outage is neither hammered nor waited out for long.
pub(crate) fn reconnect_delay(failures: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.min(6)).min(5_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_backoff_grows_and_stays_within_jitter() {
        for attempt in 1..=25u32 {
            let base = 15.0 + 2f64.powi(attempt.min(20) as i32);
            let d = default_backoff(attempt).as_secs_f64();
            assert!(d >= base * 0.9 && d <= base * 1.1, "attempt {attempt}: {d} vs {base}");
        }
    }

    #[test]
    fn reconnect_delay_is_bounded() {
        assert_eq!(reconnect_delay(0), Duration::from_millis(100));
        assert_eq!(reconnect_delay(3), Duration::from_millis(800));
        assert_eq!(reconnect_delay(30), Duration::from_secs(5));
    }
}
