//! `jobsmith cron list|workers|add|edit|remove|run|pause|resume`: cron entries at run time
//! (ADR 30).

use jobsmith::engine::Engine;
use jobsmith::{CronAdmin, CronEntrySpec, CronListing, CronSource};
use serde_json::{Value, json};

use crate::args::{CronAddArgs, CronCommand, CronEditArgs, CronJobArgs};
use crate::error::Failure;
use crate::output;

pub(crate) async fn run(engine: &dyn Engine, command: CronCommand, json: bool) -> Result<(), Failure> {
    let cron = CronAdmin::new(engine);
    match command {
        CronCommand::List => list(cron, json).await,
        CronCommand::Workers => workers(engine, json).await,
        CronCommand::Add(args) => add(cron, args, json).await,
        CronCommand::Edit(args) => edit(cron, args, json).await,
        CronCommand::Remove { name } => {
            if !cron.remove(&name).await? {
                return Err(no_entry(&name));
            }
            done(json, &name, "removed")
        }
        CronCommand::Run { name } => {
            let job = cron.run_now(&name).await?.job;
            if json {
                output::print_json(&output::job_json(&job));
            } else {
                println!("cron entry `{name}` inserted job {} into queue `{}`", job.id, job.queue);
            }
            Ok(())
        }
        CronCommand::Pause { name } => {
            if !cron.pause(&name).await? {
                return Err(no_entry(&name));
            }
            done(json, &name, "paused")
        }
        CronCommand::Resume { name } => {
            if !cron.resume(&name).await? {
                return Err(no_entry(&name));
            }
            done(json, &name, "resumed")
        }
    }
}

fn no_entry(name: &str) -> Failure {
    Failure::new(format!("there is no cron entry named `{name}` (`jobsmith cron list` lists them)"))
}

fn done(json: bool, name: &str, what: &str) -> Result<(), Failure> {
    if json {
        output::print_json(&json!({ "name": name, "done": what }));
    } else {
        println!("cron entry `{name}` {what}");
    }
    Ok(())
}

fn listing_json(l: &CronListing) -> Value {
    let e = &l.entry;
    json!({
        "name": e.name,
        "source": e.source.as_str(),
        "expr": e.expr,
        "description": l.description,
        "timezone": e.timezone,
        "missed": e.missed,
        "paused": e.paused,
        "worker": e.job.worker,
        "queue": e.job.queue,
        "args": e.job.args,
        "next_slot": output::json_opt_time(l.next_slot),
        "last_slot": output::json_opt_time(e.last_slot),
        "last_job": e.last_job.map(|(id, state)| json!({ "id": id, "state": state.map(|s| s.as_str()) })),
        "error": e.error,
    })
}

async fn list(cron: CronAdmin<'_>, json: bool) -> Result<(), Failure> {
    let listed = cron.list().await?;
    if json {
        output::print_json(&Value::Array(listed.iter().map(listing_json).collect()));
        return Ok(());
    }
    let mut table = output::Table::new([
        "NAME", "SOURCE", "SCHEDULE", "TIMEZONE", "STATUS", "NEXT", "LAST", "LAST JOB", "WORKER",
    ]);
    for l in &listed {
        let e = &l.entry;
        let status = match (&e.error, e.paused) {
            (Some(_), _) => "error",
            (None, true) => "paused",
            (None, false) => "enabled",
        };
        let last_job = e.last_job.map_or_else(String::new, |(id, state)| match state {
            Some(state) => format!("{id} ({state})"),
            None => format!("{id} (pruned)"),
        });
        table.row(vec![
            e.name.clone(),
            e.source.as_str().to_string(),
            format!("{} ({})", e.expr, l.description),
            e.timezone.clone(),
            status.to_string(),
            output::opt_time(l.next_slot),
            output::opt_time(e.last_slot),
            last_job,
            e.job.worker.clone(),
        ]);
    }
    print!("{}", table.render());
    for l in listed.iter().filter(|l| l.entry.error.is_some()) {
        println!("{}: cannot run: {}", l.entry.name, l.entry.error.as_deref().unwrap_or_default());
    }
    Ok(())
}

