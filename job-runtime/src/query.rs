//! Acting on many jobs by a typed query: count, list, cancel, retry, delete and update the jobs
//! of one job type that match, through any executor, the caller's open transaction included.
//!
//! `#[job]` generates, beside each job struct, a query type whose methods are the job's args
//! (`SendReminder::query().appointment_id(7)`): a misspelled field or a value of the wrong type
//! is a compile error. It has the filters and operations of [`Query`] too, under the same names
//! (a filter whose name an arg takes is reached through `.into_query()`).
//!
//! ```
//! # use jobsmith::prelude::*;
//! # use jobsmith::{Change, JobState};
//! #[jobsmith::job(queue = "query-doc")]
//! async fn remind(appointment_id: i64) -> Result<(), String> { Ok(()) }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> jobsmith::Result<()> {
//! let db = jobsmith::Db::connect("sqlite::memory:").await?;
//! db.migrate().await?;
//! let pool = db.pool().sqlite().expect("a SQLite database").clone();
//! Remind { appointment_id: 7 }.schedule_in(std::time::Duration::from_secs(3600)).insert(&pool).await?;
//! Remind { appointment_id: 8 }.insert(&pool).await?;
//!
//! // In the caller's transaction: rolled back with it, or committed with the app's own writes.
//! let mut tx = pool.begin().await?;
//! let moved = Remind::query()
//!     .appointment_id(7)
//!     .update(&mut *tx, Change::new().schedule_in(std::time::Duration::from_secs(7200)))
//!     .await?;
//! assert_eq!(moved.changed, 1);
//! tx.commit().await?;
//!
//! assert_eq!(Remind::query().states([JobState::Scheduled]).count(&pool).await?, 1);
//! assert_eq!(Remind::query().appointment_id(7).cancel(&pool).await?, 1);
//! # Ok(()) }
//! ```

use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::engine::QueryDatabase;
use crate::error::{Error, Result};
use crate::insert::{DEFAULT_SCHEMA, check_meta, check_priority, check_queue};
use crate::job::Job;
use crate::types::{JobChange, JobMatch, JobRow, JobState, Page, QueryOp, QueryOutput, Schedule, Updated};

/// The jobs of type `J` that match every filter given (none: all jobs of `J`, under its name and
/// its aliases). Made by the query type `#[job]` generates (`SendReminder::query()`), or by
/// [`Query::new`] for generic code.
pub struct Query<J: Job> {
    matcher: JobMatch,
    schema: Option<String>,
    _job: PhantomData<fn() -> J>,
}

impl<J: Job> Clone for Query<J> {
    fn clone(&self) -> Self {
        Query { matcher: self.matcher.clone(), schema: self.schema.clone(), _job: PhantomData }
    }
}

impl<J: Job> std::fmt::Debug for Query<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query").field("job", &J::NAME).field("matcher", &self.matcher).finish()
    }
}

impl<J: Job> Default for Query<J> {
    fn default() -> Self {
        Self::new()
    }
}

impl<J: Job> Query<J> {
    /// Every job of `J`.
    pub fn new() -> Self {
        let mut workers = vec![J::NAME.to_string()];
        workers.extend(J::ALIASES.iter().map(|a| a.to_string()));
        Query { matcher: JobMatch { workers, ..JobMatch::default() }, schema: None, _job: PhantomData }
    }

    /// Jobs whose arg equals the one `capture` holds. The generated per-field methods call this.
    #[doc(hidden)]
    pub fn arg_captured(mut self, capture: ArgCapture) -> Self {
        match capture.field {
            Some((field, Ok(value))) => self.matcher.args.push((field, value)),
            Some((field, Err(e))) => {
                self.invalid(format!("the value for arg `{field}` could not be encoded: {e}"))
            }
            None => self.invalid("a generated query method captured no value".into()),
        }
        self
    }

    fn invalid(&mut self, why: String) {
        self.matcher.invalid.get_or_insert(why);
    }

    /// This job id (with [`Query::ids`], any of them).
    pub fn id(self, id: i64) -> Self {
        self.ids([id])
    }

