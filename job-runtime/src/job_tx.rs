//! The job's own transaction: a job fn that takes `tx: &mut JobTx` gets a transaction on the
//! jobs' database, and its completion (with its recorded result) is written in that transaction
//! when the fn succeeds. The job's writes and its completion commit together or not at all.
//!
//! The completion is guarded like the batched acks (state `executing`, node, attempt, claim), so
//! a run that was rescued and ran elsewhere, or was cancelled, cannot complete the job a second
//! time: its guard finds the row taken, the transaction rolls back, and the stale run's writes
//! vanish with it. For effects that are writes to this database, each job's effects therefore
//! happen exactly once, across crashes, rescues and retries (see ADR 21).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::JobContext;
use crate::outcome::{EncodedOutcome, Outcome};
use crate::run_link::RunLink;
use crate::steps::{self, StepError};
use crate::transaction::Transaction;
use crate::types::{StepRecord, TxCompletion};

/// A running job's transaction on the jobs' database, for writes that must happen exactly once:
/// take it as a parameter `tx: &mut JobTx` of a `#[job]` fn. It derefs to [`Transaction`], so
/// the application's statements go through [`Transaction::postgres`] or
/// [`Transaction::sqlite`], jobs are inserted with [`Transaction::insert`], and typed queries run
/// on `&mut *tx`.
///
/// When the fn returns `Ok` (a plain success, a value to record, or [`Outcome::Complete`] /
/// [`Outcome::CompleteWith`]), the runtime completes the job in this transaction and commits it.
/// Any other ending (an error, a panic, a timeout, a snooze, a cancel or discard) rolls it back,
/// and the attempt is recorded as usual: nothing the job wrote in it stays.
///
/// ```
/// use jobsmith::{JobTx, job};
///
/// /// Credits a payment to the ledger exactly once, however often the job runs.
/// #[job(queue = "ledger")]
/// async fn credit(tx: &mut JobTx, account: i64, cents: i64) -> Result<(), jobsmith::Error> {
///     let conn = tx.sqlite().expect("a SQLite database");
///     sqlx::query("INSERT INTO ledger (account, cents) VALUES (?1, ?2)")
///         .bind(account)
///         .bind(cents)
///         .execute(conn)
///         .await?;
///     Ok(())
/// }
/// ```
///
/// On SQLite the transaction holds the database's one write lock from the job's start to its
/// commit (it begins `IMMEDIATE`), so the runtime's own writes wait for it: keep such jobs short
/// there, and record steps with [`JobTx::step`], not [`JobContext::step`].
pub struct JobTx {
    tx: Transaction,
    link: Arc<RunLink>,
    id: i64,
    attempt: u32,
}

impl std::fmt::Debug for JobTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobTx").field("job", &self.id).field("attempt", &self.attempt).finish_non_exhaustive()
    }
}

impl Deref for JobTx {
    type Target = Transaction;
    fn deref(&self) -> &Transaction {
        &self.tx
    }
}

impl DerefMut for JobTx {
    fn deref_mut(&mut self) -> &mut Transaction {
        &mut self.tx
    }
}

impl JobTx {
    /// Begins the transaction of the job `ctx` runs; the code `#[job]` writes calls it.
    #[doc(hidden)]
    pub async fn begin(ctx: &JobContext) -> Result<JobTx, String> {
        let Some(link) = ctx.link() else {
            return Err(format!(
                "job {} takes a transaction (`&mut JobTx`), which needs its database: run it through \
                 a runtime or `jobsmith::testing::drain_queue`, not `perform_job`",
                ctx.worker
            ));
        };
        let open = link
            .engine
            .begin_job_tx()
            .await
            .map_err(|e| format!("the job's transaction could not begin: {e}"))?;
        link.set_tx_open(true);
        Ok(JobTx {
            tx: Transaction::from_open(open, link.engine.clone()),
            link: link.clone(),
            id: ctx.id,
            attempt: ctx.attempt,
        })
    }

