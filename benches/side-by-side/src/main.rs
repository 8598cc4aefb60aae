//! Side-by-side benchmark: a hand-written SQL pipeline, graphile_worker (tuned), apalis and
//! jobsmith (defaults), in one process, on one PostgreSQL server, on one workload. See README.md.
//!
//! ```text
//! side-by-side [--database-url URL] [--jobs N] [--single-jobs K] [--concurrency C]
//!              [--timeout-secs T] [--rounds R]
//!              [--systems pipeline,graphile,apalis,jobsmith]
//!              [--scenarios insert-single,insert-bulk,burn-down,latency]
//! ```
//!
//! Prints one JSON object per measurement, then a Markdown table of per-system medians.

mod apalis;
mod common;
mod graphile;
mod jobsmith_sys;
mod pipeline;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Measured, Settings};

/// A system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum System {
    Pipeline,
    Graphile,
    Apalis,
    Jobsmith,
}

impl System {
    const ALL: [System; 4] = [System::Pipeline, System::Graphile, System::Apalis, System::Jobsmith];

    fn name(self) -> &'static str {
        match self {
            System::Pipeline => "pipeline",
            System::Graphile => "graphile_worker",
            System::Apalis => "apalis",
            System::Jobsmith => "jobsmith",
        }
    }

    fn parse(s: &str) -> System {
        match s {
            "pipeline" => System::Pipeline,
            "graphile" | "graphile_worker" | "graphile-worker" => System::Graphile,
            "apalis" => System::Apalis,
            "jobsmith" => System::Jobsmith,
            other => panic!("unknown system {other}: use pipeline, graphile, apalis, jobsmith"),
        }
    }

    /// The crate version(s) behind the system, from Cargo.lock (see build.rs).
    fn version(self) -> &'static str {
        match self {
            System::Pipeline => concat!("sqlx ", env!("SBS_VERSION_SQLX")),
            System::Graphile => concat!("graphile_worker ", env!("SBS_VERSION_GRAPHILE_WORKER")),
            System::Apalis => concat!(
                "apalis ",
                env!("SBS_VERSION_APALIS"),
                ", apalis-postgres ",
                env!("SBS_VERSION_APALIS_POSTGRES")
            ),
            System::Jobsmith => concat!("jobsmith ", env!("SBS_VERSION_JOBSMITH"), " (path)"),
        }
    }

    fn settings(self) -> Value {
        match self {
            System::Pipeline => pipeline::settings(),
            System::Graphile => graphile::settings(),
            System::Apalis => apalis::settings(),
            System::Jobsmith => jobsmith_sys::settings(),
        }
    }
}

/// A workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    InsertSingle,
    InsertBulk,
    BurnDown,
    Latency,
}

impl Scenario {
    const ALL: [Scenario; 4] =
        [Scenario::InsertSingle, Scenario::InsertBulk, Scenario::BurnDown, Scenario::Latency];

    fn name(self) -> &'static str {
        match self {
            Scenario::InsertSingle => "insert-single",
            Scenario::InsertBulk => "insert-bulk",
            Scenario::BurnDown => "burn-down",
            Scenario::Latency => "latency",
        }
    }

    fn parse(s: &str) -> Scenario {
        Scenario::ALL.into_iter().find(|sc| sc.name() == s).unwrap_or_else(|| {
            panic!("unknown scenario {s}: use insert-single, insert-bulk, burn-down, latency")
        })
    }
}

struct Args {
    settings: Settings,
    systems: Vec<System>,
    scenarios: Vec<Scenario>,
    rounds: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: side-by-side [--database-url URL] [--jobs N] [--single-jobs K] [--concurrency C] \
         [--timeout-secs T] [--rounds R] [--systems pipeline,graphile,apalis,jobsmith] \
         [--scenarios insert-single,insert-bulk,burn-down,latency]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        settings: Settings {
            url: "postgres://postgres@127.0.0.1:5432/test".into(),
            jobs: 20_000,
            single_jobs: 5_000,
            concurrency: 50,
            timeout: Duration::from_secs(120),
        },
        systems: System::ALL.to_vec(),
        scenarios: Scenario::ALL.to_vec(),
        rounds: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            usage();
        }
        let Some(value) = it.next() else { usage() };
        let number = |v: &str| v.parse::<usize>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--database-url" => a.settings.url = value,
            "--jobs" => a.settings.jobs = number(&value).max(1),
            "--single-jobs" => a.settings.single_jobs = number(&value).max(1),
            "--concurrency" => a.settings.concurrency = number(&value).max(1),
            "--timeout-secs" => a.settings.timeout = Duration::from_secs(number(&value).max(1) as u64),
            "--rounds" => a.rounds = number(&value).max(1),
            "--systems" => a.systems = value.split(',').map(|s| System::parse(s.trim())).collect(),
            "--scenarios" => a.scenarios = value.split(',').map(|s| Scenario::parse(s.trim())).collect(),
            _ => usage(),
        }
    }
    a.systems.dedup();
    a.scenarios.dedup();
    a
}