    /// Any of these job ids.
    pub fn ids(mut self, ids: impl IntoIterator<Item = i64>) -> Self {
        self.matcher.ids.get_or_insert_with(Vec::new).extend(ids);
        self
    }

    /// In any of these states. Each operation still keeps to the states it may change.
    pub fn states(mut self, states: impl IntoIterator<Item = JobState>) -> Self {
        self.matcher.states.extend(states);
        self
    }

    /// On this queue (given again: on any of them).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.matcher.queues.push(queue.into());
        self
    }

    /// Carrying this tag (given again: carrying all of them).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.matcher.tags.push(tag.into());
        self
    }

    /// Whose meta has `key` equal to `value`.
    pub fn meta(mut self, key: impl Into<String>, value: impl serde::Serialize) -> Self {
        let key = key.into();
        match serde_json::to_value(value) {
            Ok(value) => self.matcher.meta.push((key, value)),
            Err(e) => self.invalid(format!("the value for meta key `{key}` could not be encoded: {e}")),
        }
        self
    }

    /// Whose meta has `key`, whatever its value.
    pub fn meta_key(mut self, key: impl Into<String>) -> Self {
        self.matcher.meta_keys.push(key.into());
        self
    }

    /// Due at or after `at`.
    pub fn scheduled_from(mut self, at: DateTime<Utc>) -> Self {
        self.matcher.scheduled_from = Some(at);
        self
    }

    /// Due before `at`.
    pub fn scheduled_before(mut self, at: DateTime<Utc>) -> Self {
        self.matcher.scheduled_before = Some(at);
        self
    }

    /// The schema of the jobsmith instance (default `jobsmith`).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// What the engines read.
    pub fn matcher(&self) -> &JobMatch {
        &self.matcher
    }

    fn parts(&self) -> (String, JobMatch) {
        (self.schema.clone().unwrap_or_else(|| DEFAULT_SCHEMA.to_string()), self.matcher.clone())
    }

    /// How many jobs match, in any state.
    pub fn count<'c>(&self, db: impl QueryTarget<'c>) -> impl Future<Output = Result<u64>> + Send + 'c {
        let run = self.run(db, QueryOp::Count);
        async move { count_of(run.await?) }
    }

    /// One page of the matching jobs, newest first; the next page starts below the last id
    /// (`Page { before_id: Some(last.row.id), .. }`). Each job's args are decoded as `J`; a row
    /// whose args do not decode is listed with the error, beside the others.
    pub fn list<'c>(
        &self,
        db: impl QueryTarget<'c>,
        page: Page,
    ) -> impl Future<Output = Result<Vec<TypedJob<J>>>> + Send + 'c {
        let run = self.run(db, QueryOp::List(page));
        async move {
            match run.await? {
                QueryOutput::Rows(rows) => Ok(rows.into_iter().map(TypedJob::decode).collect()),
                other => Err(unexpected(&other)),
            }
        }
    }

    /// Cancels the matching jobs that have not finished: waiting ones become `cancelled`, and
    /// running ones too, with their tokens fired on the nodes that run them once the cancel
    /// commits. Returns how many it cancelled.
    pub fn cancel<'c>(&self, db: impl QueryTarget<'c>) -> impl Future<Output = Result<u64>> + Send + 'c {
        let run = self.run(db, QueryOp::Cancel);
        async move { count_of(run.await?) }
    }

    /// Makes the matching `discarded` and `cancelled` jobs available again with one more attempt;
    /// returns how many.
    pub fn retry<'c>(&self, db: impl QueryTarget<'c>) -> impl Future<Output = Result<u64>> + Send + 'c {
        let run = self.run(db, QueryOp::Retry);
        async move { count_of(run.await?) }
    }

    /// Deletes the matching jobs that wait (`available`, `scheduled`, `retryable`), or, when the
    /// query names states, those of its states but `executing` (a running job is cancelled, not
    /// deleted). Returns how many.
    pub fn delete<'c>(&self, db: impl QueryTarget<'c>) -> impl Future<Output = Result<u64>> + Send + 'c {
        let run = self.run(db, QueryOp::Delete);
        async move { count_of(run.await?) }
    }

    /// Applies `change` to the matching jobs that have not started; the report lists the
    /// matching ones that had ([`Updated::started`]).
    pub fn update<'c>(
        &self,
        db: impl QueryTarget<'c>,
        change: Change<J>,
    ) -> impl Future<Output = Result<Updated>> + Send + 'c {
        let run = change.encode().map(|change| self.run(db, QueryOp::Update(change)));
        async move {
            match run?.await? {
                QueryOutput::Updated(updated) => Ok(updated),
                other => Err(unexpected(&other)),
            }
        }
    }

    fn run<'c>(&self, db: impl QueryTarget<'c>, op: QueryOp) -> BoxFuture<'c, Result<QueryOutput>> {
        let (schema, m) = self.parts();
        db.run(schema, m, op)
    }
}