async fn workers(engine: &dyn Engine, json: bool) -> Result<(), Failure> {
    let workers = engine.workers().await?;
    if json {
        let rows: Vec<Value> = workers
            .iter()
            .map(|w| json!({ "name": w.name, "queue": w.queue, "priority": w.priority, "max_attempts": w.max_attempts, "tags": w.tags }))
            .collect();
        output::print_json(&Value::Array(rows));
        return Ok(());
    }
    let mut table = output::Table::new(["WORKER", "QUEUE", "PRIORITY", "MAX ATTEMPTS", "TAGS"]);
    for w in &workers {
        table.row(vec![
            w.name.clone(),
            w.queue.clone(),
            w.priority.to_string(),
            w.max_attempts.to_string(),
            w.tags.join(","),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

fn parse_json(what: &str, text: Option<&str>) -> Result<Option<Value>, Failure> {
    text.map(|t| serde_json::from_str(t).map_err(|e| Failure::new(format!("--{what} is not JSON: {e}"))))
        .transpose()
}

/// The spec from the options given, over `base` (the stored entry for `edit`).
fn apply(mut spec: CronEntrySpec, job: CronJobArgs) -> Result<CronEntrySpec, Failure> {
    if let Some(args) = parse_json("args", job.args.as_deref())? {
        spec.args = args;
    }
    if let Some(meta) = parse_json("meta", job.meta.as_deref())? {
        spec.meta = Some(meta);
    }
    spec.timezone = job.timezone.or(spec.timezone);
    spec.missed = job.missed.or(spec.missed);
    spec.queue = job.queue.or(spec.queue);
    spec.priority = job.priority.or(spec.priority);
    spec.max_attempts = job.max_attempts.or(spec.max_attempts);
    spec.tags = job.tags.or(spec.tags);
    Ok(spec)
}

async fn add(cron: CronAdmin<'_>, args: CronAddArgs, json: bool) -> Result<(), Failure> {
    if cron.list().await?.iter().any(|l| l.entry.name == args.name) {
        return Err(Failure::new(format!(
            "a cron entry named `{}` exists already: change it with `jobsmith cron edit`",
            args.name
        )));
    }
    let base = CronEntrySpec {
        name: args.name.clone(),
        expr: args.expr,
        worker: args.worker,
        args: json!({}),
        ..CronEntrySpec::default()
    };
    cron.save_spec(apply(base, args.job)?).await?;
    if args.paused {
        cron.pause(&args.name).await?;
    }
    done(json, &args.name, if args.paused { "added, paused" } else { "added" })
}

async fn edit(cron: CronAdmin<'_>, args: CronEditArgs, json: bool) -> Result<(), Failure> {
    let listed = cron.list().await?;
    let Some(stored) = listed.into_iter().find(|l| l.entry.name == args.name) else {
        return Err(no_entry(&args.name));
    };
    let e = stored.entry;
    if e.source == CronSource::Code {
        return Err(Failure::new(format!(
            "cron entry `{}` is defined in the leader's code: change it there (here it can only be paused or resumed)",
            e.name
        )));
    }
    let base = CronEntrySpec {
        name: e.name.clone(),
        expr: args.expr.unwrap_or(e.expr),
        timezone: Some(e.timezone),
        missed: e.missed.parse().ok(),
        // Another job type takes its own declared options, unless given.
        queue: args.worker.is_none().then_some(e.job.queue),
        priority: args.worker.is_none().then_some(e.job.priority),
        max_attempts: args.worker.is_none().then_some(e.job.max_attempts),
        tags: args.worker.is_none().then_some(e.job.tags),
        worker: args.worker.unwrap_or(e.job.worker),
        args: e.job.args,
        meta: Some(e.job.meta),
    };
    cron.save_spec(apply(base, args.job)?).await?;
    done(json, &e.name, "changed")
}
