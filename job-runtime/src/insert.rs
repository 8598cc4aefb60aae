//! Typed insert: one job, many jobs, inside the caller's transaction.
//!
//! There is deliberately no API that takes raw JSON: a [`NewJob`] is only made from a value of a
//! [`Job`] type, so args are checked by the compiler.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub use crate::engine::InsertDatabase;
use crate::error::{Error, Result};
use crate::job::{Job, MAX_ATTEMPTS_LIMIT, OnConflict, UniqueOptions};
pub use crate::types::{InsertedJob, NewJob};
use crate::types::{JobState, Schedule};

/// The default schema (PostgreSQL) that holds jobsmith's tables.
pub const DEFAULT_SCHEMA: &str = "jobsmith";

/// Per-insert options over a job's declared defaults. Start one with a [`JobExt`] method.
///
/// ```no_run
/// # use jobsmith::prelude::*;
/// # #[jobsmith::job]
/// # async fn ping(host: String) -> Result<(), std::io::Error> { Ok(()) }
/// # async fn demo(pool: sqlx::PgPool) -> jobsmith::Result<()> {
/// let stored = Ping { host: "db1".into() }
///     .schedule_in(std::time::Duration::from_secs(60))
///     .priority(3)
///     .tags(["ops"])
///     .insert(&pool)
///     .await?;
/// assert!(!stored.conflict);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct InsertBuilder<J: Job> {
    job: J,
    queue: Option<String>,
    meta: Option<serde_json::Value>,
    tags: Option<Vec<String>>,
    priority: Option<u8>,
    weight: Option<u16>,
    partition: Option<String>,
    partition_meta: Option<String>,
    max_attempts: Option<u32>,
    schedule: Schedule,
    unique: Option<Option<UniqueOptions>>,
    on_conflict: Option<OnConflict>,
    schema: Option<String>,
}

impl<J: Job> From<J> for InsertBuilder<J> {
    fn from(job: J) -> Self {
        InsertBuilder::new(job)
    }
}

impl<J: Job> InsertBuilder<J> {
    fn new(job: J) -> Self {
        Self {
            job,
            queue: None,
            meta: None,
            tags: None,
            priority: None,
            weight: None,
            partition: None,
            partition_meta: None,
            max_attempts: None,
            schedule: Schedule::Now,
            unique: None,
            on_conflict: None,
            schema: None,
        }
    }

    /// Due after `delay`, measured on the database's clock.
    pub fn schedule_in(mut self, delay: Duration) -> Self {
        self.schedule = Schedule::In(delay);
        self
    }

    /// Due at `at`.
    pub fn schedule_at(mut self, at: DateTime<Utc>) -> Self {
        self.schedule = Schedule::At(at);
        self
    }

