//! Reading rows into the engine's types, one column at a time (see `engine::unreadable`): a value
//! that does not decode marks its row unreadable instead of failing the whole statement.

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgRow, PgValueFormat};
use sqlx::{Row, ValueRef};

use crate::engine::unreadable::Problems;
use crate::error::{Error, Result};
use crate::types::{FetchedJob, JobRow};

fn epoch() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

/// The stored text of a `jsonb` column, for showing a value that does not decode.
fn json_text(row: &PgRow, col: &str) -> Option<String> {
    let raw = row.try_get_raw(col).ok()?;
    if raw.is_null() {
        return None;
    }
    let format = raw.format();
    let bytes = raw.as_bytes().ok()?;
    // The binary form of jsonb is a version byte (1) followed by the text.
    let text = match format {
        PgValueFormat::Binary => bytes.get(1..)?,
        PgValueFormat::Text => bytes,
    };
    Some(String::from_utf8_lossy(text).into_owned())
}

pub(super) fn fetched_job(row: &PgRow) -> Result<FetchedJob> {
    // Id and attempt are what a result needs; without them the row cannot be acted on.
    let id = row.try_get("id")?;
    let attempt = row.try_get::<i32, _>("attempt")? as u32;
    let mut p = Problems::default();
    let job = FetchedJob {
        id,
        worker: p.or("worker", row.try_get("worker"), String::new()),
        queue: p.or("queue", row.try_get("queue"), String::new()),
        args: p.or("args", row.try_get("args"), serde_json::Value::Null),
        meta: p.or("meta", row.try_get("meta"), serde_json::Value::Null),
        tags: p.or("tags", row.try_get("tags"), Vec::new()),
        attempt,
        max_attempts: p.or("max_attempts", row.try_get::<i32, _>("max_attempts"), 0) as u32,
        inserted_at: p.or("inserted_at", row.try_get("inserted_at"), epoch()),
        scheduled_at: p.or("scheduled_at", row.try_get("scheduled_at"), epoch()),
        priority: p.or("priority", row.try_get::<i16, _>("priority"), 0) as u8,
        weight: p.or("weight", row.try_get::<i16, _>("weight"), 1).max(1) as u16,
        unreadable: None,
        // The claim stamp is the claim's time in microseconds (see `sql::FETCHED_COLUMNS`).
        claim: row.try_get::<Option<DateTime<Utc>>, _>("claimed_at")?.map_or(0, |t| t.timestamp_micros()),
    };
    Ok(FetchedJob { unreadable: p.into_reason(), ..job })
}

pub(super) fn job_row(row: &PgRow) -> Result<JobRow> {
    let state: String = row.try_get("state")?;
    let mut p = Problems::default();
    let args = match row.try_get("args") {
        Ok(args) => args,
        Err(e) => {
            let shown = json_text(row, "args").map_or(serde_json::Value::Null, serde_json::Value::String);
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
        meta: p.or("meta", row.try_get("meta"), serde_json::Value::Null),
        tags: p.or("tags", row.try_get("tags"), Vec::new()),
        errors: p.or("errors", row.try_get("errors"), Vec::new()),
        attempt: p.or("attempt", row.try_get::<i32, _>("attempt"), 0) as u32,
        max_attempts: p.or("max_attempts", row.try_get::<i32, _>("max_attempts"), 0) as u32,
        priority: p.or("priority", row.try_get::<i16, _>("priority"), 0) as u8,
        weight: p.or("weight", row.try_get::<i16, _>("weight"), 1).max(1) as u16,
        partition_key: p.or("partition_key", row.try_get("partition_key"), None),
        inserted_at: p.or("inserted_at", row.try_get("inserted_at"), epoch()),
        scheduled_at: p.or("scheduled_at", row.try_get("scheduled_at"), epoch()),
        attempted_at: p.or("attempted_at", row.try_get("attempted_at"), None),
        attempted_by: p.or("attempted_by", row.try_get("attempted_by"), None),
        completed_at: p.or("completed_at", row.try_get("completed_at"), None),
        discarded_at: p.or("discarded_at", row.try_get("discarded_at"), None),
        cancelled_at: p.or("cancelled_at", row.try_get("cancelled_at"), None),
        unreadable: None,
    };
    Ok(JobRow { unreadable: p.into_reason(), ..job })
}
