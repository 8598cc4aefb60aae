//! The clinic: appointment reminders, a nightly no-show risk job and an insurer API sync, on
//! jobsmith. The use case jobsmith was built for, end to end.
//!
//! ```text
//! cargo run --example clinic                         # the demo, on SQLite in the temp dir
//! DATABASE_URL=postgres://postgres@127.0.0.1/test cargo run --example clinic
//! cargo run --example clinic -- --serve              # real time, until Ctrl-C
//! ```
//!
//! The demo (`--demo`, the default) books three appointments, moves one and cancels one, syncs
//! three patients' benefits from a local stand-in of the insurer's API, waits for every job that
//! follows, prints a summary and exits non-zero if anything turned out other than expected. It
//! compresses time, so reminders due a day ahead run within seconds.
//!
//! Where to read what:
//!
//! | file | what |
//! | --- | --- |
//! | `main.rs` | wiring: database, migrations, queues, cron, shutdown |
//! | `clinic.rs` | the rules: booking, moving and cancelling keep reminder jobs in step |
//! | `jobs.rs` | the four jobs and how each outcome is chosen |
//! | `store.rs` | every SQL statement, written once for both engines |
//! | `db.rs` | the only code that tells PostgreSQL from SQLite |
//! | `migrations/` | the clinic's tables, one script per engine |
//! | `benefits_api.rs` | the insurer's API (a local server) and its HTTP client |
//! | `demo.rs` | the scripted run and its checks |

mod benefits_api;
mod clinic;
mod db;
mod demo;
mod jobs;
mod store;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use jobsmith::{CronEntry, Db, RateLimit};

use crate::benefits_api::Insurer;
use crate::clinic::Clock;
use crate::db::Sql;
use crate::jobs::{Clinic, ScoreNoShowRisk};

/// The error type of the example: anything, with its message.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The clinic's time zone: the no-show risk job runs at 02:00 here, whatever the server's zone.
const CLINIC_TIME_ZONE: &str = "America/New_York";

/// How the program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The scripted, time-compressed run (the default).
    Demo,
    /// Real time, until Ctrl-C or SIGTERM: what a deployed worker runs.
    Serve,
}

const USAGE: &str = "usage: clinic [--demo | --serve]   (DATABASE_URL picks the database; default SQLite)";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | ["--demo"] => Mode::Demo,
        ["--serve"] => Mode::Serve,
        ["--help" | "-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(mode).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("clinic: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sets everything up, runs `mode`, and shuts down; `Ok(false)` if the demo's checks failed.
async fn run(mode: Mode) -> Result<bool, BoxError> {
    let demo = mode == Mode::Demo;
    let (url, _temp) = match std::env::var("DATABASE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let temp =
                TempFile(std::env::temp_dir().join(format!("jobsmith-clinic-{}.db", std::process::id())));
            (format!("sqlite://{}", temp.0.display()), Some(temp))
        }
    };
    let db = Db::connect(&url).await.map_err(|e| format!("cannot open {url}: {e}"))?;
    db.migrate().await?; // jobsmith's tables
    let sql = Sql::new(db.pool().clone());
    sql.migrate().await?; // the clinic's tables, beside them

    // The demo compresses time so reminders due a day ahead run within seconds.
    let clock = if demo { Clock::compressed(demo::SPEEDUP) } else { Clock::compressed(1) };
    let insurer = Arc::new(Insurer::demo());
    let (insurer_addr, insurer_task) = insurer.clone().serve().await?;
    jobs::FAST_RETRIES.store(demo, std::sync::atomic::Ordering::Relaxed);

    // 02:00 every night in New York; in the demo every 2 seconds, so it fires during the run.
    let risk_schedule = if demo { "*/2 * * * * *" } else { "0 2 * * *" };
    let mut builder = db
        .runtime()
        .queue("default", 10)
        .queue("events", 50)
        // Reminders are partitioned by clinic (`clinic::CLINIC_ID`): clinics sharing the
        // database take turns, at most 25 reminders of one clinic at once.
        .partition_limit("events", 25)
        .queue("mailers", 20)
        .queue("maintenance", 5)
        // Benefit syncs: at most two at once and ten a second per insurer (its API's limits),
        // across all nodes, insurers in turn.
        .queue("benefits", 10)
        .partition_limit("benefits", 2)
        .rate_limit("benefits", RateLimit::per_second(10).for_each_partition())
        // What the jobs take as `State<Clinic>`: the clinic's database, the insurer's address and
        // the clinic's clock.
        .state(Clinic { sql: sql.clone(), insurer: insurer_addr.to_string(), clock })
        .cron_entry(CronEntry::new(risk_schedule, ScoreNoShowRisk {})?.timezone(CLINIC_TIME_ZONE)?);
    if demo {
        // Jobs inserted inside our own SQLite transactions are announced before the commit, so
        // the runtime finds them on its next poll: poll often to keep the demo brisk.
        builder = builder.poll_interval(Duration::from_millis(100));
    }
    let runtime = builder.start().await?;
    println!(
        "clinic {} on {} (node {}), insurer API at http://{insurer_addr}",
        if demo { "demo" } else { "serving" },
        db.engine().name(),
        runtime.node_name()
    );

    let outcome = match mode {
        Mode::Demo => demo::run(&db, &runtime, &sql, &insurer, &clock).await,
        Mode::Serve => {
            // Listen before saying so: a SIGTERM sent on reading the line must find the handler.
            let stop = StopSignals::listen()?;
            println!("serving; Ctrl-C or SIGTERM stops");
            stop.wait().await.map(|()| true)
        }
    };
    // Whatever happened, stop cleanly: running jobs finish or are handed back, none stays executing.
    runtime.shutdown().await?;
    insurer_task.abort();
    println!("node stopped cleanly");
    outcome
}

/// SIGINT and SIGTERM handlers, installed when made (a signal before then kills the process).
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> Result<Self, BoxError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    async fn wait(mut self) -> Result<(), BoxError> {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        Ok(())
    }
}

/// The default SQLite database file, removed (with its WAL files) when the run ends.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}
