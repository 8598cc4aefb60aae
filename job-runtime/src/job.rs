//! The `Job` trait that `#[job]` implements, and the options a job type declares.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backoff::default_backoff;
use crate::context::JobContext;
use crate::state::JobState;
pub use crate::types::OnConflict;

/// The future a job's `perform` returns.
pub type PerformFuture = Pin<Box<dyn Future<Output = Result<crate::outcome::EncodedOutcome, String>> + Send>>;

/// A typed job: its args are the fields of the implementing struct.
///
/// `#[job]` writes this impl for you; writing it by hand is supported too, for example to compute
/// the backoff from the job's own state.
///
/// ```
/// use jobsmith::{Job, JobContext, JobOptions, PerformFuture, Outcome};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Ping { host: String }
///
/// impl Job for Ping {
///     type Output = ();
///     const NAME: &'static str = "ping";
///     const OPTIONS: JobOptions = JobOptions { queue: "net", ..JobOptions::DEFAULT };
///     fn perform(self, _ctx: JobContext) -> PerformFuture {
///         Box::pin(async move { Ok(Outcome::Complete) })
///     }
/// }
/// assert_eq!(Ping::OPTIONS.max_attempts, 20);
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The result a completed job records (`()` for none): the `T` of a job fn returning
    /// `Result<T, E>` or `Result<Outcome<T>, E>`. Read back typed with [`crate::Db::result`].
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// The worker name stored with each row; it finds the code that runs the row.
    const NAME: &'static str;
    /// The defaults for each insert of this job; each can be overridden per insert.
    const OPTIONS: JobOptions;

    /// Earlier worker names (`#[job(aliases = [...])]`): rows stored under one of them run with
    /// this job, so a job type can be renamed or moved without orphaning its rows.
    const ALIASES: &'static [&'static str] = &[];

    /// The state types the job takes (its `State<T>` parameters), which a runtime must provide
    /// (see [`crate::RuntimeBuilder::state`]). None by default.
    const STATES: &'static [crate::app_state::StateNeed] = &[];

    /// Delay before retry number `attempt + 1`, after failed attempt `attempt` (1-based).
    fn backoff(attempt: u32) -> Duration {
        default_backoff(attempt)
    }

    /// Runs the job.
    fn perform(self, ctx: JobContext) -> PerformFuture;
}

/// The most attempts a job may be given (`max_attempts`): `i32::MAX`, because the column that
/// stores it is a 32-bit integer on both engines. `#[job(max_attempts = ...)]` refuses more at
/// compile time (the macro keeps its own copy of this number), and an insert refuses more before
/// reaching the database.
pub const MAX_ATTEMPTS_LIMIT: u32 = i32::MAX as u32;

/// The options a job type declares in `#[job(...)]`. Every field states its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobOptions {
    /// Queue to run on. Default `"default"`.
    pub queue: &'static str,
    /// Attempts before the job is discarded, 1 to [`MAX_ATTEMPTS_LIMIT`]. Default 20.
    pub max_attempts: u32,
    /// 0 (runs first) to 9. Default 0.
    pub priority: u8,
    /// How many of its queue's slots one run takes, 1 to [`crate::MAX_WEIGHT`] (a heavy report may take
    /// 5 of a queue's 10). Counted against the node's limit and the queue's global limit. Default 1.
    pub weight: u16,
    /// The args field whose value is the job's partition (a tenant, an insurer): a queue with a
    /// partition limit runs at most that many jobs of each partition at once and takes the
    /// partitions in turn (see [`crate::RuntimeBuilder::partition_limit`]). `#[job(partition =
    /// "insurer_id")]` checks at compile time that the field exists. Default none: the job
    /// belongs to no partition.
    pub partition_by: Option<&'static str>,
    /// Longest a single attempt may run; `None` (the default) means no limit.
    pub timeout: Option<Duration>,
    /// Tags stored with each row. Default none.
    pub tags: &'static [&'static str],
    /// Uniqueness; `None` (the default) means every insert makes a new row.
    pub unique: Option<UniqueOptions>,
    /// A schedule on which the runtime inserts this job (jobs without args only). Default none.
    pub cron: Option<CronSpec>,
}

/// `#[job(cron = "...", timezone = "...")]`: insert the job on a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronSpec {
    /// The cron expression (see [`crate::cron::Schedule`]).
    pub expr: &'static str,
    /// IANA time zone name. Default `"UTC"`.
    pub timezone: &'static str,
}

impl JobOptions {
    /// The defaults, for struct-update syntax: `JobOptions { queue: "x", ..JobOptions::DEFAULT }`.
    pub const DEFAULT: JobOptions = JobOptions {
        queue: "default",
        max_attempts: 20,
        priority: 0,
        weight: 1,
        partition_by: None,
        timeout: None,
        tags: &[],
        unique: None,
        cron: None,
    };
}

impl Default for JobOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What makes two inserts "the same job", and for how long.
///
/// Two inserts with the same key while a row with that key is in one of `states` give one row:
/// the second insert returns the existing job marked as a conflict. The key is computed from the
/// chosen fields and, with a `period`, the time bucket of the insert (`floor(now / period)`), so
/// "unique for 5 minutes" means "unique within the same 5-minute bucket".
///
/// ```
/// use jobsmith::{UniqueOptions, JobState};
/// use std::time::Duration;
/// let per_hour = UniqueOptions { period: Some(Duration::from_secs(3600)), ..UniqueOptions::DEFAULT };
/// assert!(per_hour.states.contains(&JobState::Completed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UniqueOptions {
    /// Length of the time bucket; `None` (the default) means for as long as a row is in `states`.
    pub period: Option<Duration>,
    /// Include the worker name in the key. Default true.
    pub by_worker: bool,
    /// Include the queue in the key. Default true.
    pub by_queue: bool,
    /// Include the args in the key. Default true.
    pub by_args: bool,
    /// With `by_args`, only these top-level arg fields count; empty (the default) means all.
    pub keys: &'static [&'static str],
    /// The states in which a row blocks a duplicate. Default: every state but `cancelled` and
    /// `discarded`.
    pub states: &'static [JobState],
    /// What a duplicate insert does to a waiting job of the same key: keep it (the default), or
    /// give it the new args and/or due time. See [`OnConflict`].
    pub on_conflict: OnConflict,
}

impl UniqueOptions {
    /// The defaults: same worker, queue and args, forever, while not cancelled or discarded.
    pub const DEFAULT: UniqueOptions = UniqueOptions {
        period: None,
        by_worker: true,
        by_queue: true,
        by_args: true,
        keys: &[],
        states: &[
            JobState::Available,
            JobState::Scheduled,
            JobState::Executing,
            JobState::Retryable,
            JobState::Completed,
        ],
        on_conflict: OnConflict::Keep,
    };
}

impl Default for UniqueOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}
