//! `jobsmith jobs ...`: listing, one job in full, and the operations on jobs.

mod act;
mod list;
mod show;

use jobsmith::engine::Engine;
use jobsmith::engine::QueryOp;

use crate::args::JobsCommand;
use crate::error::Failure;

/// Runs one `jobs` subcommand.
pub(crate) async fn run(engine: &dyn Engine, command: JobsCommand, json: bool) -> Result<(), Failure> {
    match command {
        JobsCommand::List(args) => list::run(engine, args, json).await,
        JobsCommand::Show { id, full } => show::run(engine, id, full, json).await,
        JobsCommand::Retry(args) => act::retry(engine, args, json).await,
        JobsCommand::Cancel(args) => match args.id {
            Some(id) => act::cancel(engine, id, json).await,
            None => act::bulk(engine, args, QueryOp::Cancel, json).await,
        },
        JobsCommand::Delete(args) => match args.id {
            Some(id) => act::delete(engine, id, json).await,
            None => act::bulk(engine, args, QueryOp::Delete, json).await,
        },
    }
}