/// Runs one measurement on its own fresh database, then drops that database.
async fn measure(system: System, scenario: Scenario, s: &Settings) -> Measured {
    let (db, m) = match (system, scenario) {
        (System::Pipeline, Scenario::InsertSingle) => pipeline::insert_single(s).await,
        (System::Pipeline, Scenario::InsertBulk) => pipeline::insert_bulk(s).await,
        (System::Pipeline, Scenario::BurnDown) => pipeline::burn_down(s).await,
        (System::Pipeline, Scenario::Latency) => pipeline::latency(s).await,
        (System::Graphile, Scenario::InsertSingle) => graphile::insert_single(s).await,
        (System::Graphile, Scenario::InsertBulk) => graphile::insert_bulk(s).await,
        (System::Graphile, Scenario::BurnDown) => graphile::burn_down(s).await,
        (System::Graphile, Scenario::Latency) => graphile::latency(s).await,
        (System::Apalis, Scenario::InsertSingle) => apalis::insert_single(s).await,
        (System::Apalis, Scenario::InsertBulk) => apalis::insert_bulk(s).await,
        (System::Apalis, Scenario::BurnDown) => apalis::burn_down(s).await,
        (System::Apalis, Scenario::Latency) => apalis::latency(s).await,
        (System::Jobsmith, Scenario::InsertSingle) => jobsmith_sys::insert_single(s).await,
        (System::Jobsmith, Scenario::InsertBulk) => jobsmith_sys::insert_bulk(s).await,
        (System::Jobsmith, Scenario::BurnDown) => jobsmith_sys::burn_down(s).await,
        (System::Jobsmith, Scenario::Latency) => jobsmith_sys::latency(s).await,
    };
    common::drop_database(&s.url, &db).await;
    m
}

/// Every figure of one (system, scenario), over the rounds.
#[derive(Default)]
struct Figures {
    main: Vec<f64>,
    p99: Vec<f64>,
    timeouts: usize,
}

#[tokio::main]
async fn main() {
    let a = args();
    common::micros_now();
    let mut results: BTreeMap<(System, Scenario), Figures> = BTreeMap::new();
    for round in 1..=a.rounds {
        let mut order = a.systems.clone();
        let shift = (round - 1) % order.len();
        order.rotate_left(shift);
        for &scenario in &a.scenarios {
            for &system in &order {
                eprintln!("round {round}: {} {}", system.name(), scenario.name());
                let m = measure(system, scenario, &a.settings).await;
                let mut line = json!({
                    "system": system.name(),
                    "scenario": scenario.name(),
                    "round": round,
                    "figure": m.figure.map(|f| (f * 10.0).round() / 10.0),
                    "unit": m.unit,
                    "version": system.version(),
                    "settings": {"run": a.settings.to_json(), "system": system.settings()},
                });
                if let (Some(o), Value::Object(extra)) = (line.as_object_mut(), m.extra.clone()) {
                    o.extend(extra);
                }
                println!("{line}");
                let f = results.entry((system, scenario)).or_default();
                if let Some(x) = m.figure {
                    f.main.push(x);
                }
                if let Some(p99) = m.extra.get("p99_ms").and_then(Value::as_f64) {
                    f.p99.push(p99);
                }
                if m.extra.get("timeout").and_then(Value::as_bool) == Some(true) {
                    f.timeouts += 1;
                }
            }
        }
    }
    common::drop_all_databases(&a.settings.url).await;
    print_table(&a, &results);
}

/// The median of `v` (the mean of the middle two for an even count); None when empty.
fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => None,
        n if n % 2 == 1 => Some(s[n / 2]),
        n => Some((s[n / 2 - 1] + s[n / 2]) / 2.0),
    }
}

/// `median (min–max)`, or `–` when there is no figure; a dagger marks a cell with a timed-out
/// measurement in it.
fn cell(v: &[f64], digits: usize, f: Option<&Figures>) -> String {
    let dagger = if f.is_some_and(|f| f.timeouts > 0) { " †" } else { "" };
    let Some(m) = median(v) else { return format!("–{dagger}") };
    if v.len() == 1 {
        return format!("{m:.digits$}{dagger}");
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{m:.digits$} ({lo:.digits$}–{hi:.digits$}){dagger}")
}

fn print_table(a: &Args, results: &BTreeMap<(System, Scenario), Figures>) {
    let s = &a.settings;
    let empty = Figures::default();
    let get = |sys: System, sc: Scenario| results.get(&(sys, sc));
    let burn = |sys: System| get(sys, Scenario::BurnDown).and_then(|f| median(&f.main));
    println!();
    println!(
        "Medians over {} round(s) (min–max when more than one); N = {}, K = {}, C = {}; † = a timeout.",
        a.rounds, s.jobs, s.single_jobs, s.concurrency
    );
    println!();
    println!(
        "| system | insert-single (jobs/s) | insert-bulk (jobs/s) | burn-down (jobs/s) | latency p50 (ms) | latency p99 (ms) | burn-down ÷ jobsmith | burn-down ÷ pipeline |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for &sys in &a.systems {
        let col = |sc: Scenario, digits: usize| {
            let f = get(sys, sc);
            cell(&f.unwrap_or(&empty).main, digits, f)
        };
        let p99 = {
            let f = get(sys, Scenario::Latency);
            cell(&f.unwrap_or(&empty).p99, 2, f)
        };
        let ratio = |other: System| match (burn(sys), burn(other)) {
            (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
            _ => "–".into(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            sys.name(),
            col(Scenario::InsertSingle, 0),
            col(Scenario::InsertBulk, 0),
            col(Scenario::BurnDown, 0),
            col(Scenario::Latency, 2),
            p99,
            ratio(System::Jobsmith),
            ratio(System::Pipeline),
        );
    }
}