/// A boxed future of a query operation.
pub(crate) type BoxFuture<'c, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// Where a query's operations run: a [`Db`](crate::Db) (`&db`), a
/// [`Transaction`](crate::Transaction) (`&mut tx`), or any sqlx executor of an engine's database
/// (`&pool`, `&mut *conn`, `&mut *tx` of the application's own transaction).
pub trait QueryTarget<'c>: Send + 'c {
    /// Runs `op` on the jobs `m` matches in the instance `schema`.
    #[doc(hidden)]
    fn run(self, schema: String, m: JobMatch, op: QueryOp) -> BoxFuture<'c, Result<QueryOutput>>;
}

impl<'c, A> QueryTarget<'c> for A
where
    A: sqlx::Acquire<'c> + Send + 'c,
    A::Database: QueryDatabase,
{
    fn run(self, schema: String, m: JobMatch, op: QueryOp) -> BoxFuture<'c, Result<QueryOutput>> {
        Box::pin(async move {
            let mut conn = self.acquire().await?;
            <A::Database as QueryDatabase>::run_query(&mut conn, &schema, &m, op).await
        })
    }
}

fn unexpected(out: &QueryOutput) -> Error {
    Error::Unexpected(format!("a query operation returned {out:?}"))
}

fn count_of(out: QueryOutput) -> Result<u64> {
    match out {
        QueryOutput::Count(n) => Ok(n),
        other => Err(unexpected(&other)),
    }
}

/// One arg value of a generated query method, encoded through `SerializeStruct::serialize_field`,
/// the call the job struct's own `Serialize` makes for the field: an arg type that is not
/// `Serialize` then gets one error at its type, not a second one from the query.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct ArgCapture {
    field: Option<(String, std::result::Result<serde_json::Value, String>)>,
}

impl serde::ser::SerializeStruct for ArgCapture {
    type Ok = ();
    type Error = serde_json::Error;

    fn serialize_field<T: ?Sized + serde::Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> std::result::Result<(), Self::Error> {
        self.field = Some((key.to_string(), serde_json::to_value(value).map_err(|e| e.to_string())));
        Ok(())
    }

    fn end(self) -> std::result::Result<(), Self::Error> {
        Ok(())
    }
}

/// A listed job: its row, and its args decoded as `J`.
#[derive(Debug, Clone)]
pub struct TypedJob<J> {
    /// The stored row (its `args` as JSON too).
    pub row: JobRow,
    /// The args, or why they do not decode as `J` (a row written by an older version of the job).
    pub args: std::result::Result<J, String>,
}

impl<J: Job> TypedJob<J> {
    fn decode(row: JobRow) -> Self {
        let args = match &row.unreadable {
            Some(why) => Err(why.clone()),
            None => serde_json::from_value(row.args.clone()).map_err(|e| e.to_string()),
        };
        TypedJob { row, args }
    }
}

/// What an update sets on jobs that have not started; what is not given stays.
///
/// ```
/// # use jobsmith::Change;
/// # #[jobsmith::job] async fn digest(user: i64) -> Result<(), String> { Ok(()) }
/// let later = Change::<Digest>::new().schedule_in(std::time::Duration::from_secs(600)).priority(2);
/// # let _ = later;
/// ```
pub struct Change<J: Job> {
    args: Option<J>,
    schedule: Option<Schedule>,
    priority: Option<u8>,
    queue: Option<String>,
    tags: Option<Vec<String>>,
    meta: Option<serde_json::Value>,
}

