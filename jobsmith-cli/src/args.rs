//! The command line, as clap types. Parsing only; the commands live in `commands`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use jobsmith::JobState;

use crate::duration;

/// Shown after the top-level help: what scripts may rely on.
const EXIT_STATUS: &str = "\
Exit status:
  0  success
  1  runtime error: bad database URL, unreachable or unmigrated database, refused operation
     (the cause is printed on stderr)
  2  usage error
  3  the job named by ID does not exist (jobs show/retry/cancel/delete)";

/// The help heading of the options every subcommand takes, to keep them apart from its own.
const GLOBAL: &str = "Global options";

/// Inspect and operate a jobsmith job database (PostgreSQL or SQLite).
#[derive(Debug, Parser)]
#[command(name = "jobsmith", version, after_help = format!("{}\n\n{EXIT_STATUS}", duration::HELP))]
pub(crate) struct Cli {
    /// Database URL: postgres://user@host/db or sqlite:path/to/jobs.db.
    // Global and optional so `--help` of every subcommand works without it; `main` insists on it.
    // The value is hidden from help output because it may carry a password.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true, help_heading = GLOBAL)]
    pub(crate) database_url: Option<String>,

    /// Print one JSON document instead of tables.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub(crate) json: bool,

    /// How long to wait for the database server to answer (e.g. 5s, 1m; `jobsmith --help` lists the forms).
    #[arg(long, global = true, default_value = "10s", value_parser = duration::parse, help_heading = GLOBAL)]
    pub(crate) connect_timeout: Duration,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Apply jobsmith's migrations (idempotent; creates a missing SQLite file).
    Migrate,
    /// Queues with job counts per state and their cluster-wide settings, live nodes, the leader.
    Status,
    /// List, inspect, retry, cancel or delete jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Pause, resume or scale a queue on every node (persisted for nodes started later).
    #[command(subcommand)]
    Queue(QueueCommand),
    /// List cron entries (in code and stored); add, edit, pause, resume, run or remove stored ones.
    #[command(subcommand)]
    Cron(CronCommand),
    /// Delete finished jobs older than their retention.
    #[command(after_help = duration::HELP)]
    Prune(PruneArgs),
    /// Serve the web dashboard until Ctrl-C (needs --token and/or --read-only-token).
    Web(WebArgs),
}

/// `jobs ...`
#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// Jobs matching filters, newest first, one page at a time.
    List(ListArgs),
    /// Everything about one job: args, meta, tags, errors per attempt, timestamps. Args larger
    /// than 64 KiB are cut, saying so, unless --full (--json always prints them whole).
    Show {
        /// Job id.
        id: i64,
        /// Print the args whole, however large.
        #[arg(long)]
        full: bool,
    },
    /// Make a discarded or cancelled job available again, or every such job matching filters.
    Retry(RetryArgs),
    /// Cancel a job that has not finished (a running job is told to stop), or with filters every
    /// unfinished job they select (prints the count; --yes does it).
    Cancel(BulkArgs),
    /// Delete a job that is not executing, or with filters every such job they select (prints the
    /// count; --yes does it).
    Delete(BulkArgs),
}

/// `cron ...`
#[derive(Debug, Subcommand)]
pub(crate) enum CronCommand {
    /// Every cron entry: the leader's code entries and the stored ones, with the expression in
    /// words, next and last slot, the last slot's job, and why an entry cannot run.
    List,
    /// The job types the leader runs (what `cron add --worker` takes), with their declared options.
    Workers,
    /// Store a new cron entry; the leader runs it within a second. Refused if the name is taken.
    Add(CronAddArgs),
    /// Change a stored entry: the options given replace the stored ones, the rest stay.
    Edit(CronEditArgs),
    /// Remove a stored entry (code entries are changed in code).
    Remove {
        /// The entry's name.
        name: String,
    },
    /// Insert one job of an entry now, outside its schedule.
    Run {
        /// The entry's name.
        name: String,
    },
    /// Pause an entry (stored or in code): its slots pass without jobs, and are not caught up.
    Pause {
        /// The entry's name.
        name: String,
    },
    /// Resume a paused entry.
    Resume {
        /// The entry's name.
        name: String,
    },
}