    /// 0 (first) to 9; out of range is an error at insert.
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = Some(priority);
        self
    }

    /// How many of its queue's slots this job takes when it runs, 1 to [`crate::MAX_WEIGHT`],
    /// instead of the declared weight; out of range is an error at insert.
    ///
    /// ```no_run
    /// # use jobsmith::prelude::*;
    /// # #[jobsmith::job(queue = "reports")]
    /// # async fn clinic_report(clinic_id: i64) -> Result<(), String> { Ok(()) }
    /// # async fn demo(pool: sqlx::PgPool) -> jobsmith::Result<()> {
    /// // The big clinic's report takes 5 of the queue's slots: at a limit of 10, two run at once.
    /// ClinicReport { clinic_id: 1 }.weight(5).insert(&pool).await?;
    /// # Ok(()) }
    /// ```
    pub fn weight(mut self, weight: u16) -> Self {
        self.weight = Some(weight);
        self
    }

    /// The partition this job belongs to (a tenant, an insurer), instead of the value of the
    /// field its type names in `#[job(partition = "...")]`; at most
    /// [`crate::MAX_PARTITION_KEY_BYTES`] bytes, not empty. On a queue with a partition limit
    /// (see [`crate::RuntimeBuilder::partition_limit`]) at most that many jobs of one partition
    /// run at once, and partitions take turns.
    ///
    /// ```no_run
    /// # use jobsmith::prelude::*;
    /// # #[jobsmith::job(queue = "reminders")]
    /// # async fn send_reminder(appointment_id: i64) -> Result<(), String> { Ok(()) }
    /// # async fn demo(pool: sqlx::PgPool) -> jobsmith::Result<()> {
    /// SendReminder { appointment_id: 7 }.partition("clinic-north").insert(&pool).await?;
    /// # Ok(()) }
    /// ```
    pub fn partition(mut self, key: impl Into<String>) -> Self {
        self.partition = Some(key.into());
        self
    }

    /// Takes this job's partition from the field `key` of its metadata (see
    /// [`InsertBuilder::meta`]; a string as it is, a number as written) when the job is built,
    /// instead of from the arg its type names. A job whose metadata lacks the field is refused.
    /// [`InsertBuilder::partition`] wins over it.
    ///
    /// ```
    /// # use jobsmith::prelude::*;
    /// # #[jobsmith::job(queue = "reminders")]
    /// # async fn send_reminder(appointment_id: i64) -> Result<(), String> { Ok(()) }
    /// # #[tokio::main] async fn main() -> jobsmith::Result<()> {
    /// # let db = jobsmith::Db::connect("sqlite::memory:").await?;
    /// # db.migrate().await?;
    /// let job = SendReminder { appointment_id: 7 }
    ///     .build_insert()
    ///     .meta(serde_json::json!({"tenant": "clinic-north"}))
    ///     .partition_from_meta("tenant");
    /// assert_eq!(db.insert(job).await?.job.partition_key.as_deref(), Some("clinic-north"));
    /// let missing = SendReminder { appointment_id: 8 }.build_insert().partition_from_meta("tenant").build();
    /// assert!(missing.unwrap_err().to_string().contains("no `tenant`"));
    /// # Ok(()) }
    /// ```
    pub fn partition_from_meta(mut self, key: impl Into<String>) -> Self {
        self.partition_meta = Some(key.into());
        self
    }

    /// Another queue than the declared one.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Attempts before discard, 1 to [`MAX_ATTEMPTS_LIMIT`] (2,147,483,647); out of range is an
    /// error at insert.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// Tags instead of the declared ones.
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Free-form metadata, a JSON object.
    pub fn meta(mut self, meta: serde_json::Value) -> Self {
        self.meta = Some(meta);
        self
    }

    /// Uniqueness for this insert (`None` turns the declared uniqueness off).
    pub fn unique(mut self, unique: Option<UniqueOptions>) -> Self {
        self.unique = Some(unique);
        self
    }

    /// What a duplicate of a unique job does to the waiting one (see [`OnConflict`]); the job's
    /// declared uniqueness otherwise. Without uniqueness (declared or given) it has nothing to do.
    ///
    /// ```no_run
    /// # use jobsmith::prelude::*;
    /// # use jobsmith::OnConflict;
    /// #[jobsmith::job(unique(keys = ["user_id"]))]
    /// async fn send_digest(user_id: i64, changes: u32) -> Result<(), String> { Ok(()) }
    /// # async fn demo(pool: sqlx::PgPool) -> jobsmith::Result<()> {
    /// // One digest, ten minutes after the last change, carrying the latest count.
    /// SendDigest { user_id: 7, changes: 3 }
    ///     .schedule_in(std::time::Duration::from_secs(600))
    ///     .on_conflict(OnConflict::Replace)
    ///     .insert(&pool)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn on_conflict(mut self, policy: OnConflict) -> Self {
        self.on_conflict = Some(policy);
        self
    }

    /// The schema of the jobsmith instance to insert into (default `jobsmith`).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Encodes and validates the job without touching the database, for [`insert_all`].
    pub fn build(self) -> Result<NewJob> {
        let opts = J::OPTIONS;
        let queue = self.queue.unwrap_or_else(|| opts.queue.to_string());
        check_queue(&queue)?;
        let priority = self.priority.unwrap_or(opts.priority);
        check_priority(priority)?;
        let weight = self.weight.unwrap_or(opts.weight);
        check_weight(weight)?;
        let max_attempts = self.max_attempts.unwrap_or(opts.max_attempts);
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&max_attempts) {
            return Err(Error::InvalidOption(format!(
                "max_attempts must be 1 to {MAX_ATTEMPTS_LIMIT}, got {max_attempts}"
            )));
        }
        let mut meta = self.meta.unwrap_or_else(|| serde_json::json!({}));
        check_meta(&meta)?;
        // The inserting span's trace, so the job's span continues it (feature `otel`).
        crate::trace_context::record(&mut meta);
        let args = serde_json::to_value(&self.job)?;
        let partition_key = match (self.partition, &self.partition_meta) {
            (Some(key), _) => Some(key),
            (None, Some(field)) => Some(partition_of(&meta, field).ok_or_else(|| {
                Error::InvalidOption(format!("the job's meta has no `{field}` to take its partition from"))
            })?),
            (None, None) => opts.partition_by.and_then(|field| partition_of(&args, field)),
        };
        if let Some(key) = &partition_key {
            check_partition_key(key)?;
        }
        let unique = self.unique.unwrap_or(opts.unique);
        let on_conflict = self.on_conflict.or(unique.map(|u| u.on_conflict)).unwrap_or_default();
        let (unique_key, unique_states) = match unique {
            Some(u) => {
                let waiting =
                    [JobState::Available, JobState::Scheduled, JobState::Executing, JobState::Retryable];
                if let Some(missing) = waiting.iter().find(|s| !u.states.contains(s)) {
                    return Err(Error::InvalidOption(format!(
                        "unique states must include available, scheduled, executing and retryable (missing \
                         `{missing}`): a job moves between them by itself, and a duplicate in one of them would \
                         block the original's own retry"
                    )));
                }
                let key = unique_key(J::NAME, &queue, &args, &u, Utc::now())?;
                (Some(key), Some(u.states.iter().fold(0, |acc, s| acc | s.bit())))
            }
            None => (None, None),
        };
        Ok(NewJob {
            worker: std::borrow::Cow::Borrowed(J::NAME),
            queue,
            args,
            meta,
            tags: self.tags.unwrap_or_else(|| opts.tags.iter().map(|t| t.to_string()).collect()),
            priority,
            weight,
            partition_key,
            max_attempts,
            schedule: self.schedule,
            unique_key,
            unique_states,
            on_conflict,
        })
    }

    /// Inserts the job through `db`: a pool, a connection, or the caller's open transaction
    /// (`&mut *tx` or `&mut tx`), so the job commits or rolls back with the caller's own writes.
    ///
    /// The future is declared `Send`, so it can be awaited inside other `Send` futures (a job, an
    /// axum handler) that hold the caller's transaction.
    pub fn insert<'c, A>(self, db: A) -> impl Future<Output = Result<InsertedJob>> + Send + 'c
    where
        A: sqlx::Acquire<'c> + Send + 'c,
        A::Database: InsertDatabase,
    {
        let schema = self.schema.clone().unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
        let job = self.build();
        async move {
            let mut rows = insert_through::<A>(db, &schema, vec![job?]).await?;
            rows.pop().ok_or_else(|| Error::Unexpected("insert returned no row".into()))
        }
    }
}

