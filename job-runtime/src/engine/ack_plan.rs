//! How one execution's result ([`AckKind`]) becomes an update of its row, decided once for every
//! engine: each engine only turns the [`AckPlan`] into its own statement's parameters.

use std::time::Duration;

use crate::types::{AckKind, JobState};

/// The timestamp column an ack sets to the database's now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stamp {
    /// `completed_at`.
    Completed,
    /// `discarded_at`.
    Discarded,
    /// `cancelled_at`.
    Cancelled,
}

impl Stamp {
    /// The column's name, as the engines' statements compare it.
    pub(crate) const fn column(self) -> &'static str {
        match self {
            Stamp::Completed => "completed_at",
            Stamp::Discarded => "discarded_at",
            Stamp::Cancelled => "cancelled_at",
        }
    }
}

/// The row update of one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckPlan<'a> {
    /// The state the row moves to.
    pub(crate) state: JobState,
    /// Due again this long after now; `None` keeps `scheduled_at` (and so the place in run order).
    pub(crate) delay: Option<Duration>,
    /// Appended to the row's errors (with the attempt and the time), or nothing.
    pub(crate) error: Option<&'a str>,
    /// The attempt is given back (`attempt - 1`): the job did not really use it.
    pub(crate) refund: bool,
    /// The timestamp column set to now, if any.
    pub(crate) stamp: Option<Stamp>,
}

impl<'a> AckPlan<'a> {
    /// The update for `kind`.
    pub(crate) fn of(kind: &'a AckKind) -> AckPlan<'a> {
        let plan = |state, delay, error, refund, stamp| AckPlan { state, delay, error, refund, stamp };
        match kind {
            AckKind::Complete | AckKind::Record { .. } | AckKind::Committed => {
                plan(JobState::Completed, None, None, false, Some(Stamp::Completed))
            }
            AckKind::Retry { delay, error } => {
                plan(JobState::Retryable, Some(*delay), Some(error.as_str()), false, None)
            }
            AckKind::Discard { error } => {
                plan(JobState::Discarded, None, Some(error.as_str()), false, Some(Stamp::Discarded))
            }
            AckKind::Cancel { reason } => {
                plan(JobState::Cancelled, None, Some(reason.as_str()), false, Some(Stamp::Cancelled))
            }
            AckKind::Snooze { delay } => plan(JobState::Scheduled, Some(*delay), None, true, None),
            // Due now again: a handed-back job goes to the end of its priority's run order.
            AckKind::HandBack { reason } => {
                plan(JobState::Available, Some(Duration::ZERO), Some(reason.as_str()), true, None)
            }
            AckKind::Release => plan(JobState::Available, None, None, true, None),
        }
    }

    /// [`AckPlan::delay`] in milliseconds, as the statements take it.
    pub(crate) fn delay_ms(&self) -> Option<i64> {
        self.delay.map(super::common::ms)
    }

    /// How much the attempt goes down: 1 for a refund, else 0.
    pub(crate) fn refund_count(&self) -> i32 {
        i32::from(self.refund)
    }

    /// [`AckPlan::stamp`]'s column name, as the statements take it.
    pub(crate) fn stamp_column(&self) -> Option<&'static str> {
        self.stamp.map(Stamp::column)
    }
}

/// The most result bytes one statement carries: a batch of large results goes by several
/// statements, so no parameter nears the engines' limits (PostgreSQL's jsonb, SQLite's string
/// length).
pub(crate) const RECORD_BYTES_PER_STATEMENT: usize = 32 << 20;

/// `records` (acks that record a result) cut into groups of at most
/// [`RECORD_BYTES_PER_STATEMENT`] result bytes each (a larger result goes alone), in order.
pub(crate) fn record_groups(records: Vec<&crate::types::Ack>) -> Vec<Vec<&crate::types::Ack>> {
    let mut groups: Vec<Vec<&crate::types::Ack>> = Vec::new();
    let mut bytes = 0;
    for ack in records {
        let size = match &ack.kind {
            AckKind::Record { output } => output.to_string().len(),
            _ => 0,
        };
        if groups.is_empty() || bytes + size > RECORD_BYTES_PER_STATEMENT {
            groups.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        groups.last_mut().expect("pushed").push(ack);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_states_stamp_their_column_and_only_they() {
        let kinds = [
            AckKind::Complete,
            AckKind::Retry { delay: Duration::from_secs(1), error: "e".into() },
            AckKind::Discard { error: "e".into() },
            AckKind::Cancel { reason: "r".into() },
            AckKind::Snooze { delay: Duration::from_secs(1) },
            AckKind::HandBack { reason: "r".into() },
            AckKind::Release,
        ];
        for kind in &kinds {
            let plan = AckPlan::of(kind);
            let expected = match plan.state {
                JobState::Completed => Some("completed_at"),
                JobState::Discarded => Some("discarded_at"),
                JobState::Cancelled => Some("cancelled_at"),
                _ => None,
            };
            assert_eq!(plan.stamp_column(), expected, "{kind:?}");
            assert_eq!(plan.state.is_final(), plan.stamp.is_some(), "{kind:?}");
        }
    }

    #[test]
    fn large_results_are_cut_into_statements() {
        use crate::types::Ack;
        let big = serde_json::Value::String("x".repeat(RECORD_BYTES_PER_STATEMENT / 2));
        let acks: Vec<Ack> = (0..5)
            .map(|id| Ack { id, attempt: 1, claim: None, kind: AckKind::Record { output: big.clone() } })
            .collect();
        let groups = record_groups(acks.iter().collect());
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, 1, 1, 1, 1], "each is just over half the budget (its quotes)");
        let small: Vec<Ack> = (0..5)
            .map(|id| Ack {
                id,
                attempt: 1,
                claim: None,
                kind: AckKind::Record { output: serde_json::json!(id) },
            })
            .collect();
        assert_eq!(record_groups(small.iter().collect()).len(), 1);
    }

    #[test]
    fn attempts_are_given_back_by_snooze_hand_back_and_release() {
        let refunded = |kind: AckKind| AckPlan::of(&kind).refund_count();
        assert_eq!(refunded(AckKind::Snooze { delay: Duration::ZERO }), 1);
        assert_eq!(refunded(AckKind::HandBack { reason: "r".into() }), 1);
        assert_eq!(refunded(AckKind::Release), 1);
        assert_eq!(refunded(AckKind::Complete), 0);
        assert_eq!(refunded(AckKind::Retry { delay: Duration::ZERO, error: "e".into() }), 0);
        let release = AckKind::Release;
        assert_eq!(AckPlan::of(&release).delay_ms(), None, "a release keeps its place");
        let back = AckKind::HandBack { reason: "r".into() };
        assert_eq!(AckPlan::of(&back).delay_ms(), Some(0));
    }
}
