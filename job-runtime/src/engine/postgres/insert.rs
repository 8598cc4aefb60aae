//! Inserting jobs on PostgreSQL: one statement for any number of rows, through any executor.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use super::row::job_row;
use super::sql::JOB_COLUMNS;
use crate::error::{Error, Result};
use crate::types::{InsertedJob, NewJob};

/// The insert statement for `s`.
///
/// - Arrays + `unnest` carry any number of rows in one statement without the 65,535 bind
///   parameter limit.
/// - Unique jobs use the partial unique index: `ON CONFLICT ... DO UPDATE` (a no-op write) rather
///   than `DO NOTHING`, because only `DO UPDATE` returns the existing row even when it was
///   committed by a concurrent transaction after this statement's snapshot; `xmax <> 0` tells an
///   existing row from a new one. The same update applies a replacing conflict policy
///   ([`crate::OnConflict`]) to a waiting row; PostgreSQL re-reads a row a fetch locked
///   meanwhile, so a job claimed first is seen executing and kept.
/// - One NOTIFY per queue and statement (never per row), sent at commit, so a rolled-back
///   transaction wakes nobody.
fn statement(s: &str) -> String {
    // The conflict policy of the input row whose key conflicted (each key is sent once).
    let policy = "(SELECT i.on_conflict FROM input i WHERE i.unique_key = EXCLUDED.unique_key)";
    let waits = "j.state IN ('available', 'scheduled', 'retryable')";
    format!(
        "WITH input AS (
            SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[], $5::jsonb[],
                                 $6::smallint[], $7::int[], $8::bigint[], $9::timestamptz[],
                                 $10::bytea[], $11::int[], $13::smallint[], $14::smallint[], $15::text[])
                WITH ORDINALITY AS t(worker, queue, args, meta, tags, priority, max_attempts,
                                     delay_ms, at, unique_key, unique_states, on_conflict, weight,
                                     partition_key, ord)
        ), ins AS (
            INSERT INTO {s}.jobs AS j (state, worker, queue, args, meta, tags, priority, max_attempts,
                                  scheduled_at, unique_key, unique_states, weight, partition_key)
            SELECT CASE WHEN due > now() THEN 'scheduled'::{s}.job_state ELSE 'available'::{s}.job_state END,
                   worker, queue, args, meta, ARRAY(SELECT jsonb_array_elements_text(tags)),
                   priority, max_attempts, due, unique_key, unique_states, weight, partition_key
            FROM (SELECT *, COALESCE(at, now() + delay_ms * interval '1 millisecond') AS due FROM input) i
            ORDER BY ord
            ON CONFLICT (unique_key)
                WHERE unique_key IS NOT NULL AND (unique_states & {s}.state_bit(state)) <> 0
                DO UPDATE SET unique_key = EXCLUDED.unique_key,
                    args = CASE WHEN {waits} AND ({policy} & 1) <> 0 THEN EXCLUDED.args ELSE j.args END,
                    scheduled_at = CASE WHEN {waits} AND ({policy} & 2) <> 0
                                        THEN EXCLUDED.scheduled_at ELSE j.scheduled_at END,
                    state = CASE WHEN NOT ({waits} AND ({policy} & 2) <> 0) THEN j.state
                                 WHEN EXCLUDED.state = 'available' THEN 'available'::{s}.job_state
                                 WHEN j.state = 'retryable' THEN 'retryable'::{s}.job_state
                                 ELSE 'scheduled'::{s}.job_state END
            RETURNING {JOB_COLUMNS}, unique_key, NOT (xmax = 0) AS conflict,
                      NOT (xmax = 0) AND state IN ('available', 'scheduled', 'retryable')
                          AND (SELECT i.on_conflict FROM input i WHERE i.unique_key = j.unique_key) <> 0 AS replaced
        ), notified AS (
            SELECT pg_notify($12, CASE WHEN state = 'available' THEN 'a:' || queue ELSE 's:' END)
            FROM (SELECT DISTINCT state, queue FROM ins WHERE NOT conflict OR replaced) k
        )
        SELECT * FROM ins WHERE (SELECT count(*) FROM notified) >= 0"
    )
}