/// The job options of `cron add` and `cron edit`.
#[derive(Debug, Args)]
pub(crate) struct CronJobArgs {
    /// The time zone the expression is read in (IANA name, e.g. Europe/Paris). Default UTC.
    #[arg(long)]
    pub(crate) timezone: Option<String>,
    /// The job's args, as JSON (as its type encodes them). Default `{}`.
    #[arg(long)]
    pub(crate) args: Option<String>,
    /// What missed slots do: run-once (default), skip, or run-all:<max>.
    #[arg(long, value_parser = parse_missed)]
    pub(crate) missed: Option<jobsmith::MissedSlots>,
    /// Another queue than the job type's declared one.
    #[arg(long)]
    pub(crate) queue: Option<String>,
    /// Another priority (0 first to 9) than the declared one.
    #[arg(long)]
    pub(crate) priority: Option<u8>,
    /// Other attempts than the declared ones.
    #[arg(long)]
    pub(crate) max_attempts: Option<u32>,
    /// Tags instead of the declared ones (repeatable or comma-separated).
    #[arg(long = "tag", value_delimiter = ',')]
    pub(crate) tags: Option<Vec<String>>,
    /// Metadata, a JSON object.
    #[arg(long)]
    pub(crate) meta: Option<String>,
}

/// `cron add` options.
#[derive(Debug, Args)]
pub(crate) struct CronAddArgs {
    /// The entry's name, its key.
    pub(crate) name: String,
    /// The cron expression (five fields, an optional leading seconds field, or @hourly and such).
    #[arg(long)]
    pub(crate) expr: String,
    /// The job type, by its worker name (`jobsmith cron workers` lists them).
    #[arg(long)]
    pub(crate) worker: String,
    /// Store it paused.
    #[arg(long)]
    pub(crate) paused: bool,
    #[command(flatten)]
    pub(crate) job: CronJobArgs,
}

/// `cron edit` options.
#[derive(Debug, Args)]
pub(crate) struct CronEditArgs {
    /// The entry's name.
    pub(crate) name: String,
    /// A new cron expression.
    #[arg(long)]
    pub(crate) expr: Option<String>,
    /// Another job type.
    #[arg(long)]
    pub(crate) worker: Option<String>,
    #[command(flatten)]
    pub(crate) job: CronJobArgs,
}

/// `jobs cancel|delete`: one job by id, or every job the filters select.
#[derive(Debug, Args)]
pub(crate) struct BulkArgs {
    /// Job id.
    #[arg(required_unless_present_any = ["states", "queue", "worker", "tag", "arg"],
          conflicts_with_all = ["states", "queue", "worker", "tag", "arg"])]
    pub(crate) id: Option<i64>,
    /// Only jobs in this state (repeatable or comma-separated).
    #[arg(long = "state", value_name = "STATE", value_delimiter = ',', value_parser = parse_state)]
    pub(crate) states: Vec<JobState>,
    /// Only jobs of this queue.
    #[arg(long)]
    pub(crate) queue: Option<String>,
    /// Only jobs of this worker.
    #[arg(long)]
    pub(crate) worker: Option<String>,
    /// Only jobs carrying this tag.
    #[arg(long)]
    pub(crate) tag: Option<String>,
    /// Only jobs whose args field has this value: `field=value` (the value as JSON, else text).
    #[arg(long, value_parser = parse_arg)]
    pub(crate) arg: Option<(String, serde_json::Value)>,
    /// With filters: do it (without, only the count of jobs it would change is printed).
    #[arg(long)]
    pub(crate) yes: bool,
}

/// `field=value` (see `JobMatch::parse_field`).
fn parse_arg(text: &str) -> Result<(String, serde_json::Value), String> {
    jobsmith::JobMatch::parse_field(text)
}

/// `jobs list` options.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only jobs in this state (repeatable or comma-separated): available, scheduled, executing,
    /// retryable, completed, discarded, cancelled.
    #[arg(long = "state", value_name = "STATE", value_delimiter = ',', value_parser = parse_state)]
    pub(crate) states: Vec<JobState>,
    /// Only jobs of this queue.
    #[arg(long)]
    pub(crate) queue: Option<String>,
    /// Only jobs of this worker (its stored name).
    #[arg(long)]
    pub(crate) worker: Option<String>,
    /// Only jobs carrying this tag.
    #[arg(long)]
    pub(crate) tag: Option<String>,
    /// A job id, or text that occurs in the args.
    #[arg(long)]
    pub(crate) search: Option<String>,
    /// Most jobs to show.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) limit: u32,
    /// Only jobs with an id below this one: the last id of the previous page.
    #[arg(long, value_name = "ID")]
    pub(crate) before: Option<i64>,
}

/// `jobs retry` options: one job by id, or all jobs in the given final states.
#[derive(Debug, Args)]
pub(crate) struct RetryArgs {
    /// Job id.
    #[arg(required_unless_present = "states", conflicts_with_all = ["states", "queue", "worker", "tag"])]
    pub(crate) id: Option<i64>,
    /// Retry every job in this state (discarded or cancelled; repeatable or comma-separated).
    #[arg(long = "state", value_name = "STATE", value_delimiter = ',', value_parser = parse_retry_state)]
    pub(crate) states: Vec<JobState>,
    /// With --state: only jobs of this queue.
    #[arg(long, requires = "states")]
    pub(crate) queue: Option<String>,
    /// With --state: only jobs of this worker.
    #[arg(long, requires = "states")]
    pub(crate) worker: Option<String>,
    /// With --state: only jobs carrying this tag.
    #[arg(long, requires = "states")]
    pub(crate) tag: Option<String>,
}