/// Insert methods on every job type. Bring it into scope with `use jobsmith::prelude::*`.
pub trait JobExt: Job + Sized {
    /// Starts per-insert options.
    fn build_insert(self) -> InsertBuilder<Self> {
        InsertBuilder::new(self)
    }

    /// Inserts with the declared defaults. See [`InsertBuilder::insert`].
    fn insert<'c, A>(self, db: A) -> impl Future<Output = Result<InsertedJob>> + Send + 'c
    where
        A: sqlx::Acquire<'c> + Send + 'c,
        A::Database: InsertDatabase,
    {
        InsertBuilder::new(self).insert(db)
    }

    /// Due after `delay`.
    fn schedule_in(self, delay: Duration) -> InsertBuilder<Self> {
        InsertBuilder::new(self).schedule_in(delay)
    }

    /// Due at `at`.
    fn schedule_at(self, at: DateTime<Utc>) -> InsertBuilder<Self> {
        InsertBuilder::new(self).schedule_at(at)
    }

    /// With this priority.
    fn priority(self, priority: u8) -> InsertBuilder<Self> {
        InsertBuilder::new(self).priority(priority)
    }

    /// Taking this many of its queue's slots (see [`InsertBuilder::weight`]).
    fn weight(self, weight: u16) -> InsertBuilder<Self> {
        InsertBuilder::new(self).weight(weight)
    }

