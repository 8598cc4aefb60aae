//! `jobsmith jobs retry|cancel|delete`: each tries the operation first and only looks the job up
//! when it was refused, to say why (missing, or in a state that does not allow it).

use jobsmith::engine::{Engine, JobMatch, QueryOp, QueryOutput};
use jobsmith::{JobFilter, JobState};
use serde_json::json;

use crate::args::{BulkArgs, RetryArgs};
use crate::error::Failure;
use crate::output;

/// Retries one job by id, or every discarded/cancelled job matching the filters.
pub(crate) async fn retry(engine: &dyn Engine, args: RetryArgs, json: bool) -> Result<(), Failure> {
    let Some(id) = args.id else {
        let filter = JobFilter {
            states: args.states,
            queue: args.queue,
            worker: args.worker,
            tag: args.tag,
            search: None,
        };
        let n = engine.retry_jobs(&filter).await?;
        if json {
            output::print_json(&json!({ "retried": n }));
        } else {
            println!("retried {n} job{}", if n == 1 { "" } else { "s" });
        }
        return Ok(());
    };
    if !engine.retry_job(id).await? {
        let state = state_of(engine, id).await?;
        return Err(Failure::new(format!(
            "job {id} is {state}; only discarded or cancelled jobs can be retried"
        )));
    }
    if json {
        output::print_json(&json!({ "id": id, "retried": 1 }));
    } else {
        println!("job {id} is available again");
    }
    Ok(())
}

/// Cancels a job that has not finished.
pub(crate) async fn cancel(engine: &dyn Engine, id: i64, json: bool) -> Result<(), Failure> {
    let Some(before) = engine.cancel_job(id).await? else {
        let state = state_of(engine, id).await?;
        return Err(Failure::new(format!(
            "job {id} is already {state}; only unfinished jobs can be cancelled"
        )));
    };
    if json {
        output::print_json(&json!({ "id": id, "cancelled": true, "previous_state": before.as_str() }));
    } else {
        println!("job {id} is cancelled (it was {before})");
    }
    Ok(())
}

/// Deletes a job that is not executing.
pub(crate) async fn delete(engine: &dyn Engine, id: i64, json: bool) -> Result<(), Failure> {
    if !engine.delete_job(id).await? {
        let state = state_of(engine, id).await?;
        return Err(Failure::new(if state == JobState::Executing {
            format!(
                "job {id} is executing and cannot be deleted; cancel it first (`jobsmith jobs cancel {id}`)"
            )
        } else {
            // The job changed state between the delete and the look-up; say what it is now.
            format!("job {id} was not deleted; it is {state} now, try again")
        }));
    }
    if json {
        output::print_json(&json!({ "id": id, "deleted": true }));
    } else {
        println!("job {id} is deleted");
    }
    Ok(())
}

/// The job's current state, or "no job with id" when it does not exist.
async fn state_of(engine: &dyn Engine, id: i64) -> Result<JobState, Failure> {
    Ok(engine.get_job(id).await?.ok_or(Failure::no_job(id))?.state)
}

/// Cancels or deletes every job the filters select, within the states the operation changes:
/// without `--yes` it only counts them, so a filter is seen before it acts.
pub(crate) async fn bulk(
    engine: &dyn Engine,
    args: BulkArgs,
    op: QueryOp,
    json: bool,
) -> Result<(), Failure> {
    let mut m = JobMatch {
        workers: args.worker.into_iter().collect(),
        args: args.arg.into_iter().collect(),
        states: args.states,
        queues: args.queue.into_iter().collect(),
        tags: args.tag.into_iter().collect(),
        ..JobMatch::default()
    };
    m.states = m.states_within(op.bulk_states());
    // None of the states named can be changed (a cancel of completed jobs): nothing to do. An
    // empty list would mean "any state" to the query.
    let nothing = m.states.is_empty();
    let verb = if op == QueryOp::Cancel { "cancel" } else { "delete" };
    let count = |out: QueryOutput| match out {
        QueryOutput::Count(n) => Ok(n),
        other => Err(Failure::new(format!("unexpected answer to a {verb}: {other:?}"))),
    };
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    if !args.yes {
        let n = if nothing { 0 } else { count(engine.run_query(&m, QueryOp::Count).await?)? };
        if json {
            output::print_json(&json!({ "would": verb, "jobs": n }));
        } else {
            println!("would {verb} {n} job{}; add --yes to do it", plural(n));
        }
        return Ok(());
    }
    let done = if op == QueryOp::Cancel { "cancelled" } else { "deleted" };
    let n = if nothing { 0 } else { count(engine.run_query(&m, op).await?)? };
    if json {
        output::print_json(&json!({ done: n }));
    } else {
        println!("{done} {n} job{}", plural(n));
    }
    Ok(())
}
