//! `jobsmith`: the command line of jobsmith. Inspects and operates a job database, PostgreSQL or
//! SQLite, with the same commands: migrate, status, jobs, queue, cron, prune, web.

mod args;
mod commands;
mod connect;
mod duration;
mod error;
mod output;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use crate::args::Cli;

fn main() -> ExitCode {
    // Usage errors exit with 2 inside `parse`, after printing clap's message.
    let cli = Cli::parse();
    // An empty DATABASE_URL (as `DATABASE_URL= jobsmith ...` leaves it) means none was given.
    let Some(url) = cli.database_url.clone().filter(|url| !url.trim().is_empty()) else {
        Cli::command()
            .error(
                ErrorKind::MissingRequiredArgument,
                "no database given: pass --database-url or set DATABASE_URL",
            )
            .exit()
    };
    // One thread is plenty: commands wait on the database one query at a time, and the dashboard
    // of `jobsmith web` serves a handful of operators.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli, &url)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.code)
        }
    }
}
