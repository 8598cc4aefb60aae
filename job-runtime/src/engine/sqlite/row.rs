//! Reading SQLite rows (JSON as text, times as milliseconds) into the engine's types.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::engine::{FetchedJob, JobRow};
use crate::error::{Error, Result};

/// The columns `job_row` reads.
pub(super) const JOB_COLUMNS: &str = "id, state, queue, worker, args, meta, tags, errors, attempt, max_attempts, \
     priority, inserted_at, scheduled_at, attempted_at, attempted_by, completed_at, discarded_at, cancelled_at";

pub(super) fn time(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| Error::Unexpected(format!("time out of range: {ms} ms")))
}

fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    ms.map(time).transpose()
}

fn json(row: &SqliteRow, col: &str) -> Result<serde_json::Value> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| Error::Unexpected(format!("column {col} is not JSON: {e}")))
}

fn strings(row: &SqliteRow, col: &str) -> Result<Vec<String>> {
    serde_json::from_value(json(row, col)?).map_err(|e| Error::Unexpected(format!("column {col}: {e}")))
}

pub(super) fn fetched_job(row: &SqliteRow) -> Result<FetchedJob> {
    Ok(FetchedJob {
        id: row.try_get("id")?,
        worker: row.try_get("worker")?,
        queue: row.try_get("queue")?,
        args: json(row, "args")?,
        meta: json(row, "meta")?,
        tags: strings(row, "tags")?,
        attempt: row.try_get::<i64, _>("attempt")? as u32,
        max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
        inserted_at: time(row.try_get("inserted_at")?)?,
        scheduled_at: time(row.try_get("scheduled_at")?)?,
        priority: row.try_get::<i64, _>("priority")? as u8,
    })
}

pub(super) fn job_row(row: &SqliteRow) -> Result<JobRow> {
    let state: String = row.try_get("state")?;
    let errors = match json(row, "errors")? {
        serde_json::Value::Array(a) => a,
        other => return Err(Error::Unexpected(format!("errors is not an array: {other}"))),
    };
    Ok(JobRow {
        id: row.try_get("id")?,
        state: state.parse().map_err(Error::Unexpected)?,
        queue: row.try_get("queue")?,
        worker: row.try_get("worker")?,
        args: json(row, "args")?,
        meta: json(row, "meta")?,
        tags: strings(row, "tags")?,
        errors,
        attempt: row.try_get::<i64, _>("attempt")? as u32,
        max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
        priority: row.try_get::<i64, _>("priority")? as u8,
        inserted_at: time(row.try_get("inserted_at")?)?,
        scheduled_at: time(row.try_get("scheduled_at")?)?,
        attempted_at: opt_time(row.try_get("attempted_at")?)?,
        attempted_by: row.try_get("attempted_by")?,
        completed_at: opt_time(row.try_get("completed_at")?)?,
        discarded_at: opt_time(row.try_get("discarded_at")?)?,
        cancelled_at: opt_time(row.try_get("cancelled_at")?)?,
    })
}