/// `queue ...`. Each refuses a queue that no node runs and that has no jobs and no stored
/// settings (a typo, most often) unless `--create` says it is meant.
#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// Stop fetching new jobs of a queue on every node; running jobs finish.
    Pause {
        /// Queue name.
        queue: String,
        /// Store the setting even if no node runs the queue and it has no jobs yet.
        #[arg(long)]
        create: bool,
    },
    /// Fetch jobs of a queue again on every node.
    Resume {
        /// Queue name.
        queue: String,
        /// Store the setting even if no node runs the queue and it has no jobs yet.
        #[arg(long)]
        create: bool,
    },
    /// Set how many jobs of a queue each node runs at once.
    Scale {
        /// Queue name.
        queue: String,
        /// Jobs at once per node (at least 1; pause the queue to stop it).
        #[arg(value_parser = clap::value_parser!(u32).range(1..))]
        concurrency: u32,
        /// Store the setting even if no node runs the queue and it has no jobs yet.
        #[arg(long)]
        create: bool,
    },
    /// Set or clear how many jobs of a queue (or of each of its partitions) start per window,
    /// across all nodes.
    RateLimit {
        /// Queue name.
        queue: String,
        /// Starts per window, as `10/1s` or `600/1m`; `10/1s/partition` for each partition of
        /// the queue; `off` clears the limit.
        #[arg(value_parser = parse_rate)]
        rate: RateSetting,
        /// Store the setting even if no node runs the queue and it has no jobs yet.
        #[arg(long)]
        create: bool,
    },
    /// Set or clear how many jobs of one partition of a queue run at once, across all nodes
    /// (partitions then take turns).
    PartitionLimit {
        /// Queue name.
        queue: String,
        /// Jobs of one partition at once (at least 1); `off` clears the limit.
        #[arg(value_parser = parse_partition_limit)]
        limit: LimitSetting,
        /// Store the setting even if no node runs the queue and it has no jobs yet.
        #[arg(long)]
        create: bool,
    },
    /// Run each partition of a queue as a sequence (its jobs one at a time, in insertion order),
    /// or stop.
    Sequence {
        /// Queue name.
        queue: String,
        /// `wait` (a discarded job holds its sequence until retried, cancelled or deleted),
        /// `continue` (the next one starts after a discard), or `off`.
        #[arg(value_parser = parse_sequence)]
        policy: SequenceSetting,
        /// Store the setting even if no node runs the queue and it has no jobs yet.
        #[arg(long)]
        create: bool,
    },
    /// Set or clear the weight of one partition of a queue: in each turn of a partitioned fetch
    /// it gives that many jobs where a partition without a weight gives one.
    PartitionWeight {
        /// Queue name.
        queue: String,
        /// The partition's key, as its jobs have it.
        partition: String,
        /// 1 to 100; `off` clears it (a weight of 1).
        #[arg(value_parser = parse_partition_weight)]
        weight: LimitSetting,
    },
    /// List the stored partition weights, of one queue or of all.
    PartitionWeights {
        /// Only this queue's.
        queue: Option<String>,
    },
    /// Choose the failure policy of one sequence (one partition of a sequenced queue) in place
    /// of the queue's, or clear the choice.
    SequencePolicy {
        /// Queue name.
        queue: String,
        /// The sequence: the partition's key, as its jobs have it.
        partition: String,
        /// `wait`, `continue`, or `off` (back to the queue's policy).
        #[arg(value_parser = parse_sequence)]
        policy: SequenceSetting,
    },
    /// List the sequences with a policy of their own, of one queue or of all.
    SequencePolicies {
        /// Only this queue's.
        queue: Option<String>,
    },
}

/// A sequence policy given on the command line, or `off`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SequenceSetting(pub(crate) Option<jobsmith::SequencePolicy>);

fn parse_sequence(s: &str) -> Result<SequenceSetting, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(SequenceSetting(None));
    }
    s.parse().map(|p| SequenceSetting(Some(p))).map_err(|e: jobsmith::Error| format!("{e}, or `off`"))
}

fn parse_partition_weight(s: &str) -> Result<LimitSetting, String> {
    let most = jobsmith::MAX_PARTITION_WEIGHT;
    if s.eq_ignore_ascii_case("off") {
        return Ok(LimitSetting(None));
    }
    match s.parse::<u32>() {
        Ok(n) if (1..=most).contains(&n) => Ok(LimitSetting(Some(n))),
        _ => Err(format!("a partition weight is a number from 1 to {most}, or `off`; got {s:?}")),
    }
}