    /// In a partition (see [`InsertBuilder::partition`]).
    fn partition(self, key: impl Into<String>) -> InsertBuilder<Self> {
        InsertBuilder::new(self).partition(key)
    }

    /// On another queue.
    fn on_queue(self, queue: impl Into<String>) -> InsertBuilder<Self> {
        InsertBuilder::new(self).queue(queue)
    }

    /// Encodes with the declared defaults, for [`insert_all`].
    fn build(self) -> Result<NewJob> {
        InsertBuilder::new(self).build()
    }
}

impl<J: Job> JobExt for J {}

/// Inserts many jobs, of any mix of types, in one statement (one round trip), through a pool, a
/// connection or the caller's transaction. Results come back in input order.
///
/// ```no_run
/// # use jobsmith::prelude::*;
/// # #[jobsmith::job] async fn a(n: i64) -> Result<(), String> { Ok(()) }
/// # #[jobsmith::job] async fn b(s: String) -> Result<(), String> { Ok(()) }
/// # async fn demo(pool: sqlx::PgPool) -> jobsmith::Result<()> {
/// let jobs = vec![A { n: 1 }.build()?, B { s: "x".into() }.schedule_in(std::time::Duration::from_secs(5)).build()?];
/// let stored = jobsmith::insert_all(&pool, jobs).await?;
/// assert_eq!(stored.len(), 2);
/// # Ok(()) }
/// ```
pub fn insert_all<'c, A>(
    db: A,
    jobs: Vec<NewJob>,
) -> impl Future<Output = Result<Vec<InsertedJob>>> + Send + 'c
where
    A: sqlx::Acquire<'c> + Send + 'c,
    A::Database: InsertDatabase,
{
    insert_all_in(db, DEFAULT_SCHEMA.to_string(), jobs)
}

/// [`insert_all`] into the instance of another schema.
pub fn insert_all_in<'c, A>(
    db: A,
    schema: impl Into<String>,
    jobs: Vec<NewJob>,
) -> impl Future<Output = Result<Vec<InsertedJob>>> + Send + 'c
where
    A: sqlx::Acquire<'c> + Send + 'c,
    A::Database: InsertDatabase,
{
    let schema = schema.into();
    async move {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        insert_through::<A>(db, &schema, jobs).await
    }
}

/// Inserts through the caller's pool, connection or transaction, across the same instrumented
/// seam as [`crate::engine::RuntimeOps::insert`] (span, metrics, error mapping).
async fn insert_through<'c, A>(db: A, schema: &str, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>>
where
    A: sqlx::Acquire<'c> + Send + 'c,
    A::Database: InsertDatabase,
{
    let engine = <A::Database as InsertDatabase>::ENGINE;
    let rows = <A::Database as InsertDatabase>::insert_jobs(db, schema, jobs);
    crate::engine::instrumented::insert(engine, schema, rows).await
}

/// The unique key: a SHA-256 over the chosen parts, so the index stays small whatever the args.
/// A queue name an insert or an update may set: 1 to 128 bytes.
pub(crate) fn check_queue(queue: &str) -> Result<()> {
    if queue.is_empty() || queue.len() > 128 {
        return Err(Error::InvalidOption(format!("queue name must be 1 to 128 bytes, got {queue:?}")));
    }
    Ok(())
}

/// A weight an insert may set: 1 to [`crate::MAX_WEIGHT`].
pub(crate) fn check_weight(weight: u16) -> Result<()> {
    if !(1..=crate::types::MAX_WEIGHT).contains(&weight) {
        return Err(Error::InvalidOption(format!(
            "weight must be 1 to {} (the slots of its queue one run takes), got {weight}",
            crate::types::MAX_WEIGHT
        )));
    }
    Ok(())
}

