//! `jobsmith jobs list`.

use jobsmith::engine::Engine;
use jobsmith::{JobFilter, Page};
use serde_json::{Value, json};

use crate::args::ListArgs;
use crate::error::Failure;
use crate::output::{self, Table};

/// Longest args text in a table cell; `jobs show` prints more of them (`--full`: all).
const ARGS_WIDTH: usize = 60;

/// Prints one page of jobs, newest first.
pub(crate) async fn run(engine: &dyn Engine, args: ListArgs, json: bool) -> Result<(), Failure> {
    let filter = JobFilter {
        states: args.states,
        queue: args.queue,
        worker: args.worker,
        tag: args.tag,
        search: args.search,
    };
    let jobs = engine.list_jobs(&filter, Page { limit: args.limit, before_id: args.before }).await?;
    // A full page may have more behind it; a short one is the last.
    let next_before = if jobs.len() == args.limit as usize { jobs.last().map(|j| j.id) } else { None };

    if json {
        let jobs: Vec<Value> = jobs.iter().map(output::job_json).collect();
        output::print_json(&json!({ "jobs": jobs, "next_before": next_before }));
        return Ok(());
    }
    if jobs.is_empty() {
        println!("no jobs match");
        return Ok(());
    }
    let mut table = Table::new(["ID", "STATE", "QUEUE", "WORKER", "ATTEMPT", "INSERTED (UTC)", "ARGS"]);
    for job in &jobs {
        table.row(vec![
            job.id.to_string(),
            job.state.to_string(),
            job.queue.clone(),
            job.worker.clone(),
            format!("{}/{}", job.attempt, job.max_attempts),
            output::time(job.inserted_at),
            output::truncate(&job.args.to_string(), ARGS_WIDTH),
        ]);
    }
    print!("{}", table.render());
    if let Some(id) = next_before {
        println!("(more may follow: add --before {id})");
    }
    Ok(())
}