impl<J: Job> Default for Change<J> {
    fn default() -> Self {
        Self::new()
    }
}

impl<J: Job> std::fmt::Debug for Change<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Change")
            .field("args", &self.args.as_ref().map(|_| J::NAME))
            .field("schedule", &self.schedule)
            .field("priority", &self.priority)
            .field("queue", &self.queue)
            .field("tags", &self.tags)
            .field("meta", &self.meta)
            .finish()
    }
}

impl<J: Job> Change<J> {
    /// A change of nothing yet.
    pub fn new() -> Self {
        Change { args: None, schedule: None, priority: None, queue: None, tags: None, meta: None }
    }

    /// New args, typed.
    ///
    /// A job inserted unique gets the unique key of its new args, rebuilt from its (new) queue by
    /// `J`'s declared uniqueness with the period bucket of now; a change that would make two jobs
    /// duplicates fails and changes nothing. A job made unique per insert (options the row does
    /// not record) refuses args and queue changes. The same holds for [`Change::queue`].
    pub fn args(mut self, args: J) -> Self {
        self.args = Some(args);
        self
    }

    /// Due after `delay` on the database's clock: `scheduled` (or `available` when zero).
    pub fn schedule_in(mut self, delay: Duration) -> Self {
        self.schedule = Some(Schedule::In(delay));
        self
    }

    /// Due at `at`: `scheduled`, or `available` when `at` has passed.
    pub fn schedule_at(mut self, at: DateTime<Utc>) -> Self {
        self.schedule = Some(Schedule::At(at));
        self
    }

    /// Due now.
    pub fn run_now(mut self) -> Self {
        self.schedule = Some(Schedule::Now);
        self
    }

    /// 0 (first) to 9.
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Another queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// New tags, instead of the old ones.
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// New meta (a JSON object), instead of the old one.
    pub fn meta(mut self, meta: serde_json::Value) -> Self {
        self.meta = Some(meta);
        self
    }

    /// Checks and encodes the change, as an insert checks its options.
    fn encode(self) -> Result<JobChange> {
        self.priority.map(check_priority).transpose()?;
        self.queue.as_deref().map(check_queue).transpose()?;
        self.meta.as_ref().map(check_meta).transpose()?;
        let args = self.args.as_ref().map(serde_json::to_value).transpose()?;
        Ok(JobChange {
            args,
            unique: (J::NAME, J::OPTIONS.unique),
            schedule: self.schedule,
            priority: self.priority,
            queue: self.queue,
            tags: self.tags,
            meta: self.meta,
        })
    }
}