/// The partition named by `field` of the encoded args: a string as it is, a number or a bool as
/// written, anything else as its JSON text; none when the field is missing or null.
fn partition_of(args: &serde_json::Value, field: &str) -> Option<String> {
    match args.get(field)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A partition key an insert may set: not empty, at most [`crate::MAX_PARTITION_KEY_BYTES`].
pub(crate) fn check_partition_key(key: &str) -> Result<()> {
    let most = crate::types::MAX_PARTITION_KEY_BYTES;
    if key.is_empty() || key.len() > most {
        return Err(Error::InvalidOption(format!(
            "a partition key must be 1 to {most} bytes, got {} bytes",
            key.len()
        )));
    }
    Ok(())
}

/// A priority an insert or an update may set: 0 to 9.
pub(crate) fn check_priority(priority: u8) -> Result<()> {
    if priority > 9 {
        return Err(Error::InvalidOption(format!("priority must be 0..=9, got {priority}")));
    }
    Ok(())
}

/// Meta an insert or an update may set: a JSON object.
pub(crate) fn check_meta(meta: &serde_json::Value) -> Result<()> {
    if !meta.is_object() {
        return Err(Error::InvalidOption("meta must be a JSON object".into()));
    }
    Ok(())
}

pub(crate) fn unique_key(
    worker: &str,
    queue: &str,
    args: &serde_json::Value,
    unique: &UniqueOptions,
    now: DateTime<Utc>,
) -> Result<Vec<u8>> {
    let mut hasher = Sha256::new();
    // Each part is tagged and length-prefixed so that no two different inputs hash the same bytes.
    let mut part = |tag: &str, bytes: &[u8]| {
        hasher.update(tag.as_bytes());
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    if unique.by_worker {
        part("worker", worker.as_bytes());
    }
    if unique.by_queue {
        part("queue", queue.as_bytes());
    }
    if unique.by_args {
        // serde_json's map is ordered by key, so the encoding is canonical.
        let chosen = if unique.keys.is_empty() {
            args.clone()
        } else {
            let obj = args.as_object().ok_or_else(|| {
                Error::InvalidOption("unique keys need args that encode as a JSON object".into())
            })?;
            let picked: serde_json::Map<_, _> = unique
                .keys
                .iter()
                .map(|k| (k.to_string(), obj.get(*k).cloned().unwrap_or(serde_json::Value::Null)))
                .collect();
            serde_json::Value::Object(picked)
        };
        part("args", serde_json::to_string(&chosen)?.as_bytes());
    }
    if let Some(period) = unique.period {
        let secs = period.as_secs().max(1) as i64;
        let bucket = now.timestamp().div_euclid(secs);
        part("period", format!("{secs}:{bucket}").as_bytes());
    }
    Ok(hasher.finalize().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_key_depends_only_on_chosen_parts() {
        let now = Utc::now();
        let only_id = UniqueOptions { keys: &["id"], ..UniqueOptions::DEFAULT };
        let a = serde_json::json!({"id": 1, "note": "x"});
        let b = serde_json::json!({"id": 1, "note": "y"});
        let c = serde_json::json!({"id": 2, "note": "x"});
        let k = |args: &serde_json::Value, u: &UniqueOptions| unique_key("w", "q", args, u, now).unwrap();
        assert_eq!(k(&a, &only_id), k(&b, &only_id));
        assert_ne!(k(&a, &only_id), k(&c, &only_id));
        assert_ne!(k(&a, &UniqueOptions::DEFAULT), k(&b, &UniqueOptions::DEFAULT));
        let no_queue = UniqueOptions { by_queue: false, ..UniqueOptions::DEFAULT };
        assert_eq!(
            unique_key("w", "q1", &a, &no_queue, now).unwrap(),
            unique_key("w", "q2", &a, &no_queue, now).unwrap()
        );
        assert_ne!(
            unique_key("w", "q1", &a, &UniqueOptions::DEFAULT, now).unwrap(),
            unique_key("w", "q2", &a, &UniqueOptions::DEFAULT, now).unwrap()
        );
        assert!(UniqueOptions::DEFAULT.states.contains(&JobState::Completed));
    }

    #[test]
    fn unique_period_buckets_time() {
        let hour = UniqueOptions { period: Some(Duration::from_secs(3600)), ..UniqueOptions::DEFAULT };
        let args = serde_json::json!({});
        let t0 = DateTime::from_timestamp(7200, 0).unwrap();
        let same = DateTime::from_timestamp(7200 + 3599, 0).unwrap();
        let next = DateTime::from_timestamp(7200 + 3600, 0).unwrap();
        let k = |t| unique_key("w", "q", &args, &hour, t).unwrap();
        assert_eq!(k(t0), k(same));
        assert_ne!(k(t0), k(next));
    }
}
