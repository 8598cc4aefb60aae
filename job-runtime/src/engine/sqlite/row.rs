//! Reading SQLite rows (JSON as text, times as milliseconds) into the engine's types.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{ColumnIndex, Row};

use crate::engine::unreadable::Problems;
use crate::error::{Error, Result};
use crate::types::{FetchedJob, JobRow};

/// The columns `job_row` reads.
pub(super) const JOB_COLUMNS: &str = "id, state, queue, worker, args, meta, tags, errors, attempt, max_attempts, \
     priority, inserted_at, scheduled_at, attempted_at, attempted_by, completed_at, discarded_at, cancelled_at, weight, partition_key";

pub(super) fn time(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| Error::Unexpected(format!("time out of range: {ms} ms")))
}

fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    ms.map(time).transpose()
}

/// The JSON text in column `at` (a name, or a position with `col` its name for errors). A NULL
/// reads as `if_null` where one is given (a fetch returns NULL for the default `meta` and `tags`)
/// and is an error elsewhere (the JSON columns are NOT NULL).
fn json<I: ColumnIndex<SqliteRow>>(
    row: &SqliteRow,
    at: I,
    col: &str,
    if_null: Option<serde_json::Value>,
) -> Result<serde_json::Value> {
    match (row.try_get::<Option<String>, _>(at)?, if_null) {
        (Some(text), _) => serde_json::from_str(&text)
            .map_err(|e| Error::Unexpected(format!("column {col} is not JSON: {e}"))),
        (None, Some(value)) => Ok(value),
        (None, None) => Err(Error::Unexpected(format!("column {col} is NULL"))),
    }
}

/// The tags in column `at` (`[]` where a fetch returned NULL for the default).
fn tags<I: ColumnIndex<SqliteRow>>(row: &SqliteRow, at: I) -> Result<Vec<String>> {
    serde_json::from_value(json(row, at, "tags", Some(serde_json::json!([])))?)
        .map_err(|e| Error::Unexpected(format!("column tags: {e}")))
}

/// A claimed row of `queue`, claimed at `claim` (its `attempted_at`), from the columns of
/// `FETCHED_COLUMNS` in their order: `meta` and `tags` are NULL when they hold the defaults.
pub(super) fn fetched_job(row: &SqliteRow, queue: &str, claim: i64) -> Result<FetchedJob> {
    // Id and attempt are what a result needs; every other column may fail alone (see
    // `engine::unreadable`).
    let id = row.try_get(0)?;
    let attempt = row.try_get::<i64, _>(5)? as u32;
    let mut p = Problems::default();
    let job = FetchedJob {
        id,
        worker: p.or("worker", row.try_get(1), String::new()),
        queue: queue.to_string(),
        args: p.or("args", json(row, 2, "args", None), serde_json::Value::Null),
        meta: p.or("meta", json(row, 3, "meta", Some(serde_json::json!({}))), serde_json::Value::Null),
        tags: p.or("tags", tags(row, 4), Vec::new()),
        attempt,
        max_attempts: p.or("max_attempts", row.try_get::<i64, _>(6), 0) as u32,
        inserted_at: p.or("inserted_at", time_col(row, 7), epoch()),
        scheduled_at: p.or("scheduled_at", time_col(row, 8), epoch()),
        priority: p.or("priority", row.try_get::<i64, _>(9), 0) as u8,
        // NULL for the usual weight of 1 (see `FETCHED_COLUMNS`).
        weight: p.or("weight", row.try_get::<Option<i64>, _>(10), None).unwrap_or(1).clamp(1, 1_000) as u16,
        unreadable: None,
        claim,
    };
    Ok(FetchedJob { unreadable: p.into_reason(), ..job })
}

fn epoch() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

fn time_col<I: ColumnIndex<SqliteRow>>(row: &SqliteRow, col: I) -> Result<DateTime<Utc>> {
    time(row.try_get(col)?)
}

fn opt_time_col(row: &SqliteRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    opt_time(row.try_get(col)?)
}

pub(super) fn job_row(row: &SqliteRow) -> Result<JobRow> {
    let state: String = row.try_get("state")?;
    let mut p = Problems::default();
    let errors = match json(row, "errors", "errors", None) {
        Ok(serde_json::Value::Array(a)) => a,
        Ok(other) => p.or("errors", Err::<Vec<_>, _>(format!("not an array: {other}")), Vec::new()),
        Err(e) => p.or("errors", Err::<Vec<_>, _>(e), Vec::new()),
    };
    let args = match json(row, "args", "args", None) {
        Ok(args) => args,
        Err(e) => {
            let shown =
                row.try_get::<String, _>("args").map_or(serde_json::Value::Null, serde_json::Value::String);
            p.or("args", Err::<(), _>(e), ());
            shown
        }
    };
    let job = JobRow {
        id: row.try_get("id")?,
        state: state.parse().map_err(Error::Unexpected)?,
        queue: p.or("queue", row.try_get("queue"), String::new()),
        worker: p.or("worker", row.try_get("worker"), String::new()),
        args,
        meta: p.or("meta", json(row, "meta", "meta", None), serde_json::Value::Null),
        tags: p.or("tags", tags(row, "tags"), Vec::new()),
        errors,
        attempt: p.or("attempt", row.try_get::<i64, _>("attempt"), 0) as u32,
        max_attempts: p.or("max_attempts", row.try_get::<i64, _>("max_attempts"), 0) as u32,
        priority: p.or("priority", row.try_get::<i64, _>("priority"), 0) as u8,
        weight: p.or("weight", row.try_get::<i64, _>("weight"), 1).clamp(1, 1_000) as u16,
        partition_key: p.or("partition_key", row.try_get("partition_key"), None),
        inserted_at: p.or("inserted_at", time_col(row, "inserted_at"), epoch()),
        scheduled_at: p.or("scheduled_at", time_col(row, "scheduled_at"), epoch()),
        attempted_at: p.or("attempted_at", opt_time_col(row, "attempted_at"), None),
        attempted_by: p.or("attempted_by", row.try_get("attempted_by"), None),
        completed_at: p.or("completed_at", opt_time_col(row, "completed_at"), None),
        discarded_at: p.or("discarded_at", opt_time_col(row, "discarded_at"), None),
        cancelled_at: p.or("cancelled_at", opt_time_col(row, "cancelled_at"), None),
        unreadable: None,
    };
    Ok(JobRow { unreadable: p.into_reason(), ..job })
}
