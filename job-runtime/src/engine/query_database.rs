//! Acting on the jobs a query matches through the caller's own pool, connection or transaction,
//! per database: the seam under `crate::query`.

use std::future::Future;

use crate::error::Result;
use crate::types::{JobMatch, JobState, QueryOp, QueryOutput};

use super::InsertDatabase;

/// A database whose jobs can be counted, listed, cancelled, retried, deleted and updated by a
/// [`JobMatch`], on a connection of the caller's (a pool's, or the one of the caller's open
/// transaction). Implemented by each engine module. `schema` names the instance as in
/// [`InsertDatabase::insert_jobs`].
///
/// Each operation keeps to the states it may touch, whatever the match names: cancel to the
/// unfinished ones, retry to `discarded` and `cancelled`, update to the pending ones (`available`,
/// `scheduled`, `retryable`), delete to all but `executing` (and to the pending ones unless the
/// match names states). Inside the caller's transaction, a rollback undoes it all.
pub trait QueryDatabase: InsertDatabase {
    /// Runs `op` on the jobs `m` matches.
    fn run_query<'a>(
        conn: &'a mut <Self as sqlx::Database>::Connection,
        schema: &'a str,
        m: &'a JobMatch,
        op: QueryOp,
    ) -> impl Future<Output = Result<QueryOutput>> + Send + 'a;
}

/// The states an update may change.
pub(crate) const PENDING: [JobState; 3] = [JobState::Available, JobState::Scheduled, JobState::Retryable];

/// The states a cancel may change.
pub(crate) const UNFINISHED: [JobState; 4] =
    [JobState::Available, JobState::Scheduled, JobState::Retryable, JobState::Executing];

/// The states a retry may change.
pub(crate) const RETRYABLE: [JobState; 2] = [JobState::Discarded, JobState::Cancelled];

/// What a delete may remove: the states the match names, but never `executing`; the pending
/// ones when it names none (finished rows go only when asked for).
pub(crate) fn deletable(m: &JobMatch) -> Vec<JobState> {
    if m.states.is_empty() {
        PENDING.to_vec()
    } else {
        m.states.iter().copied().filter(|s| *s != JobState::Executing).collect()
    }
}
