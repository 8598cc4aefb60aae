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
//! Why it never hands back a job that runs or is about to:
//! - a row counts as lost only if two rounds in a row find it executing under the same claim
//!   (the fetch's time stamps each claim) and unheld: a job that finished between the read and
//!   the comparison, or whose fetch answer was just arriving, is gone or held by the next round;
//! - before handing back, it takes the fetch gates of the rows' queues and compares once more: a
//!   producer holds its gate from the fetch until the claimed jobs are held, so no claim of those
//!   queues is in flight then;
//! - the hand-back itself is guarded by the claim stamp, so a statement that reaches the database
//!   late can never touch a newer claim of the same row.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use super::shared::Shared;
use crate::engine::{Ack, ExecutingRow, FetchedJob};
use crate::error::Result;
use crate::types::HandBack;

/// The error entry of a job handed back because its claim was lost.
pub(crate) const LOST_CLAIM: &str =
    "handed back: this node claimed the job but never ran it (the claim's answer was lost)";

/// The error entry of a job handed back at shutdown that the node did not know it held.
pub(crate) const UNKNOWN_AT_SHUTDOWN: &str =
    "handed back at shutdown: this node's claim of the job was lost before it ran";

/// Job id to the (attempt, claim stamp) of each claim this node holds of it: the same row can be
/// held twice for a moment (a claim given back unstarted and fetched again before the first
/// result is marked written), and writing one result must not forget the other.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    held: Mutex<HashMap<i64, Vec<(u32, i64)>>>,
}

impl Claims {
    /// Records the jobs of a fetch whose answer arrived (one lock per fetch, not per job).
    pub(crate) fn hold(&self, jobs: &[FetchedJob]) {
        let mut held = self.held.lock().expect("claims");
        for job in jobs {
            held.entry(job.id).or_default().push((job.attempt, job.claim));
        }
    }

    /// Forgets one claim per written result, of the result's attempt (one lock per batch).
    pub(crate) fn written(&self, acks: &[Ack]) {
        let mut held = self.held.lock().expect("claims");
        for ack in acks {
            if let Some(claims) = held.get_mut(&ack.id) {
                let of_ack = |(attempt, claim): &(u32, i64)| {
                    *attempt == ack.attempt && ack.claim.is_none_or(|c| c == *claim)
                };
                if let Some(at) = claims.iter().position(of_ack) {
                    claims.swap_remove(at);
                }
                if claims.is_empty() {
                    held.remove(&ack.id);
                }
            }
        }
    }

    /// Every (id, claim stamp) this node holds now.
    fn snapshot(&self) -> Vec<(i64, i64)> {
        let held = self.held.lock().expect("claims");
        held.iter().flat_map(|(id, claims)| claims.iter().map(move |(_, claim)| (*id, *claim))).collect()
    }

    /// Of `rows`, those this node does not hold.
    fn not_held<'a>(&self, rows: impl IntoIterator<Item = &'a ExecutingRow>) -> Vec<&'a ExecutingRow> {
        let held = self.held.lock().expect("claims");
        rows.into_iter().filter(|r| !held.contains_key(&r.id)).collect()
    }
}

/// How long one reconciliation may take before it gives up for this round: it may hold fetch
/// gates, and a database that does not answer should not stop fetching for long.
pub(crate) const RECONCILE_DEADLINE: Duration = Duration::from_secs(5);

/// The reconciler's memory between rounds: the unheld claims the last round saw.
#[derive(Debug, Default)]
pub(crate) struct Reconciler {
    suspects: HashSet<(i64, i64)>,
}

impl Reconciler {
    /// One round: hands back the claims that this round and the last both found executing here
    /// and unheld. Returns the ids handed back.
    pub(crate) async fn round(&mut self, shared: &Shared) -> Result<Vec<i64>> {
        // Taken before the read: see `stop_left`.
        let held_before = shared.claims.snapshot();
        // One indexed read; most rounds find every executing row held and stop here.
        let executing = shared.engine.executing(&shared.node).await?;
        stop_left(shared, held_before, &executing);
        let unheld = shared.claims.not_held(&executing);
        let now: HashSet<(i64, i64)> = unheld.iter().map(|r| (r.id, r.claim)).collect();
        let confirmed: Vec<&ExecutingRow> =
            unheld.into_iter().filter(|r| self.suspects.contains(&(r.id, r.claim))).collect();
        self.suspects = now;
        if confirmed.is_empty() {
            return Ok(Vec::new());
        }
        let handed_back = hand_back_unheld(shared, confirmed, LOST_CLAIM).await?;
        for id in &handed_back {
            self.suspects.retain(|(i, _)| i != id);
        }
        Ok(handed_back)
    }
}