/// The filter and operation methods of [`Query`], forwarded on a generated query type. Used by
/// `#[job]`, one call per method whose name no arg of the job takes.
#[doc(hidden)]
#[macro_export]
macro_rules! __query_method {
    ($ty:ident, $job:ty, id) => {
        impl $ty {
            /// This job id (see `Query::id`).
            pub fn id(self, id: i64) -> Self { $ty(self.0.id(id)) }
        }
    };
    ($ty:ident, $job:ty, ids) => {
        impl $ty {
            /// Any of these job ids (see `Query::ids`).
            pub fn ids(self, ids: impl ::core::iter::IntoIterator<Item = i64>) -> Self { $ty(self.0.ids(ids)) }
        }
    };
    ($ty:ident, $job:ty, states) => {
        impl $ty {
            /// In any of these states (see `Query::states`).
            pub fn states(self, states: impl ::core::iter::IntoIterator<Item = $crate::JobState>) -> Self {
                $ty(self.0.states(states))
            }
        }
    };
    ($ty:ident, $job:ty, queue) => {
        impl $ty {
            /// On this queue (see `Query::queue`).
            pub fn queue(self, queue: impl ::core::convert::Into<::std::string::String>) -> Self { $ty(self.0.queue(queue)) }
        }
    };
    ($ty:ident, $job:ty, tag) => {
        impl $ty {
            /// Carrying this tag (see `Query::tag`).
            pub fn tag(self, tag: impl ::core::convert::Into<::std::string::String>) -> Self { $ty(self.0.tag(tag)) }
        }
    };
    ($ty:ident, $job:ty, meta) => {
        impl $ty {
            /// Whose meta has `key` equal to `value` (see `Query::meta`).
            pub fn meta(
                self,
                key: impl ::core::convert::Into<::std::string::String>,
                value: impl $crate::serde::Serialize,
            ) -> Self {
                $ty(self.0.meta(key, value))
            }
        }
    };
    ($ty:ident, $job:ty, meta_key) => {
        impl $ty {
            /// Whose meta has `key` (see `Query::meta_key`).
            pub fn meta_key(self, key: impl ::core::convert::Into<::std::string::String>) -> Self { $ty(self.0.meta_key(key)) }
        }
    };
    ($ty:ident, $job:ty, scheduled_from) => {
        impl $ty {
            /// Due at or after `at` (see `Query::scheduled_from`).
            pub fn scheduled_from(self, at: $crate::__chrono::DateTime<$crate::__chrono::Utc>) -> Self { $ty(self.0.scheduled_from(at)) }
        }
    };
    ($ty:ident, $job:ty, scheduled_before) => {
        impl $ty {
            /// Due before `at` (see `Query::scheduled_before`).
            pub fn scheduled_before(self, at: $crate::__chrono::DateTime<$crate::__chrono::Utc>) -> Self { $ty(self.0.scheduled_before(at)) }
        }
    };
    ($ty:ident, $job:ty, schema) => {
        impl $ty {
            /// The jobsmith instance's schema (see `Query::schema`).
            pub fn schema(self, schema: impl ::core::convert::Into<::std::string::String>) -> Self { $ty(self.0.schema(schema)) }
        }
    };
    ($ty:ident, $job:ty, count) => {
        impl $ty {
            /// How many jobs match (see `Query::count`).
            pub fn count<'c>(
                &self,
                db: impl $crate::query::QueryTarget<'c>,
            ) -> impl ::core::future::Future<Output = $crate::Result<u64>> + ::core::marker::Send + 'c {
                self.0.count(db)
            }
        }
    };
    ($ty:ident, $job:ty, list) => {
        impl $ty {
            /// One page of the matching jobs, newest first (see `Query::list`).
            pub fn list<'c>(
                &self,
                db: impl $crate::query::QueryTarget<'c>,
                page: $crate::Page,
            ) -> impl ::core::future::Future<Output = $crate::Result<::std::vec::Vec<$crate::TypedJob<$job>>>> + ::core::marker::Send + 'c {
                self.0.list(db, page)
            }
        }
    };
    ($ty:ident, $job:ty, cancel) => {
        impl $ty {
            /// Cancels the matching unfinished jobs (see `Query::cancel`).
            pub fn cancel<'c>(
                &self,
                db: impl $crate::query::QueryTarget<'c>,
            ) -> impl ::core::future::Future<Output = $crate::Result<u64>> + ::core::marker::Send + 'c {
                self.0.cancel(db)
            }
        }
    };
    ($ty:ident, $job:ty, retry) => {
        impl $ty {
            /// Retries the matching discarded and cancelled jobs (see `Query::retry`).
            pub fn retry<'c>(
                &self,
                db: impl $crate::query::QueryTarget<'c>,
            ) -> impl ::core::future::Future<Output = $crate::Result<u64>> + ::core::marker::Send + 'c {
                self.0.retry(db)
            }
        }
    };
    ($ty:ident, $job:ty, delete) => {
        impl $ty {
            /// Deletes the matching jobs that wait (see `Query::delete`).
            pub fn delete<'c>(
                &self,
                db: impl $crate::query::QueryTarget<'c>,
            ) -> impl ::core::future::Future<Output = $crate::Result<u64>> + ::core::marker::Send + 'c {
                self.0.delete(db)
            }
        }
    };
    ($ty:ident, $job:ty, update) => {
        impl $ty {
            /// Changes the matching jobs that have not started (see `Query::update`).
            pub fn update<'c>(
                &self,
                db: impl $crate::query::QueryTarget<'c>,
                change: $crate::Change<$job>,
            ) -> impl ::core::future::Future<Output = $crate::Result<$crate::Updated>> + ::core::marker::Send + 'c {
                self.0.update(db, change)
            }
        }
    };
}
