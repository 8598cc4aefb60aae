//! Inserting jobs on SQLite, in one transaction: jobs without a unique key by one statement per
//! [`ROWS_PER_STATEMENT`] rows; a batch with unique jobs row by row, so each conflict is answered
//! with the existing row.
//!
//! SQLite has no network to save round trips on, but every statement is a hop to sqlx's worker
//! thread for the connection, a fresh step of the VDBE and a row to decode: a statement per row
//! bulk-inserted about 22k jobs/s on the bench machine, a fraction of what the file can take
//! (docs/benchmarks.md).

use std::collections::HashMap;

use sqlx::AssertSqlSafe;
use sqlx::sqlite::{SqliteConnection, SqliteQueryResult};

use super::now_ms;
use super::row::{self, JOB_COLUMNS, job_row};
use crate::error::{Error, Result};
use crate::types::{InsertedJob, JobState, NewJob, Signal};

/// Rows per statement: bounds the one JSON parameter a statement carries (a few hundred bytes a
/// row) without costing more statements on any batch the bench saw matter.
const ROWS_PER_STATEMENT: usize = 1000;

pub(super) async fn insert_jobs(
    conn: &mut SqliteConnection,
    p: &str,
    jobs: Vec<NewJob>,
) -> Result<Vec<InsertedJob>> {
    if jobs.iter().any(|j| j.unique_key.is_some()) {
        return insert_row_by_row(conn, p, jobs).await;
    }
    let now = now_ms();
    // Objects only: `json_each` hands an object or array back as its JSON text, but a string as
    // the bare string, which would not be the stored JSON.
    if NewJob::all_of_one_kind(&jobs) && jobs.iter().all(|j| j.args.is_object()) {
        return insert_one_kind(conn, p, jobs, now).await;
    }
    let mut out = Vec::with_capacity(jobs.len());
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        let chunk: Vec<NewJob> = jobs.by_ref().take(ROWS_PER_STATEMENT).collect();
        out.extend(insert_chunk(conn, p, chunk, now).await?);
    }
    Ok(out)
}

