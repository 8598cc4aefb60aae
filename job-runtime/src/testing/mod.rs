//! Helpers for your own tests: a manual mode that only records inserts, assertions on what was
//! enqueued, running one job through the real path, draining a queue, and an inline mode.
//!
//! ```
//! use jobsmith::prelude::*;
//! use jobsmith::testing::{self, Drain, Expected};
//!
//! #[jobsmith::job(queue = "mailers")]
//! async fn welcome(user_id: i64) -> Result<(), String> { Ok(()) }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> jobsmith::Result<()> {
//! let db = testing::manual().await?;              // SQLite in memory; nothing runs by itself
//! db.insert(Welcome { user_id: 7 }).await?;        // what your code under test does
//! testing::assert_enqueued(&db, Expected::<Welcome>::any().args(serde_json::json!({"user_id": 7}))).await;
//! let report = testing::drain_queue(&db, "mailers", Drain::default()).await?;
//! assert_eq!(report.completed, 1);
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::marker::PhantomData;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::app_state::States;
use crate::db::Db;
use crate::engine::{Ack, AckKind, FetchedJob, JobFilter, JobRow, Page};
use crate::error::Result;
use crate::job::Job;

mod inline;
use crate::registry::{Registry, WorkerEntry, decode_args};
use crate::runtime::control::JobControl;
use crate::runtime::executor;
use crate::state::JobState;

/// The node name the helpers run jobs as.
const NODE: &str = "jobsmith-testing";

/// A fresh in-memory SQLite database, migrated, in which nothing runs until you drain it: inserts
/// are recorded for [`assert_enqueued`] and friends. The same helpers work on any [`Db`] (a
/// PostgreSQL test database too).
#[cfg(feature = "sqlite")]
pub async fn manual() -> Result<Db> {
    let db = Db::connect("sqlite::memory:").await?;
    db.migrate().await?;
    Ok(db)
}

/// Like [`manual`], but in inline mode (see [`inline_on`]).
#[cfg(feature = "sqlite")]
pub async fn inline() -> Result<Db> {
    Ok(inline_on(&manual().await?))
}

/// `db` in inline mode: every job inserted through [`Db::insert`] / [`Db::insert_all`] runs
/// before the insert returns, scheduled or not, including jobs those jobs insert through the
/// same `Db`; every job inserted in a [`crate::Transaction`] of it ([`Db::begin`]) runs when the
/// transaction commits, and never if it rolls back. For tests that care about effects, not
/// queues. Jobs inserted through a transaction of your own (`job.insert(&mut *tx)`) are stored
/// but not run: only a [`crate::Transaction`] tells the engine it committed.
pub fn inline_on(db: &Db) -> Db {
    inline_with(db, States::new())
}

/// [`inline_on`] for jobs that take state: every job run inline gets its `State<T>` parameters
/// from `states`.
pub fn inline_with(db: &Db, states: States) -> Db {
    db.with_engine(inline::InlineEngine::wrap(db, states))
}

/// How a job run by the helpers ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Performed {
    /// It completed, recording no result.
    Completed,
    /// It completed and recorded this result (its job's `Output`, as JSON).
    CompletedWith(serde_json::Value),
    /// It failed and would be retried after `delay`.
    Retry {
        /// The error.
        error: String,
        /// The backoff.
        delay: Duration,
    },
    /// It was discarded (failed on its last attempt, undecodable, or `Outcome::Discard`).
    Discarded {
        /// Why.
        error: String,
    },
    /// It cancelled itself.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// It snoozed.
    Snoozed {
        /// For how long.
        delay: Duration,
    },
}

impl From<AckKind> for Performed {
    fn from(kind: AckKind) -> Self {
        match kind {
            AckKind::Complete | AckKind::Committed => Performed::Completed,
            AckKind::Record { output } => Performed::CompletedWith(output),
            AckKind::Retry { delay, error } => Performed::Retry { error, delay },
            AckKind::Discard { error } => Performed::Discarded { error },
            AckKind::Cancel { reason } => Performed::Cancelled { reason },
            AckKind::Snooze { delay } => Performed::Snoozed { delay },
            AckKind::HandBack { reason } => Performed::Cancelled { reason },
            // Only the runtime's prefetch buffer releases jobs; a performed job always started.
            AckKind::Release => Performed::Cancelled { reason: "released unstarted".into() },
        }
    }
}