/// The insert statement for batches without unique jobs: no conflict handling, and only what the
/// caller cannot know comes back, as one row of arrays rather than a row per job: the ids and due
/// times in input order, and `now()` (every row's `inserted_at`; a row is `scheduled` when due
/// after it). The rest of each row is filled in from its input. Ids come from the sequence in the
/// order of `ORDER BY ord`, so sorting them restores the input order. Measured (insert-bulk,
/// 5,000-job calls): 82k -> 124k jobs/s for dropping the conflict clause and the full rows; one
/// row of arrays instead of a row per job sends and decodes less, but its gain is within the
/// run-to-run spread (docs/benchmarks.md).
fn plain_statement(s: &str) -> String {
    format!(
        "WITH input AS (
            SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[], $5::jsonb[],
                                 $6::smallint[], $7::int[], $8::bigint[], $9::timestamptz[], $11::smallint[],
                                 $12::text[])
                WITH ORDINALITY AS t(worker, queue, args, meta, tags, priority, max_attempts,
                                     delay_ms, at, weight, partition_key, ord)
        ), ins AS (
            INSERT INTO {s}.jobs (state, worker, queue, args, meta, tags, priority, max_attempts,
                                  scheduled_at, weight, partition_key)
            SELECT CASE WHEN due > now() THEN 'scheduled'::{s}.job_state ELSE 'available'::{s}.job_state END,
                   worker, queue, args, meta,
                   CASE WHEN tags = '[]' THEN '{{}}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(tags)) END,
                   priority, max_attempts, due, weight, partition_key
            FROM (SELECT *, COALESCE(at, now() + delay_ms * interval '1 millisecond') AS due FROM input) i
            ORDER BY ord
            RETURNING id, state, queue, scheduled_at
        ), notified AS (
            SELECT pg_notify($10, CASE WHEN state = 'available' THEN 'a:' || queue ELSE 's:' END)
            FROM (SELECT DISTINCT state, queue FROM ins) k
        )
        SELECT now() AS now, array_agg(id ORDER BY id) AS ids, array_agg(scheduled_at ORDER BY id) AS due
        FROM ins WHERE (SELECT count(*) FROM notified) >= 0"
    )
}

/// The insert statement for a batch of one kind (one worker, queue, priority, weight and attempt count,
/// due now, no meta, tags or unique key: what `insert_all` of one job type usually sends). Only
/// the args travel as an array; the rest are single parameters, so the server does what a
/// hand-written `INSERT ... SELECT FROM unnest($1::jsonb[])` does, plus the ids and one wake-up.
/// `unnest` reads an array out in storage order and the ids are drawn from the sequence in the
/// order rows arrive, so sorted ids are in input order, as in [`plain_statement`], without the
/// ordinality column and its sort.
fn uniform_statement(s: &str) -> String {
    format!(
        "WITH ins AS (
            INSERT INTO {s}.jobs (state, worker, queue, args, priority, max_attempts, weight)
            SELECT 'available', $1, $2, a, $4, $5, $7 FROM unnest($3::jsonb[]) AS t(a)
            RETURNING id
        ), notified AS (
            SELECT pg_notify($6, 'a:' || $2)
        )
        SELECT now() AS now, array_agg(id ORDER BY id) AS ids
        FROM ins WHERE (SELECT count(*) FROM notified) >= 0"
    )
}

/// Inserts a batch of one kind (see [`uniform_statement`]).
async fn insert_uniform<'c, E>(executor: E, schema: &str, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    use sqlx::Row;
    let first = &jobs[0];
    let args: Vec<&serde_json::Value> = jobs.iter().map(|j| &j.args).collect();
    let row = sqlx::query(AssertSqlSafe(uniform_statement(schema)))
        .bind(first.worker.as_ref())
        .bind(&first.queue)
        .bind(&args)
        .bind(i16::from(first.priority))
        .bind(first.max_attempts as i32)
        .bind(format!("{schema}_signal"))
        .bind(first.weight as i16)
        .fetch_one(executor)
        .await?;
    let now: DateTime<Utc> = row.try_get("now")?;
    let ids: Vec<i64> = row.try_get::<Option<Vec<i64>>, _>("ids")?.unwrap_or_default();
    if ids.len() != jobs.len() {
        return Err(Error::Unexpected(format!("insert of {} jobs returned {} ids", jobs.len(), ids.len())));
    }
    Ok(jobs.into_iter().zip(ids).map(|(job, id)| InsertedJob::new_row(job, id, now, now)).collect())
}