/// One statement for `chunk` (no unique keys): its rows travel as one JSON array read back by
/// `json_each`, since sqlx binds each parameter by a call into SQLite and ten of them per row cost
/// more than the insert. The ids are consecutive: the table's ids are AUTOINCREMENT, the rows are
/// inserted in array order (`json_each` walks the array from the start; an `ORDER BY key` would
/// only add a sort), and SQLite's write lock is held for the statement, so they get
/// `last - n + 1 ..= last` in input order. The conformance suite checks the order.
async fn insert_chunk(
    conn: &mut SqliteConnection,
    p: &str,
    chunk: Vec<NewJob>,
    now: i64,
) -> Result<Vec<InsertedJob>> {
    let due_at: Vec<i64> = chunk.iter().map(|job| due_ms(job, now)).collect();
    let rows: Vec<_> = chunk
        .iter()
        .zip(&due_at)
        .map(|(job, &due)| {
            let state = if due > now { JobState::Scheduled } else { JobState::Available };
            (
                state.as_str(),
                job.worker.as_ref(),
                &job.queue,
                &job.args,
                &job.meta,
                &job.tags,
                job.priority,
                job.max_attempts,
                due,
                job.weight,
                job.partition_key.as_deref(),
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO {p}jobs (state, worker, queue, args, meta, tags, priority, max_attempts, inserted_at, scheduled_at,
                              weight, partition_key)
         SELECT value ->> 0, value ->> 1, value ->> 2, value -> 3, value -> 4, value -> 5, value ->> 6, value ->> 7,
                ?1, value ->> 8, value ->> 9, value ->> 10
         FROM json_each(?2)"
    );
    let done = sqlx::query(AssertSqlSafe(sql))
        .bind(now)
        .bind(serde_json::to_string(&rows)?)
        .execute(&mut *conn)
        .await?;
    let first = first_id(&done, chunk.len())?;
    let inserted_at = row::time(now)?;
    chunk
        .into_iter()
        .zip(due_at)
        .enumerate()
        .map(|(i, (job, due))| Ok(InsertedJob::new_row(job, first + i as i64, row::time(due)?, inserted_at)))
        .collect()
}

/// A batch of one kind (see [`NewJob::all_of_one_kind`]) with object args: only the args travel
/// as a JSON array, the rest are single parameters, so SQLite does what a hand-written
/// `INSERT ... SELECT FROM json_each(?)` does. Ids as in [`insert_chunk`].
async fn insert_one_kind(
    conn: &mut SqliteConnection,
    p: &str,
    jobs: Vec<NewJob>,
    now: i64,
) -> Result<Vec<InsertedJob>> {
    let first = &jobs[0];
    let args: Vec<&serde_json::Value> = jobs.iter().map(|j| &j.args).collect();
    let sql = format!(
        "INSERT INTO {p}jobs (state, worker, queue, args, priority, max_attempts, inserted_at, scheduled_at, weight)
         SELECT 'available', ?1, ?2, value, ?3, ?4, ?5, ?5, ?7 FROM json_each(?6)"
    );
    let done = sqlx::query(AssertSqlSafe(sql))
        .bind(first.worker.as_ref())
        .bind(&first.queue)
        .bind(i64::from(first.priority))
        .bind(i64::from(first.max_attempts))
        .bind(now)
        .bind(serde_json::to_string(&args)?)
        .bind(i64::from(first.weight))
        .execute(&mut *conn)
        .await?;
    let first_id = first_id(&done, jobs.len())?;
    let at = row::time(now)?;
    Ok(jobs
        .into_iter()
        .enumerate()
        .map(|(i, job)| InsertedJob::new_row(job, first_id + i as i64, at, at))
        .collect())
}

/// The id of the first of the `n` rows one insert statement wrote (see [`insert_chunk`] for why
/// they are consecutive); an error if it wrote another number of rows.
fn first_id(done: &SqliteQueryResult, n: usize) -> Result<i64> {
    if done.rows_affected() != n as u64 {
        return Err(Error::Unexpected(format!("an insert of {n} jobs wrote {} rows", done.rows_affected())));
    }
    Ok(done.last_insert_rowid() - n as i64 + 1)
}

/// When `job` is due, in milliseconds: its absolute time, or now plus its delay.
fn due_ms(job: &NewJob, now: i64) -> i64 {
    let (delay, at) = job.schedule_parts();
    at.map(|t| t.timestamp_millis()).unwrap_or(now + delay.unwrap_or(0))
}

/// A statement per row, for a batch with unique jobs: a conflict is answered with the row that
/// holds the key (an earlier one of the same batch, or one already stored).
async fn insert_row_by_row(
    conn: &mut SqliteConnection,
    p: &str,
    jobs: Vec<NewJob>,
) -> Result<Vec<InsertedJob>> {
    let insert = format!(
        "INSERT INTO {p}jobs (state, worker, queue, args, meta, tags, priority, max_attempts,
                              inserted_at, scheduled_at, unique_key, unique_states, weight, partition_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT DO NOTHING
         RETURNING {JOB_COLUMNS}"
    );
    let existing = format!(
        "SELECT {JOB_COLUMNS} FROM {p}jobs
         WHERE unique_key = ?1 AND (unique_states & (CASE state
            WHEN 'available' THEN 1 WHEN 'scheduled' THEN 2 WHEN 'executing' THEN 4 WHEN 'retryable' THEN 8
            WHEN 'completed' THEN 16 WHEN 'discarded' THEN 32 WHEN 'cancelled' THEN 64 END)) <> 0"
    );
    let now = now_ms();
    let mut out = Vec::with_capacity(jobs.len());
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    for job in &jobs {
        if let Some(key) = &job.unique_key
            && let Some(&first) = seen.get(key)
        {
            let prior: &InsertedJob = &out[first];
            out.push(InsertedJob { job: prior.job.clone(), conflict: true, replaced: false });
            continue;
        }
        let due = due_ms(job, now);
        let state = if due > now { JobState::Scheduled } else { JobState::Available };
        let row = sqlx::query(AssertSqlSafe(insert.clone()))
            .bind(state.as_str())
            .bind(job.worker.as_ref())
            .bind(&job.queue)
            .bind(job.args.to_string())
            .bind(job.meta.to_string())
            .bind(serde_json::Value::from(job.tags.clone()).to_string())
            .bind(i64::from(job.priority))
            .bind(i64::from(job.max_attempts))
            .bind(now)
            .bind(due)
            .bind(job.unique_key.as_deref())
            .bind(job.unique_states)
            .bind(i64::from(job.weight))
            .bind(job.partition_key.as_deref())
            .fetch_optional(&mut *conn)
            .await?;
        let result = match row {
            Some(row) => InsertedJob { job: job_row(&row)?, conflict: false, replaced: false },
            None => {
                // Only a unique conflict makes DO NOTHING skip the row; the write lock is held
                // since the INSERT, so the conflicting row is still there.
                let key = job.unique_key.as_deref().ok_or_else(|| {
                    Error::Unexpected("insert of a job without a unique key returned no row".into())
                })?;
                let row =
                    sqlx::query(AssertSqlSafe(existing.clone())).bind(key).fetch_one(&mut *conn).await?;
                let existing = job_row(&row)?;
                match replace_waiting(conn, p, &existing, job, due, now).await? {
                    Some(replaced) => InsertedJob { job: replaced, conflict: true, replaced: true },
                    None => InsertedJob { job: existing, conflict: true, replaced: false },
                }
            }
        };
        if let Some(key) = &job.unique_key {
            seen.insert(key.clone(), out.len());
        }
        out.push(result);
    }
    Ok(out)
}

/// Applies `job`'s conflict policy to `existing`, the row that holds its unique key, if that row
/// waits; the row as replaced, or `None` when nothing changed. The write lock is held since the
/// insert, so no fetch claims the row in between.
async fn replace_waiting(
    conn: &mut SqliteConnection,
    p: &str,
    existing: &crate::types::JobRow,
    job: &NewJob,
    due: i64,
    now: i64,
) -> Result<Option<crate::types::JobRow>> {
    let bits = job.on_conflict.bits();
    let waits = matches!(existing.state, JobState::Available | JobState::Scheduled | JobState::Retryable);
    if bits == 0 || !waits {
        return Ok(None);
    }
    let state = match existing.state {
        _ if bits & 2 == 0 => existing.state,
        _ if due <= now => JobState::Available,
        JobState::Retryable => JobState::Retryable,
        _ => JobState::Scheduled,
    };
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {p}jobs SET args = CASE WHEN ?2 & 1 <> 0 THEN ?3 ELSE args END,
             scheduled_at = CASE WHEN ?2 & 2 <> 0 THEN ?4 ELSE scheduled_at END, state = ?5
         WHERE id = ?1
         RETURNING {JOB_COLUMNS}"
    )))
    .bind(existing.id)
    .bind(bits)
    .bind(job.args.to_string())
    .bind(due)
    .bind(state.as_str())
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(job_row(&row)?))
}

/// The wake-ups an insert causes: each queue that got available work, and the stager for
/// scheduled jobs.
pub(super) fn signals_for(inserted: &[InsertedJob]) -> Vec<Signal> {
    // Compared before anything is cloned: a bulk insert of one queue costs one string, not one
    // per row.
    let mut signals: Vec<Signal> = Vec::new();
    for i in inserted.iter().filter(|i| !i.conflict || i.replaced) {
        let known = signals.iter().any(|s| match (s, i.job.state) {
            (Signal::Available(q), JobState::Available) => *q == i.job.queue,
            (Signal::Scheduled, state) => state != JobState::Available,
            _ => false,
        });
        if !known {
            signals.push(match i.job.state {
                JobState::Available => Signal::Available(i.job.queue.clone()),
                _ => Signal::Scheduled,
            });
        }
    }
    signals
}