/// Stops the runs this node holds whose rows are no longer executing here under their claim:
/// cancelled (by a query whose notification could not name them, or a notification lost while
/// the listener reconnected), or rescued and run elsewhere.
///
/// `held_before` must be taken before `executing` was read: a claim is held only once its fetch
/// committed, so a claim held then whose (row, claim stamp) is not executing here in a later
/// read has left this node. (Taken after the read, a job fetched in between would look gone.)
/// Each stop names its claim, so a newer claim of the same row (fetched again during the read)
/// is never touched. A claim whose result was written in between is stopped too, which does
/// nothing: it no longer runs, and it is no longer buffered.
fn stop_left(shared: &Shared, held_before: Vec<(i64, i64)>, executing: &[ExecutingRow]) {
    if held_before.is_empty() {
        return;
    }
    let here: HashSet<(i64, i64)> = executing.iter().map(|r| (r.id, r.claim)).collect();
    for (id, claim) in held_before.into_iter().filter(|held| !here.contains(held)) {
        shared.stop_local_claim(id, claim);
    }
}

/// [`stop_left`] now, on a signal (see [`crate::types::Signal::CancelsCommitted`]).
pub(crate) async fn stop_gone(shared: &Shared) -> Result<()> {
    let held_before = shared.claims.snapshot();
    if held_before.is_empty() {
        return Ok(());
    }
    let executing = shared.engine.executing(&shared.node).await?;
    stop_left(shared, held_before, &executing);
    Ok(())
}

/// With the fetch gates of the rows' queues held, hands back those of `rows` still unheld.
async fn hand_back_unheld(shared: &Shared, rows: Vec<&ExecutingRow>, reason: &str) -> Result<Vec<i64>> {
    // In name order, so two reconcilers could never deadlock on them.
    let mut names: Vec<&str> = rows.iter().map(|r| r.queue.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut gates = Vec::with_capacity(names.len());
    for name in names {
        if let Some(q) = shared.queues.get(name) {
            gates.push(q.fetch_gate().await);
        }
    }
    let lost: Vec<(i64, i64)> = shared.claims.not_held(rows).into_iter().map(|r| (r.id, r.claim)).collect();
    let handed_back =
        shared.engine.hand_back(&HandBack { node: &shared.node, claims: &lost, reason }).await?;
    drop(gates);
    if !handed_back.is_empty() {
        crate::telemetry::rescued(handed_back.len() as u64);
        tracing::warn!(target: "jobsmith", node = %shared.node, jobs = handed_back.len(), ids = ?handed_back, reason,
            "jobsmith handed back jobs this node had claimed but was not running");
    }
    Ok(handed_back)
}

/// At shutdown, once every job has ended and every result is written: hands back every row
/// still executing here that the node does not hold. No fetch runs any more, so one look is
/// enough. Held ones are results that could not be written; they are rescued once the node's row
/// is gone.
pub(crate) async fn at_shutdown(shared: &Shared) -> Result<Vec<i64>> {
    let pass = async {
        let executing = shared.engine.executing(&shared.node).await?;
        let unheld = shared.claims.not_held(&executing);
        if unheld.is_empty() {
            return Ok(Vec::new());
        }
        hand_back_unheld(shared, unheld, UNKNOWN_AT_SHUTDOWN).await
    };
    match tokio::time::timeout(RECONCILE_DEADLINE, pass).await {
        Ok(result) => result,
        Err(_) => Err(crate::error::Error::Unexpected(format!(
            "looking for lost claims did not complete within {RECONCILE_DEADLINE:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::AckKind;

    fn job(id: i64, attempt: u32) -> FetchedJob {
        FetchedJob::for_test(id, attempt, 3)
    }

    fn row(id: i64) -> ExecutingRow {
        ExecutingRow { id, queue: "q".into(), claim: 0 }
    }

    fn unheld(claims: &Claims, ids: &[i64]) -> Vec<i64> {
        let rows: Vec<ExecutingRow> = ids.iter().map(|id| row(*id)).collect();
        claims.not_held(&rows).into_iter().map(|r| r.id).collect()
    }

    #[test]
    fn a_claim_is_held_until_its_own_attempt_is_written() {
        let claims = Claims::default();
        claims.hold(&[job(1, 1), job(2, 2)]);
        assert_eq!(unheld(&claims, &[1, 2, 3]), vec![3]);
        // A result of another attempt (an older run's late result) does not free the claim.
        claims.written(&[Ack { id: 2, attempt: 1, claim: None, kind: AckKind::Complete }]);
        assert_eq!(unheld(&claims, &[1, 2]), Vec::<i64>::new());
        claims.written(&[Ack { id: 2, attempt: 2, claim: None, kind: AckKind::Complete }]);
        assert_eq!(unheld(&claims, &[1, 2]), vec![2]);
    }

    #[test]
    fn a_row_held_twice_stays_held_until_both_results_are_written() {
        // Released unstarted (attempt given back), fetched again in the same attempt before the
        // release was marked written: the release's result must not forget the new claim.
        let claims = Claims::default();
        claims.hold(&[job(7, 1)]);
        claims.hold(&[job(7, 1)]);
        claims.written(&[Ack { id: 7, attempt: 1, claim: None, kind: AckKind::Release }]);
        assert_eq!(unheld(&claims, &[7]), Vec::<i64>::new());
        claims.written(&[Ack { id: 7, attempt: 1, claim: None, kind: AckKind::Complete }]);
        assert_eq!(unheld(&claims, &[7]), vec![7]);
    }
}