/// The columns of one insert, as arrays for `unnest`.
#[derive(Default)]
struct Columns<'a> {
    workers: Vec<&'a str>,
    queues: Vec<&'a str>,
    args: Vec<&'a serde_json::Value>,
    metas: Vec<&'a serde_json::Value>,
    tags: Vec<serde_json::Value>,
    priorities: Vec<i16>,
    max_attempts: Vec<i32>,
    delays: Vec<Option<i64>>,
    ats: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    keys: Vec<Option<&'a [u8]>>,
    states: Vec<Option<i32>>,
    on_conflict: Vec<i16>,
    weights: Vec<i16>,
    partitions: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    fn of(jobs: impl ExactSizeIterator<Item = &'a NewJob>) -> Self {
        let n = jobs.len();
        let mut c = Columns {
            workers: Vec::with_capacity(n),
            queues: Vec::with_capacity(n),
            args: Vec::with_capacity(n),
            metas: Vec::with_capacity(n),
            tags: Vec::with_capacity(n),
            priorities: Vec::with_capacity(n),
            max_attempts: Vec::with_capacity(n),
            delays: Vec::with_capacity(n),
            ats: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            states: Vec::with_capacity(n),
            on_conflict: Vec::with_capacity(n),
            weights: Vec::with_capacity(n),
            partitions: Vec::with_capacity(n),
        };
        for job in jobs {
            let (delay, at) = job.schedule_parts();
            c.workers.push(&job.worker);
            c.queues.push(job.queue.as_str());
            c.args.push(&job.args);
            c.metas.push(&job.meta);
            c.tags.push(serde_json::Value::from(job.tags.clone()));
            c.priorities.push(i16::from(job.priority));
            c.max_attempts.push(job.max_attempts as i32);
            c.delays.push(delay);
            c.ats.push(at);
            c.keys.push(job.unique_key.as_deref());
            c.states.push(job.unique_states);
            c.on_conflict.push(job.on_conflict.bits());
            c.weights.push(job.weight as i16);
            c.partitions.push(job.partition_key.as_deref());
        }
        c
    }

    /// Binds $1 to $9, the columns both insert statements take.
    fn bind_common<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.workers)
            .bind(&self.queues)
            .bind(&self.args)
            .bind(&self.metas)
            .bind(&self.tags)
            .bind(&self.priorities)
            .bind(&self.max_attempts)
            .bind(&self.delays)
            .bind(&self.ats)
    }
}

/// Inserts a batch without unique jobs (see [`plain_statement`]).
async fn insert_plain<'c, E>(executor: E, schema: &str, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    use sqlx::Row;
    let row = {
        let c = Columns::of(jobs.iter());
        c.bind_common(sqlx::query(AssertSqlSafe(plain_statement(schema))))
            .bind(format!("{schema}_signal"))
            .bind(&c.weights)
            .bind(&c.partitions)
            .fetch_one(executor)
            .await?
    };
    let now: chrono::DateTime<chrono::Utc> = row.try_get("now")?;
    let ids: Vec<i64> = row.try_get::<Option<Vec<i64>>, _>("ids")?.unwrap_or_default();
    let due: Vec<chrono::DateTime<chrono::Utc>> =
        row.try_get::<Option<Vec<_>>, _>("due")?.unwrap_or_default();
    if ids.len() != jobs.len() || due.len() != jobs.len() {
        return Err(Error::Unexpected(format!("insert of {} jobs returned {} ids", jobs.len(), ids.len())));
    }
    Ok(jobs
        .into_iter()
        .zip(ids.into_iter().zip(due))
        .map(|(job, (id, scheduled_at))| InsertedJob::new_row(job, id, scheduled_at, now))
        .collect())
}

/// The insert statement for one job without a unique key, the most common call (`db.insert`,
/// `job.insert(&mut *tx)`): plain parameters instead of one-element arrays to unnest, so the
/// server does no more than for a hand-written single-row insert, apart from the wake-up.
fn single_statement(s: &str) -> String {
    format!(
        "WITH ins AS (
            INSERT INTO {s}.jobs (state, worker, queue, args, meta, tags, priority, max_attempts,
                                  scheduled_at, weight, partition_key)
            SELECT CASE WHEN due > now() THEN 'scheduled'::{s}.job_state ELSE 'available'::{s}.job_state END,
                   $1, $2, $3, $4, $5, $6, $7, due, $11, $12
            FROM (SELECT COALESCE($9::timestamptz, now() + $8::bigint * interval '1 millisecond') AS due) d
            RETURNING id, state, queue, scheduled_at, inserted_at
        )
        SELECT id, scheduled_at, inserted_at,
               pg_notify($10, CASE WHEN state = 'available' THEN 'a:' || queue ELSE 's:' END)::text AS notified
        FROM ins"
    )
}

