//! Reading rows into the engine's types.

use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::engine::{FetchedJob, JobRow};
use crate::error::{Error, Result};

pub(super) fn fetched_job(row: &PgRow) -> Result<FetchedJob> {
    Ok(FetchedJob {
        id: row.try_get("id")?,
        worker: row.try_get("worker")?,
        queue: row.try_get("queue")?,
        args: row.try_get("args")?,
        meta: row.try_get("meta")?,
        tags: row.try_get("tags")?,
        attempt: row.try_get::<i32, _>("attempt")? as u32,
        max_attempts: row.try_get::<i32, _>("max_attempts")? as u32,
        inserted_at: row.try_get("inserted_at")?,
        scheduled_at: row.try_get("scheduled_at")?,
        priority: row.try_get::<i16, _>("priority")? as u8,
    })
}

pub(super) fn job_row(row: &PgRow) -> Result<JobRow> {
    let state: String = row.try_get("state")?;
    Ok(JobRow {
        id: row.try_get("id")?,
        state: state.parse().map_err(Error::Unexpected)?,
        queue: row.try_get("queue")?,
        worker: row.try_get("worker")?,
        args: row.try_get("args")?,
        meta: row.try_get("meta")?,
        tags: row.try_get("tags")?,
        errors: row.try_get("errors")?,
        attempt: row.try_get::<i32, _>("attempt")? as u32,
        max_attempts: row.try_get::<i32, _>("max_attempts")? as u32,
        priority: row.try_get::<i16, _>("priority")? as u8,
        inserted_at: row.try_get("inserted_at")?,
        scheduled_at: row.try_get("scheduled_at")?,
        attempted_at: row.try_get("attempted_at")?,
        attempted_by: row.try_get("attempted_by")?,
        completed_at: row.try_get("completed_at")?,
        discarded_at: row.try_get("discarded_at")?,
        cancelled_at: row.try_get("cancelled_at")?,
    })
}