    /// Runs step `name` of this job once, in this transaction: a value recorded earlier (by a
    /// committed attempt's [`JobContext::step`], or by this transaction) comes back without
    /// running `work`; otherwise `work` runs on the transaction and its value is recorded in it.
    /// The record commits with the job's completion, or vanishes with its rollback together with
    /// the step's writes, so the next attempt runs the step again: its writes happen once.
    ///
    /// `work` gets the transaction and returns a boxed future, as sqlx's
    /// `Connection::transaction` does (a plain closure cannot lend its argument to the future it
    /// returns): `tx.step("score", |tx| Box::pin(async move { .. })).await`.
    pub async fn step<T, E, F>(&mut self, name: &str, work: F) -> Result<T, StepError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: for<'t> FnOnce(&'t mut Transaction) -> BoxFuture<'t, Result<T, E>>,
    {
        let engine = self.link.engine.clone();
        let done = engine.step_output_in_tx(&mut self.tx, self.id, name).await.map_err(StepError::Record)?;
        if let Some(done) = done {
            return steps::decode(name, done);
        }
        let value = work(&mut self.tx).await.map_err(StepError::Work)?;
        let output = steps::encode(name, &value, self.link.max_bytes)?;
        let step =
            StepRecord { node: &self.link.node, job: self.id, attempt: self.attempt, name, output: &output };
        let kept = engine.record_step_in_tx(&mut self.tx, &step).await.map_err(StepError::Record)?;
        steps::kept_or_stale(kept, name, self.id)?;
        Ok(value)
    }

    /// Ends the transaction after the job fn returned `outcome`: a completion is written and
    /// committed in it; anything else rolls it back. The code `#[job]` writes calls it.
    #[doc(hidden)]
    pub async fn finish(self, outcome: Result<EncodedOutcome, String>) -> Result<EncodedOutcome, String> {
        let JobTx { mut tx, link, id, attempt } = self;
        link.set_tx_open(false);
        let output = match &outcome {
            Ok(Outcome::Complete) => None,
            Ok(Outcome::CompleteWith(value)) => Some(value),
            // Failed, snoozed, cancelled, discarded: none of the job's writes stay.
            _ => {
                let _ = tx.rollback().await;
                return outcome;
            }
        };
        if let Some(error) =
            output.and_then(|v| crate::runtime::executor::result_too_large(v, link.max_bytes))
        {
            let _ = tx.rollback().await;
            return Err(error);
        }
        let done = TxCompletion { node: &link.node, job: id, attempt, claim: link.claim, output };
        match link.engine.complete_in_tx(&mut tx, &done).await {
            Ok(true) => {}
            Ok(false) => {
                let _ = tx.rollback().await;
                return Err(format!(
                    "this run no longer holds job {id} (it was cancelled, or rescued and runs \
                     elsewhere): its transaction was rolled back, and its writes with it"
                ));
            }
            // Dropped, the transaction rolls back.
            Err(e) => return Err(format!("the job's transaction could not complete it: {e}")),
        }
        let queues = match tx.commit_quietly().await {
            Ok(queues) => queues,
            // Committed or not, the row says which: a retry recorded for it next is guarded,
            // and changes nothing if the commit went through.
            Err(e) => return Err(format!("the job's transaction could not commit: {e}")),
        };
        link.set_committed();
        link.engine.completed_in_tx(id);
        if let Err(e) = link.engine.committed(&queues).await {
            tracing::warn!(target: "jobsmith", job_id = id, error = %e, "after the job's transaction committed, the engine could not be told of the jobs it inserted");
        }
        outcome
    }
}

impl<'c> crate::query::QueryTarget<'c> for &'c mut JobTx {
    fn run(
        self,
        schema: String,
        m: crate::types::JobMatch,
        op: crate::types::QueryOp,
    ) -> crate::query::BoxFuture<'c, crate::Result<crate::types::QueryOutput>> {
        (&mut self.tx).run(schema, m, op)
    }
}