/// Runs `job` once, in this task, through the real path: its args are encoded to JSON and decoded
/// again (so a job that only works without that round trip fails here), then it runs with its
/// declared timeout, panics caught, and its result normalised as the runtime would. Attempt 1.
///
/// ```
/// use jobsmith::testing::{perform_job, Performed};
/// #[jobsmith::job(max_attempts = 3)]
/// async fn charge(cents: i64) -> Result<(), String> {
///     if cents < 0 { Err("negative amount".into()) } else { Ok(()) }
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(perform_job(Charge { cents: 5 }).await, Performed::Completed);
/// assert!(matches!(perform_job(Charge { cents: -1 }).await, Performed::Retry { .. }));
/// # }
/// ```
pub async fn perform_job<J: Job>(job: J) -> Performed {
    perform_job_at(job, 1).await
}

/// [`perform_job`] for a job that takes state: `states` gives each `State<T>` parameter its
/// value, as [`crate::RuntimeBuilder::state`] does for a runtime. A job whose state is not in
/// `states` ends as the runtime would run it without (a retry saying which type is missing).
pub async fn perform_job_with<J: Job>(job: J, states: &States) -> Performed {
    perform_job_at_with(job, 1, states).await
}

/// [`perform_job`] as attempt `attempt` (so the last attempt's failure shows as `Discarded`).
pub async fn perform_job_at<J: Job>(job: J, attempt: u32) -> Performed {
    perform_job_at_with(job, attempt, &States::new()).await
}

/// [`perform_job_with`] as attempt `attempt`.
pub async fn perform_job_at_with<J: Job>(job: J, attempt: u32, states: &States) -> Performed {
    let registry = Registry::from_entries([WorkerEntry::of::<J>()]).expect("one entry");
    let args = match serde_json::to_value(&job) {
        Ok(args) => args,
        Err(e) => return Performed::Discarded { error: format!("args do not encode: {e}") },
    };
    let now = Utc::now();
    let fetched = FetchedJob {
        id: 0,
        worker: J::NAME.to_string(),
        queue: J::OPTIONS.queue.to_string(),
        args,
        meta: serde_json::json!({}),
        tags: J::OPTIONS.tags.iter().map(|t| t.to_string()).collect(),
        attempt,
        max_attempts: J::OPTIONS.max_attempts.max(attempt),
        inserted_at: now,
        scheduled_at: now,
        unreadable: None,
        claim: 0,
        priority: J::OPTIONS.priority,
        weight: J::OPTIONS.weight,
    };
    executor::run(&registry, NODE, states, Default::default(), None, &fetched, &JobControl::default())
        .await
        .into()
}

/// Options of [`drain_queue`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drain {
    /// Also run scheduled and retryable jobs, now. Default false.
    pub with_scheduled: bool,
    /// Keep draining until the queue is empty, running jobs that drained jobs inserted (and, with
    /// `with_scheduled`, retries). Default false: one pass over what was waiting.
    pub recursive: bool,
}

/// What a drain ran, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Completed.
    pub completed: usize,
    /// Failed and left for a retry.
    pub retried: usize,
    /// Discarded.
    pub discarded: usize,
    /// Cancelled.
    pub cancelled: usize,
    /// Snoozed.
    pub snoozed: usize,
}

impl DrainReport {
    /// Jobs run.
    pub fn total(&self) -> usize {
        self.completed + self.retried + self.discarded + self.cancelled + self.snoozed
    }

    fn count(&mut self, kind: &AckKind) {
        match kind {
            AckKind::Complete | AckKind::Record { .. } | AckKind::Committed => self.completed += 1,
            AckKind::Retry { .. } => self.retried += 1,
            AckKind::Discard { .. } => self.discarded += 1,
            AckKind::Cancel { .. } | AckKind::HandBack { .. } | AckKind::Release => self.cancelled += 1,
            AckKind::Snooze { .. } => self.snoozed += 1,
        }
    }
}

/// Passes before a recursive drain gives up (a job that snoozes forever would never end).
const MAX_PASSES: usize = 1_000;

/// Runs the jobs waiting on `queue`, one at a time in run order, in this task, through the real
/// decode, perform and record path, and reports what happened.
pub async fn drain_queue(db: &Db, queue: &str, options: Drain) -> Result<DrainReport> {
    drain_queue_with(db, queue, options, &States::new()).await
}