/// Inserts one job without a unique key (see [`single_statement`]).
async fn insert_one<'c, E>(executor: E, schema: &str, job: NewJob) -> Result<InsertedJob>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    use sqlx::Row;
    let (delay, at) = job.schedule_parts();
    let row = sqlx::query(AssertSqlSafe(single_statement(schema)))
        .bind(job.worker.as_ref())
        .bind(&job.queue)
        .bind(&job.args)
        .bind(&job.meta)
        .bind(&job.tags)
        .bind(i16::from(job.priority))
        .bind(job.max_attempts as i32)
        .bind(delay)
        .bind(at)
        .bind(format!("{schema}_signal"))
        .bind(job.weight as i16)
        .bind(job.partition_key.as_deref())
        .fetch_one(executor)
        .await?;
    let id: i64 = row.try_get("id")?;
    let scheduled_at: DateTime<Utc> = row.try_get("scheduled_at")?;
    let now: DateTime<Utc> = row.try_get("inserted_at")?;
    Ok(InsertedJob::new_row(job, id, scheduled_at, now))
}

pub(super) async fn insert_jobs<'c, E>(
    executor: E,
    schema: &str,
    jobs: Vec<NewJob>,
) -> Result<Vec<InsertedJob>>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    if jobs.iter().all(|j| j.unique_key.is_none()) {
        if jobs.len() == 1 {
            let job = jobs.into_iter().next().expect("one job");
            return Ok(vec![insert_one(executor, schema, job).await?]);
        }
        if NewJob::all_of_one_kind(&jobs) {
            return insert_uniform(executor, schema, jobs).await;
        }
        return insert_plain(executor, schema, jobs).await;
    }
    // Two rows with one unique key in a single statement would make the upsert touch a row twice,
    // which PostgreSQL refuses; send each key once and answer its repeats with the first's row.
    let mut first_of_key: HashMap<&[u8], usize> = HashMap::new();
    let mut sent: Vec<usize> = Vec::with_capacity(jobs.len());
    let mut repeat_of: Vec<Option<usize>> = vec![None; jobs.len()];
    for (i, job) in jobs.iter().enumerate() {
        if let Some(key) = job.unique_key.as_deref() {
            if let Some(&first) = first_of_key.get(key) {
                repeat_of[i] = Some(first);
                continue;
            }
            first_of_key.insert(key, i);
        }
        sent.push(i);
    }

    let n = sent.len();
    let rows = {
        let c = Columns::of(sent.iter().map(|&i| &jobs[i]));
        c.bind_common(sqlx::query(AssertSqlSafe(statement(schema))))
            .bind(&c.keys)
            .bind(&c.states)
            .bind(format!("{schema}_signal"))
            .bind(&c.on_conflict)
            .bind(&c.weights)
            .bind(&c.partitions)
            .fetch_all(executor)
            .await?
    };
    if rows.len() != n {
        return Err(Error::Unexpected(format!("insert of {n} jobs returned {} rows", rows.len())));
    }

    // Match returned rows to inputs: unique rows by key, the others in order (INSERT ... SELECT
    // ... ORDER BY returns rows in that order).
    let mut by_key: HashMap<Vec<u8>, InsertedJob> = HashMap::new();
    let mut plain = Vec::new();
    for row in &rows {
        use sqlx::Row;
        let inserted = InsertedJob {
            job: job_row(row)?,
            conflict: row.try_get("conflict")?,
            replaced: row.try_get("replaced")?,
        };
        match row.try_get::<Option<Vec<u8>>, _>("unique_key")? {
            Some(key) => {
                by_key.insert(key, inserted);
            }
            None => plain.push(inserted),
        }
    }
    let mut plain = plain.into_iter();
    let mut out: Vec<InsertedJob> = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let result = match (&job.unique_key, repeat_of[i]) {
            (Some(key), repeat) => {
                let found = by_key.get(key.as_slice()).cloned().ok_or_else(|| {
                    Error::Unexpected("insert returned no row for a unique job".to_string())
                })?;
                // A repeat within the batch is a conflict with its first occurrence.
                InsertedJob {
                    conflict: found.conflict || repeat.is_some(),
                    replaced: found.replaced && repeat.is_none(),
                    ..found
                }
            }
            (None, _) => {
                plain.next().ok_or_else(|| Error::Unexpected("insert returned too few rows".into()))?
            }
        };
        out.push(result);
    }
    Ok(out)
}
