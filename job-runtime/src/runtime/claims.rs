//! The claims this node holds, and the reconciler that hands back the ones it lost.
//!
//! A claim is held from the moment a fetch's answer arrives until the job's result is written.
//! A row `executing` by this node that is not held is a claim the node lost: a fetch whose
//! commit went through but whose answer never arrived (the connection was cut in between), a
//! fetch that failed after its commit, or anything else that let a job slip out of the node's
//! hands. Nothing will ever run or finish such a row, and since this node keeps heartbeating no
//! rescue takes it either. The reconciler, on every node every `rescue_interval`, finds such
//! rows and hands them back (available, attempt returned, an error entry saying why).
//!
//! Why it cannot hand back a job that is about to run: it takes every queue's fetch gate before
//! it compares, and a producer holds its gate from the fetch until the claimed jobs are held. So
//! while the reconciler compares, no fetch of this node is in flight, and every claim whose answer
//! arrived is in the ledger.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::engine::{Ack, FetchedJob};
use crate::error::Result;

/// The error entry of a job handed back because its claim was lost.
pub(crate) const LOST_CLAIM: &str =
    "handed back: this node claimed the job but never ran it (the claim's answer was lost)";

/// The error entry of a job handed back at shutdown that the node did not know it held.
pub(crate) const UNKNOWN_AT_SHUTDOWN: &str =
    "handed back at shutdown: this node's claim of the job was lost before it ran";

/// Job id to the attempt this node holds it in.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    held: Mutex<HashMap<i64, u32>>,
}

impl Claims {
    /// Records the jobs of a fetch whose answer arrived (one lock per fetch, not per job).
    pub(crate) fn hold(&self, jobs: &[FetchedJob]) {
        let mut held = self.held.lock().expect("claims");
        for job in jobs {
            held.insert(job.id, job.attempt);
        }
    }

    /// Forgets the claims whose results were written (one lock per written batch).
    pub(crate) fn written(&self, acks: &[Ack]) {
        let mut held = self.held.lock().expect("claims");
        for ack in acks {
            if held.get(&ack.id) == Some(&ack.attempt) {
                held.remove(&ack.id);
            }
        }
    }

    /// Of `ids`, those this node does not hold.
    pub(crate) fn not_held(&self, ids: &[i64]) -> Vec<i64> {
        let held = self.held.lock().expect("claims");
        ids.iter().copied().filter(|id| !held.contains_key(id)).collect()
    }
}

/// How long one reconciliation may take before it gives up for this round: it holds the fetch
/// gates meanwhile, and a database that does not answer should not stop fetching for long.
const RECONCILE_DEADLINE: Duration = Duration::from_secs(5);

/// Finds this node's lost claims and hands them back. Returns the ids handed back.
pub(crate) async fn reconcile_once(shared: &Shared, reason: &str) -> Result<Vec<i64>> {
    // A cheap read first, without the gates: most rounds find every executing row held.
    let executing = shared.engine.executing_ids(&shared.node).await?;
    if shared.claims.not_held(&executing).is_empty() {
        return Ok(Vec::new());
    }
    // Candidates may be rows of a fetch whose answer is just arriving: look again with every
    // fetch gate held (in name order, so two reconcilers could never deadlock), when no fetch of
    // this node is in flight and every answer that arrived is in the ledger.
    let mut queues: Vec<_> = shared.queues.values().collect();
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    let mut gates = Vec::with_capacity(queues.len());
    for q in queues {
        gates.push(q.fetch_gate().await);
    }
    let lost = shared.claims.not_held(&executing);
    let handed_back = shared.engine.hand_back(&shared.node, &lost, reason).await?;
    drop(gates);
    if !handed_back.is_empty() {
        crate::telemetry::rescued(handed_back.len() as u64);
        tracing::warn!(target: "jobsmith", node = %shared.node, jobs = handed_back.len(), ids = ?handed_back,
            "jobsmith handed back jobs this node had claimed but was not running");
    }
    Ok(handed_back)
}

/// Runs [`reconcile_once`] every `rescue_interval` on every node (leader or not) until `stop`.
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(shared.config.rescue_interval) => {}
        }
        match tokio::time::timeout(RECONCILE_DEADLINE, reconcile_once(&shared, LOST_CLAIM)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(target: "jobsmith", error = %e, "jobsmith could not reconcile this node's claims; will retry")
            }
            Err(_) => {
                tracing::warn!(target: "jobsmith", "jobsmith claim reconciliation timed out; will retry")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::AckKind;

    fn job(id: i64, attempt: u32) -> FetchedJob {
        FetchedJob {
            id,
            worker: "w".into(),
            queue: "q".into(),
            args: serde_json::json!({}),
            meta: serde_json::json!({}),
            tags: vec![],
            attempt,
            max_attempts: 3,
            inserted_at: chrono::Utc::now(),
            scheduled_at: chrono::Utc::now(),
            priority: 0,
            unreadable: None,
        }
    }

    #[test]
    fn a_claim_is_held_until_its_own_attempt_is_written() {
        let claims = Claims::default();
        claims.hold(&[job(1, 1), job(2, 2)]);
        assert_eq!(claims.not_held(&[1, 2, 3]), vec![3]);
        // A result of another attempt (an older run's late result) does not free the claim.
        claims.written(&[Ack { id: 2, attempt: 1, kind: AckKind::Complete }]);
        assert_eq!(claims.not_held(&[1, 2]), Vec::<i64>::new());
        claims.written(&[Ack { id: 2, attempt: 2, kind: AckKind::Complete }]);
        assert_eq!(claims.not_held(&[1, 2]), vec![2]);
    }
}
