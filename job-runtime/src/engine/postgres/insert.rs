//! Inserting jobs on PostgreSQL: one statement for any number of rows, through any executor.

use std::collections::HashMap;

use sqlx::AssertSqlSafe;

use super::row::job_row;
use super::sql::JOB_COLUMNS;
use crate::error::{Error, Result};
use crate::insert::{InsertedJob, NewJob};

/// The insert statement for `s`.
///
/// - Arrays + `unnest` carry any number of rows in one statement without the 65,535 bind
///   parameter limit.
/// - Unique jobs use the partial unique index: `ON CONFLICT ... DO UPDATE` (a no-op write) rather
///   than `DO NOTHING`, because only `DO UPDATE` returns the existing row even when it was
///   committed by a concurrent transaction after this statement's snapshot; `xmax <> 0` tells an
///   existing row from a new one.
/// - One NOTIFY per queue and statement (never per row), sent at commit, so a rolled-back
///   transaction wakes nobody.
fn statement(s: &str) -> String {
    format!(
        "WITH input AS (
            SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[], $5::jsonb[],
                                 $6::smallint[], $7::int[], $8::bigint[], $9::timestamptz[],
                                 $10::bytea[], $11::int[])
                WITH ORDINALITY AS t(worker, queue, args, meta, tags, priority, max_attempts,
                                     delay_ms, at, unique_key, unique_states, ord)
        ), ins AS (
            INSERT INTO {s}.jobs (state, worker, queue, args, meta, tags, priority, max_attempts,
                                  scheduled_at, unique_key, unique_states)
            SELECT CASE WHEN due > now() THEN 'scheduled'::{s}.job_state ELSE 'available'::{s}.job_state END,
                   worker, queue, args, meta, ARRAY(SELECT jsonb_array_elements_text(tags)),
                   priority, max_attempts, due, unique_key, unique_states
            FROM (SELECT *, COALESCE(at, now() + delay_ms * interval '1 millisecond') AS due FROM input) i
            ORDER BY ord
            ON CONFLICT (unique_key)
                WHERE unique_key IS NOT NULL AND (unique_states & {s}.state_bit(state)) <> 0
                DO UPDATE SET unique_key = EXCLUDED.unique_key
            RETURNING {JOB_COLUMNS}, unique_key, NOT (xmax = 0) AS conflict
        ), notified AS (
            SELECT pg_notify($12, CASE WHEN state = 'available' THEN 'a:' || queue ELSE 's:' END)
            FROM (SELECT DISTINCT state, queue FROM ins WHERE NOT conflict) k
        )
        SELECT * FROM ins WHERE (SELECT count(*) FROM notified) >= 0"
    )
}

pub(super) async fn insert_jobs<'c, E>(
    executor: E,
    schema: &str,
    jobs: Vec<NewJob>,
) -> Result<Vec<InsertedJob>>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
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
    let mut workers = Vec::with_capacity(n);
    let mut queues = Vec::with_capacity(n);
    let mut args = Vec::with_capacity(n);
    let mut metas = Vec::with_capacity(n);
    let mut tags = Vec::with_capacity(n);
    let mut priorities = Vec::with_capacity(n);
    let mut max_attempts = Vec::with_capacity(n);
    let mut delays = Vec::with_capacity(n);
    let mut ats = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut states = Vec::with_capacity(n);
    for &i in &sent {
        let job = &jobs[i];
        let (delay, at) = job.schedule_parts();
        workers.push(job.worker);
        queues.push(job.queue.as_str());
        args.push(&job.args);
        metas.push(&job.meta);
        tags.push(serde_json::Value::from(job.tags.clone()));
        priorities.push(i16::from(job.priority));
        max_attempts.push(job.max_attempts as i32);
        delays.push(delay);
        ats.push(at);
        keys.push(job.unique_key.as_deref());
        states.push(job.unique_states);
    }

    let rows = sqlx::query(AssertSqlSafe(statement(schema)))
        .bind(&workers)
        .bind(&queues)
        .bind(&args)
        .bind(&metas)
        .bind(&tags)
        .bind(&priorities)
        .bind(&max_attempts)
        .bind(&delays)
        .bind(&ats)
        .bind(&keys)
        .bind(&states)
        .bind(format!("{schema}_signal"))
        .fetch_all(executor)
        .await?;
    if rows.len() != n {
        return Err(Error::Unexpected(format!("insert of {n} jobs returned {} rows", rows.len())));
    }

    // Match returned rows to inputs: unique rows by key, the others in order (INSERT ... SELECT
    // ... ORDER BY returns rows in that order).
    let mut by_key: HashMap<Vec<u8>, InsertedJob> = HashMap::new();
    let mut plain = Vec::new();
    for row in &rows {
        use sqlx::Row;
        let inserted = InsertedJob { job: job_row(row)?, conflict: row.try_get("conflict")? };
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
                InsertedJob { conflict: found.conflict || repeat.is_some(), ..found }
            }
            (None, _) => {
                plain.next().ok_or_else(|| Error::Unexpected("insert returned too few rows".into()))?
            }
        };
        out.push(result);
    }
    Ok(out)
}
