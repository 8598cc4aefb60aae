//! One module per subcommand; this one opens the database and dispatches.

mod cron;
mod jobs;
mod migrate;
mod prune;
mod queue;
mod status;
mod web;

use crate::args::{Cli, Command};
use crate::connect::{self, Mode};
use crate::error::Failure;

/// Runs the parsed command against the database at `url`.
pub(crate) async fn run(cli: Cli, url: &str) -> Result<(), Failure> {
    let mode = if matches!(cli.command, Command::Migrate) { Mode::Create } else { Mode::Existing };
    let db = connect::open(url, cli.connect_timeout, mode).await?;
    let engine = db.engine().as_ref();
    match cli.command {
        Command::Migrate => migrate::run(&db, cli.json).await,
        Command::Status => status::run(engine, cli.json).await,
        Command::Jobs(command) => jobs::run(engine, command, cli.json).await,
        Command::Queue(command) => queue::run(engine, command, cli.json).await,
        Command::Cron(command) => cron::run(engine, command, cli.json).await,
        Command::Prune(args) => prune::run(engine, &args, cli.json).await,
        Command::Web(args) => web::run(db.engine().clone(), args, cli.json).await,
    }
}