/// [`drain_queue`] for jobs that take state: `states` gives each `State<T>` parameter its value.
pub async fn drain_queue_with(db: &Db, queue: &str, options: Drain, states: &States) -> Result<DrainReport> {
    let registry = Registry::from_inventory()?;
    let engine = db.engine();
    let test_support = &db.test_support;
    let mut report = DrainReport::default();
    for _ in 0..MAX_PASSES {
        if options.with_scheduled {
            test_support.make_due(queue).await.map_err(|e| e.or_not_migrated(engine.schema()))?;
        }
        let mut waiting = rows(
            db,
            JobFilter { states: vec![JobState::Available], queue: Some(queue.into()), ..Default::default() },
        )
        .await?;
        if waiting.is_empty() {
            return Ok(report);
        }
        waiting.sort_by_key(|j| (j.priority, j.scheduled_at, j.id));
        let ids: Vec<i64> = waiting.iter().map(|j| j.id).collect();
        let claimed = test_support.claim(&ids, NODE).await.map_err(|e| e.or_not_migrated(engine.schema()))?;
        for job in claimed {
            let kind = executor::run(
                &registry,
                NODE,
                states,
                Default::default(),
                Some(engine),
                &job,
                &JobControl::default(),
            )
            .await;
            report.count(&kind);
            // A job whose own transaction completed it left nothing to write.
            if kind != AckKind::Committed {
                engine
                    .ack(NODE, &[Ack { id: job.id, attempt: job.attempt, claim: Some(job.claim), kind }])
                    .await?;
            }
        }
        if !options.recursive {
            return Ok(report);
        }
    }
    Err(crate::error::Error::InvalidOption(format!(
        "drain_queue(`{queue}`) still had jobs after {MAX_PASSES} passes (a job that snoozes forever?)"
    )))
}

/// Every row matching `filter`, all pages.
async fn rows(db: &Db, filter: JobFilter) -> Result<Vec<JobRow>> {
    let mut out: Vec<JobRow> = Vec::new();
    loop {
        let page = Page { limit: 500, before_id: out.last().map(|j| j.id) };
        let batch = db.engine().list_jobs(&filter, page).await?;
        let done = batch.len() < 500;
        out.extend(batch);
        if done {
            return Ok(out);
        }
    }
}

/// The states in which a job counts as enqueued: waiting to run.
const ENQUEUED: [JobState; 3] = [JobState::Available, JobState::Scheduled, JobState::Retryable];

/// A test on the decoded, typed args.
type Predicate<J> = Box<dyn Fn(&J) -> bool + Send + Sync>;

/// A description of an enqueued job to look for. Every part is optional and narrows the match.
pub struct Expected<J> {
    args: Option<serde_json::Value>,
    predicate: Option<Predicate<J>>,
    queue: Option<String>,
    scheduled_at: Option<(DateTime<Utc>, Duration)>,
    tags: Option<Vec<String>>,
    meta: Option<serde_json::Value>,
    _job: PhantomData<fn() -> J>,
}

impl<J: Job> Expected<J> {
    /// Any job of type `J`.
    pub fn any() -> Self {
        Expected {
            args: None,
            predicate: None,
            queue: None,
            scheduled_at: None,
            tags: None,
            meta: None,
            _job: PhantomData,
        }
    }

    /// A job whose args equal `job`'s exactly.
    pub fn job(job: &J) -> Self {
        Self::any().args(serde_json::to_value(job).expect("job args encode"))
    }

    /// Args containing these fields with these values (a JSON object; other fields are free).
    pub fn args(mut self, subset: serde_json::Value) -> Self {
        self.args = Some(subset);
        self
    }

    /// Args for which `predicate` holds, on the decoded, typed job.
    pub fn matching(mut self, predicate: impl Fn(&J) -> bool + Send + Sync + 'static) -> Self {
        self.predicate = Some(Box::new(predicate));
        self
    }

    /// On this queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Due at `at`, give or take `tolerance`.
    pub fn scheduled_at(mut self, at: DateTime<Utc>, tolerance: Duration) -> Self {
        self.scheduled_at = Some((at, tolerance));
        self
    }

    /// With exactly these tags (any order).
    pub fn tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Meta containing these fields with these values.
    pub fn meta(mut self, subset: serde_json::Value) -> Self {
        self.meta = Some(subset);
        self
    }

