//! Inserting jobs on SQLite: one transaction, one prepared statement per row (no network, so
//! there is no round trip to save), unique conflicts answered with the existing row.

use std::collections::HashMap;

use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqliteConnection;

use super::now_ms;
use super::row::{JOB_COLUMNS, job_row};
use crate::error::{Error, Result};
use crate::types::{InsertedJob, JobState, NewJob, Signal};

pub(super) async fn insert_jobs(
    conn: &mut SqliteConnection,
    p: &str,
    jobs: Vec<NewJob>,
) -> Result<Vec<InsertedJob>> {
    let insert = format!(
        "INSERT INTO {p}jobs (state, worker, queue, args, meta, tags, priority, max_attempts,
                              inserted_at, scheduled_at, unique_key, unique_states)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
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
            out.push(InsertedJob { job: prior.job.clone(), conflict: true });
            continue;
        }
        let (delay, at) = job.schedule_parts();
        let due = at.map(|t| t.timestamp_millis()).unwrap_or(now + delay.unwrap_or(0));
        let state = if due > now { JobState::Scheduled } else { JobState::Available };
        let row = sqlx::query(AssertSqlSafe(insert.clone()))
            .bind(state.as_str())
            .bind(job.worker)
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
            .fetch_optional(&mut *conn)
            .await?;
        let result = match row {
            Some(row) => InsertedJob { job: job_row(&row)?, conflict: false },
            None => {
                // Only a unique conflict makes DO NOTHING skip the row; the write lock is held
                // since the INSERT, so the conflicting row is still there.
                let key = job.unique_key.as_deref().ok_or_else(|| {
                    Error::Unexpected("insert of a job without a unique key returned no row".into())
                })?;
                let row =
                    sqlx::query(AssertSqlSafe(existing.clone())).bind(key).fetch_one(&mut *conn).await?;
                InsertedJob { job: job_row(&row)?, conflict: true }
            }
        };
        if let Some(key) = &job.unique_key {
            seen.insert(key.clone(), out.len());
        }
        out.push(result);
    }
    Ok(out)
}

/// The wake-ups an insert causes: each queue that got available work, and the stager for
/// scheduled jobs.
pub(super) fn signals_for(inserted: &[InsertedJob]) -> Vec<Signal> {
    let mut signals: Vec<Signal> = Vec::new();
    for i in inserted.iter().filter(|i| !i.conflict) {
        let s = match i.job.state {
            JobState::Available => Signal::Available(i.job.queue.clone()),
            _ => Signal::Scheduled,
        };
        if !signals.contains(&s) {
            signals.push(s);
        }
    }
    signals
}