/// A limit given on the command line, or `off`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LimitSetting(pub(crate) Option<u32>);

fn parse_partition_limit(s: &str) -> Result<LimitSetting, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(LimitSetting(None));
    }
    match s.parse::<u32>() {
        Ok(n) if n >= 1 && n <= i32::MAX as u32 => Ok(LimitSetting(Some(n))),
        _ => {
            Err(format!("a partition limit is a number of jobs from 1 to {}, or `off`; got {s:?}", i32::MAX))
        }
    }
}

/// A rate limit given on the command line, or `off`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateSetting(pub(crate) Option<jobsmith::RateLimit>);

fn parse_rate(s: &str) -> Result<RateSetting, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(RateSetting(None));
    }
    s.parse().map(|rate| RateSetting(Some(rate))).map_err(|e: jobsmith::Error| e.to_string())
}

/// `prune` options.
#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Delete completed jobs that completed longer ago than this.
    #[arg(long, value_name = "AGE", default_value = "1d", value_parser = duration::parse)]
    pub(crate) completed_older_than: Duration,
    /// Delete cancelled jobs that were cancelled longer ago than this.
    #[arg(long, value_name = "AGE", default_value = "7d", value_parser = duration::parse)]
    pub(crate) cancelled_older_than: Duration,
    /// Delete discarded jobs that were discarded longer ago than this.
    #[arg(long, value_name = "AGE", default_value = "7d", value_parser = duration::parse)]
    pub(crate) discarded_older_than: Duration,
}

/// `web` options. At least one token is required: the dashboard refuses to run open.
#[derive(Debug, Args)]
pub(crate) struct WebArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,
    /// Token that grants full access: sent as a bearer token, as the password of HTTP basic
    /// auth (any user name), or typed into the login page. At least 16 characters.
    #[arg(
        long,
        env = "JOBSMITH_WEB_TOKEN",
        hide_env_values = true,
        required_unless_present = "read_only_token",
        value_parser = parse_web_token
    )]
    pub(crate) token: Option<String>,
    /// Token that grants read-only access, used the same ways. At least 16 characters.
    #[arg(long, env = "JOBSMITH_WEB_READ_ONLY_TOKEN", hide_env_values = true, value_parser = parse_web_token)]
    pub(crate) read_only_token: Option<String>,
}

/// The fewest characters a dashboard token may have: a shorter one can be guessed.
pub(crate) const MIN_WEB_TOKEN_CHARS: usize = 16;

/// A dashboard token: refused when too short to be secret (`openssl rand -hex 16` makes one).
fn parse_web_token(s: &str) -> Result<String, String> {
    let token = s.trim();
    if token.chars().count() < MIN_WEB_TOKEN_CHARS {
        return Err(format!(
            "a dashboard token must have at least {MIN_WEB_TOKEN_CHARS} characters, to be hard to guess \
             (this one has {}); make one with `openssl rand -hex 16`",
            token.chars().count()
        ));
    }
    Ok(token.to_string())
}

/// A job state by its stored name.
fn parse_missed(text: &str) -> Result<jobsmith::MissedSlots, String> {
    text.parse().map_err(|e: jobsmith::Error| e.to_string())
}

fn parse_state(text: &str) -> Result<JobState, String> {
    text.trim().parse()
}

/// A state `jobs retry` accepts: only final states that did not succeed can be retried.
fn parse_retry_state(text: &str) -> Result<JobState, String> {
    match parse_state(text)? {
        state @ (JobState::Discarded | JobState::Cancelled) => Ok(state),
        other => Err(format!("only discarded or cancelled jobs can be retried, not {other} ones")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn retry_takes_an_id_or_final_states() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["jobsmith", "jobs", "retry"], args].concat());
        assert!(parse(&["5"]).is_ok());
        assert!(parse(&["--state", "discarded,cancelled", "--queue", "q"]).is_ok());
        assert!(parse(&[]).is_err());
        assert!(parse(&["5", "--state", "discarded"]).is_err());
        assert!(parse(&["--queue", "q"]).is_err());
        let err = parse(&["--state", "completed"]).unwrap_err().to_string();
        assert!(err.contains("only discarded or cancelled"), "{err}");
    }

    #[test]
    fn help_explains_durations() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains(duration::HELP) && help.contains("Exit status:"), "{help}");
        let mut cli = Cli::command();
        let prune = cli.find_subcommand_mut("prune").expect("prune exists");
        assert!(prune.render_long_help().to_string().contains(duration::HELP));
        let parsed = Cli::try_parse_from(["jobsmith", "prune", "--completed-older-than", "1h 30m"]).unwrap();
        match parsed.command {
            Command::Prune(args) => assert_eq!(args.completed_older_than, Duration::from_secs(5_400)),
            other => panic!("{other:?}"),
        }
    }
}
