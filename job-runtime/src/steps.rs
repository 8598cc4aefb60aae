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
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::Engine;
use crate::types::StepRecord;

/// Where a running job's steps are recorded: its engine and node, set by the runtime (and the
/// testing helpers that run through a database). A context without one runs every step.
#[derive(Clone)]
pub(crate) struct StepLog {
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) node: String,
    pub(crate) max_bytes: usize,
}

impl fmt::Debug for StepLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepLog").field("node", &self.node).finish_non_exhaustive()
    }
}

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
    log: Option<&StepLog>,
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
    if let Some(done) = log.engine.step_output(id, name).await.map_err(StepError::Record)? {
        return serde_json::from_value(done).map_err(|e| {
            StepError::Record(crate::Error::Unexpected(format!(
                "the recorded value of step `{name}` does not decode as the step's type: {e}"
            )))
        });
    }
    let value = work.await.map_err(StepError::Work)?;
    let output = serde_json::to_value(&value).map_err(|e| StepError::Record(e.into()))?;
    if crate::runtime::executor::has_nul(&output) {
        return Err(StepError::Record(crate::Error::InvalidOption(format!(
            "the value of step `{name}` holds a NUL character (\\u0000), which the database cannot store"
        ))));
    }
    let size = output.to_string().len();
    if size > log.max_bytes {
        return Err(StepError::Record(crate::Error::InvalidOption(format!(
            "the value of step `{name}` is {size} bytes encoded, over the limit of {} bytes \
             (RuntimeBuilder::max_result_bytes)",
            log.max_bytes
        ))));
    }
    let step = StepRecord { node: &log.node, job: id, attempt, name, output: &output };
    if !log.engine.record_step(&step).await.map_err(StepError::Record)? {
        return Err(StepError::Record(crate::Error::Unexpected(format!(
            "step `{name}` finished, but this run no longer holds job {id} (it was cancelled, or \
             rescued and runs elsewhere): its value is not kept"
        ))));
    }
    Ok(value)
}
