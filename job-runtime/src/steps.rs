//! Resumable steps: `ctx.step("charge", async { .. })` runs a named step of a job once. When the
//! step's work succeeds its value is recorded (guarded like a result: only while this run still
//! holds the job); a later attempt of the same job gets the recorded value back without doing
//! the work again.
//!
//! What is once: a step whose value was recorded never runs again for that job. What is not:
//! a step whose work finished but whose value could not be recorded (the node died in between)
//! runs again in the next attempt, so a step's work should be idempotent or cheap to redo, as
//! any job's should be.

use std::fmt;
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::run_link::RunLink;
use crate::types::StepRecord;

/// Why a step did not hand back a value.
#[derive(Debug)]
pub enum StepError<E> {
    /// The step's own work failed: nothing was recorded, and the next attempt runs it again.
    Work(E),
    /// The step's value could not be recorded or read back (the database, an encoding, a value
    /// over the result size limit), or this run no longer holds the job (it was rescued and runs
    /// elsewhere): stop, the attempt should fail.
    Record(crate::Error),
}

impl<E: fmt::Display> fmt::Display for StepError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Work(e) => e.fmt(f),
            StepError::Record(e) => write!(f, "the step could not be recorded: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for StepError<E> {}

/// Runs step `name` of job `id` in `attempt` (see [`crate::JobContext::step`]).
pub(crate) async fn run<T, E, Fut>(
    log: Option<&RunLink>,
    id: i64,
    attempt: u32,
    name: &str,
    work: Fut,
) -> Result<T, StepError<E>>
where
    T: Serialize + DeserializeOwned,
    Fut: Future<Output = Result<T, E>>,
{
    let Some(log) = log else { return work.await.map_err(StepError::Work) };
    if log.tx_open() && log.engine.name() == "sqlite" {
        // The job's transaction holds SQLite's one write lock: a step recorded outside it would
        // wait for that lock until the busy timeout, then fail.
        return Err(StepError::Record(crate::Error::InvalidOption(format!(
            "step `{name}` runs while the job's transaction is open on SQLite, which holds the \
             database's write lock: run it with `tx.step(..)` so it is recorded in that transaction"
        ))));
    }
    if let Some(done) = log.engine.step_output(id, name).await.map_err(StepError::Record)? {
        return decode(name, done);
    }
    let value = work.await.map_err(StepError::Work)?;
    let output = encode(name, &value, log.max_bytes)?;
    let step = StepRecord { node: &log.node, job: id, attempt, name, output: &output };
    let kept = log.engine.record_step(&step).await.map_err(StepError::Record)?;
    kept_or_stale(kept, name, id)?;
    Ok(value)
}

/// A recorded step value read back as the step's type.
pub(crate) fn decode<T: DeserializeOwned, E>(name: &str, done: serde_json::Value) -> Result<T, StepError<E>> {
    serde_json::from_value(done).map_err(|e| {
        StepError::Record(crate::Error::Unexpected(format!(
            "the recorded value of step `{name}` does not decode as the step's type: {e}"
        )))
    })
}

/// A step's value encoded for recording, held to the result size limit `max_bytes`.
pub(crate) fn encode<T: Serialize, E>(
    name: &str,
    value: &T,
    max_bytes: usize,
) -> Result<serde_json::Value, StepError<E>> {
    let output = serde_json::to_value(value).map_err(|e| StepError::Record(e.into()))?;
    if crate::runtime::executor::has_nul(&output) {
        return Err(StepError::Record(crate::Error::InvalidOption(format!(
            "the value of step `{name}` holds a NUL character (\\u0000), which the database cannot store"
        ))));
    }
    let size = output.to_string().len();
    if size > max_bytes {
        return Err(StepError::Record(crate::Error::InvalidOption(format!(
            "the value of step `{name}` is {size} bytes encoded, over the limit of {max_bytes} bytes \
             (RuntimeBuilder::max_result_bytes)"
        ))));
    }
    Ok(output)
}

/// The error of a step whose record the guard refused: this run no longer holds the job.
pub(crate) fn kept_or_stale<E>(kept: bool, name: &str, id: i64) -> Result<(), StepError<E>> {
    if kept {
        return Ok(());
    }
    Err(StepError::Record(crate::Error::Unexpected(format!(
        "step `{name}` finished, but this run no longer holds job {id} (it was cancelled, or \
         rescued and runs elsewhere): its value is not kept"
    ))))
}