    fn matches(&self, row: &JobRow) -> bool {
        if row.worker != J::NAME {
            return false;
        }
        if let Some(q) = &self.queue
            && &row.queue != q
        {
            return false;
        }
        if let Some(subset) = &self.args
            && !contains(&row.args, subset)
        {
            return false;
        }
        if let Some(subset) = &self.meta
            && !contains(&row.meta, subset)
        {
            return false;
        }
        if let Some(tags) = &self.tags {
            let want: BTreeSet<&String> = tags.iter().collect();
            let got: BTreeSet<&String> = row.tags.iter().collect();
            if want != got {
                return false;
            }
        }
        if let Some((at, tolerance)) = self.scheduled_at {
            let off = (row.scheduled_at - at).num_milliseconds().unsigned_abs();
            if off > tolerance.as_millis() as u64 {
                return false;
            }
        }
        if let Some(predicate) = &self.predicate {
            match decode_args::<J>(row.args.clone()) {
                Ok(job) if predicate(&job) => {}
                _ => return false,
            }
        }
        true
    }

    fn describe(&self) -> String {
        let mut d = format!("a `{}` job", J::NAME);
        if let Some(q) = &self.queue {
            let _ = write!(d, " on queue `{q}`");
        }
        if let Some(a) = &self.args {
            let _ = write!(d, " with args containing {a}");
        }
        if self.predicate.is_some() {
            d.push_str(" matching the predicate");
        }
        if let Some((at, tol)) = self.scheduled_at {
            let _ = write!(d, " due at {at} (± {tol:?})");
        }
        if let Some(t) = &self.tags {
            let _ = write!(d, " tagged {t:?}");
        }
        if let Some(m) = &self.meta {
            let _ = write!(d, " with meta containing {m}");
        }
        d
    }
}

/// Whether `value` contains every field of `subset` with the same value (recursively for
/// objects; other values compare equal).
fn contains(value: &serde_json::Value, subset: &serde_json::Value) -> bool {
    match (value, subset) {
        (serde_json::Value::Object(v), serde_json::Value::Object(s)) => {
            s.iter().all(|(k, sv)| v.get(k).is_some_and(|vv| contains(vv, sv)))
        }
        _ => value == subset,
    }
}

async fn enqueued_rows(db: &Db) -> Vec<JobRow> {
    let filter = JobFilter { states: ENQUEUED.to_vec(), ..Default::default() };
    let mut all = rows(db, filter).await.expect("listing enqueued jobs");
    all.reverse(); // oldest first reads better
    all
}

fn listing(rows: &[JobRow]) -> String {
    if rows.is_empty() {
        return "  (nothing is enqueued)".into();
    }
    rows.iter()
        .map(|r| {
            format!(
                "  #{} {} on `{}` ({}, due {}) args {} tags {:?} meta {}",
                r.id, r.worker, r.queue, r.state, r.scheduled_at, r.args, r.tags, r.meta
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every enqueued (available, scheduled or retryable) job of type `J`, decoded, with its row,
/// oldest first.
pub async fn all_enqueued<J: Job>(db: &Db) -> Vec<(J, JobRow)> {
    enqueued_rows(db)
        .await
        .into_iter()
        .filter(|r| r.worker == J::NAME)
        .filter_map(|r| decode_args::<J>(r.args.clone()).ok().map(|j| (j, r)))
        .collect()
}

/// Panics unless a job matching `expected` is enqueued; the message lists what is.
pub async fn assert_enqueued<J: Job>(db: &Db, expected: Expected<J>) {
    let rows = enqueued_rows(db).await;
    if !rows.iter().any(|r| expected.matches(r)) {
        panic!(
            "expected {} to be enqueued, but it is not. Enqueued:\n{}",
            expected.describe(),
            listing(&rows)
        );
    }
}

/// Panics if a job matching `expected` is enqueued; the message lists what is.
pub async fn refute_enqueued<J: Job>(db: &Db, expected: Expected<J>) {
    let rows = enqueued_rows(db).await;
    if rows.iter().any(|r| expected.matches(r)) {
        panic!(
            "expected no {} to be enqueued, but one is. Enqueued:\n{}",
            expected.describe(),
            listing(&rows)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::contains;
    use serde_json::json;

    #[test]
    fn subset_matching() {
        let v = json!({"a": 1, "b": {"c": 2, "d": 3}});
        assert!(contains(&v, &json!({})));
        assert!(contains(&v, &json!({"b": {"c": 2}})));
        assert!(!contains(&v, &json!({"b": {"c": 3}})));
        assert!(!contains(&v, &json!({"z": null})));
    }
}
