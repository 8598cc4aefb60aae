//! Per-job control: the cancellation token and why it fired.

use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

/// Why a running job's token fired. The first reason wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// Cancelled by id through a handle or another node.
    Cancelled,
    /// The node is shutting down past its grace period.
    Shutdown,
    /// The attempt ran past its timeout.
    Timeout,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct JobControl {
    pub(crate) token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
    /// The claim of the run it controls ([`crate::engine::FetchedJob::claim`]), so a stop meant
    /// for one claim of a row never reaches a newer claim of the same row.
    pub(crate) claim: i64,
}

impl JobControl {
    /// The control of the run of `claim`.
    pub(crate) fn of(claim: i64) -> Self {
        JobControl { claim, ..JobControl::default() }
    }

    pub(crate) fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    pub(crate) fn reason(&self) -> Option<StopReason> {
        self.reason.get().copied()
    }
}
