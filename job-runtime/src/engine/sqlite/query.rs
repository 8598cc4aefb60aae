//! Acting on the jobs a [`JobMatch`] selects, on SQLite, through any executor (see
//! [`crate::engine::QueryDatabase`]).
//!
//! Every operation that writes runs in a transaction of its own (a savepoint inside the
//! caller's), so it is all or nothing. A write takes SQLite's write lock for the statement, so no
//! fetch runs between the statements of one operation.
//!
//! Wake-ups: an operation that makes jobs runnable wakes the runtimes of this process as an
//! insert does, once its own transaction committed (before the caller's commit, when there is one: a woken runtime finds nothing yet
//! and sees the jobs on its next poll). A cancel of running jobs cannot tell a node to stop them
//! before the cancel is committed (a rolled-back cancel must not stop anything): it asks the
//! runtimes to compare what they run with the table, which finds the cancel at once when it was
//! committed, and otherwise the node's reconciler finds it within one rescue interval.

use chrono::Utc;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::row::{self, JOB_COLUMNS};
use super::{database_file, now_ms, wake};
use crate::engine::common::validate_schema;
use crate::engine::query_database::{PENDING, RETRYABLE, UNFINISHED, deletable};
use crate::error::{Error, Result};
use crate::types::{JobChange, JobMatch, JobRow, JobState, Page, QueryOp, QueryOutput, Signal, Updated};

pub(super) async fn run(
    conn: &mut SqliteConnection,
    schema: &str,
    m: &JobMatch,
    op: QueryOp,
) -> Result<QueryOutput> {
    let write = match op {
        QueryOp::Count => return Ok(QueryOutput::Count(count(conn, schema, m).await?)),
        QueryOp::List(page) => return Ok(QueryOutput::Rows(list(conn, schema, m, page).await?)),
        QueryOp::Delete => return Ok(QueryOutput::Count(delete(conn, schema, m).await?)),
        write => write,
    };
    // A transaction of its own (a savepoint inside the caller's), so the operation is all or
    // nothing; its wake-ups go out once it committed.
    let cancelled = matches!(write, QueryOp::Cancel);
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let mut wakes = Vec::new();
    let out = match write {
        QueryOp::Cancel => QueryOutput::Count(cancel(&mut tx, schema, m, &mut wakes).await?),
        QueryOp::Retry => QueryOutput::Count(retry(&mut tx, schema, m, &mut wakes).await?),
        QueryOp::Update(change) => {
            QueryOutput::Updated(update(&mut tx, schema, m, &change, &mut wakes).await?)
        }
        QueryOp::Count | QueryOp::List(_) | QueryOp::Delete => unreachable!("answered above"),
    };
    let file = if wakes.is_empty() { String::new() } else { database_file(&mut *tx).await? };
    tx.commit().await?;
    send(&file, wakes);
    if matches!(out, QueryOutput::Count(n) if n > 0) && cancelled && wake::anyone_waits() {
        // Waiters of this process look at every job they wait for: the cancel does not list ids.
        wake::finished(&database_file(&mut *conn).await?, Vec::new());
    }
    Ok(out)
}

fn prefix(schema: &str) -> Result<String> {
    validate_schema(schema)?;
    Ok(format!("{schema}_"))
}

fn json_text<T: serde::Serialize>(value: &T) -> Result<String> {
    Ok(serde_json::to_string(value)?)
}

/// ` AND` the JSON object in `column` has `key` equal to `value`. As JSON text on both sides
/// (`->` gives the stored value's minified JSON, `json()` the bound one's), so `true` never
/// equals `1`, nor a string an object, and a missing key (NULL) is not a `null`.
fn push_json_equals(
    q: &mut QueryBuilder<Sqlite>,
    column: &str,
    key: &str,
    value: &serde_json::Value,
) -> Result<()> {
    q.push(format!(" AND {column} -> "))
        .push_bind(JobMatch::json_path(key))
        .push(" = json(")
        .push_bind(json_text(value)?)
        .push(")");
    Ok(())
}

/// ` AND column IN (the values of the JSON array `values`)`: one parameter for any number.
fn push_in(q: &mut QueryBuilder<Sqlite>, column: &str, values: String) {
    q.push(format!(" AND {column} IN (SELECT value FROM json_each(")).push_bind(values).push("))");
}

/// `AND` each condition of `m`, and `state IN states` when given.
fn push_match(q: &mut QueryBuilder<Sqlite>, m: &JobMatch, states: Option<&[JobState]>) -> Result<()> {
    if let Some(invalid) = &m.invalid {
        return Err(Error::InvalidOption(invalid.clone()));
    }
    q.push(" WHERE 1 = 1");
    if !m.workers.is_empty() {
        push_in(q, "worker", json_text(&m.workers)?);
    }
    for (field, value) in &m.args {
        push_json_equals(q, "args", field, value)?;
    }
    if let Some(ids) = &m.ids {
        push_in(q, "id", json_text(ids)?);
    }
    let states = states.map(<[JobState]>::to_vec).unwrap_or_else(|| m.states.clone());
    if !states.is_empty() {
        let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
        push_in(q, "state", json_text(&names)?);
    }
    if !m.queues.is_empty() {
        push_in(q, "queue", json_text(&m.queues)?);
    }
    if !m.tags.is_empty() {
        q.push(" AND NOT EXISTS (SELECT 1 FROM json_each(")
            .push_bind(json_text(&m.tags)?)
            .push(") w WHERE w.value NOT IN (SELECT value FROM json_each(tags)))");
    }
    for (key, value) in &m.meta {
        push_json_equals(q, "meta", key, value)?;
    }
    for key in &m.meta_keys {
        q.push(" AND json_type(meta, ").push_bind(JobMatch::json_path(key)).push(") IS NOT NULL");
    }
    if let Some(min) = m.min_id {
        q.push(" AND id >= ").push_bind(min);
    }
    if let Some(from) = m.scheduled_from {
        q.push(" AND scheduled_at >= ").push_bind(from.timestamp_millis());
    }
    if let Some(before) = m.scheduled_before {
        q.push(" AND scheduled_at < ").push_bind(before.timestamp_millis());
    }
    Ok(())
}

async fn count(conn: &mut SqliteConnection, schema: &str, m: &JobMatch) -> Result<u64> {
    let p = prefix(schema)?;
    let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT count(*) FROM {p}jobs"));
    push_match(&mut q, m, None)?;
    let n: i64 = q.build_query_scalar().fetch_one(&mut *conn).await?;
    Ok(n as u64)
}

async fn list(conn: &mut SqliteConnection, schema: &str, m: &JobMatch, page: Page) -> Result<Vec<JobRow>> {
    let p = prefix(schema)?;
    let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {JOB_COLUMNS} FROM {p}jobs"));
    push_match(&mut q, m, None)?;
    if let Some(before) = page.before_id {
        q.push(" AND id < ").push_bind(before);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(page.limit));
    let rows = q.build().fetch_all(&mut *conn).await?;
    rows.iter().map(row::job_row).collect()
}

async fn cancel(
    conn: &mut SqliteConnection,
    schema: &str,
    m: &JobMatch,
    wakes: &mut Vec<Signal>,
) -> Result<u64> {
    let p = prefix(schema)?;
    let states = m.states_within(&UNFINISHED);
    // Running rows first, by a statement of their own: RETURNING gives the new row, so only
    // this way does the cancel know whether it stopped a running job.
    let (running, waiting): (Vec<JobState>, Vec<JobState>) =
        states.into_iter().partition(|s| *s == JobState::Executing);
    let mut n = 0;
    for (states, is_running) in [(running, true), (waiting, false)] {
        if states.is_empty() {
            continue;
        }
        let mut q =
            QueryBuilder::<Sqlite>::new(format!("UPDATE {p}jobs SET state = 'cancelled', cancelled_at = "));
        q.push_bind(now_ms())
            .push(", errors = json_insert(errors, '$[#]', json_object('attempt', attempt, 'node', attempted_by, 'started_at', attempted_at, 'at', ")
            .push_bind(Utc::now().to_rfc3339())
            .push(", 'error', 'cancelled by request'))");
        push_match(&mut q, m, Some(&states))?;
        let done = q.build().execute(&mut *conn).await?.rows_affected();
        if is_running && done > 0 {
            // Running somewhere in this process, perhaps: ask the runtimes to look (module doc).
            wakes.push(Signal::CancelsCommitted);
        }
        n += done;
    }
    Ok(n)
}

async fn retry(
    conn: &mut SqliteConnection,
    schema: &str,
    m: &JobMatch,
    wakes: &mut Vec<Signal>,
) -> Result<u64> {
    let p = prefix(schema)?;
    let states = m.states_within(&RETRYABLE);
    if states.is_empty() {
        return Ok(0);
    }
    let mut q = QueryBuilder::<Sqlite>::new(format!(
        "UPDATE {p}jobs SET state = 'available', max_attempts = max(max_attempts, attempt + 1),
             discarded_at = NULL, cancelled_at = NULL, scheduled_at = "
    ));
    q.push_bind(now_ms());
    push_match(&mut q, m, Some(&states))?;
    q.push(" RETURNING queue");
    let mut queues: Vec<String> = q.build_query_scalar().fetch_all(&mut *conn).await?;
    let n = queues.len() as u64;
    queues.sort_unstable();
    queues.dedup();
    wake_queues(wakes, queues);
    Ok(n)
}

async fn delete(conn: &mut SqliteConnection, schema: &str, m: &JobMatch) -> Result<u64> {
    let p = prefix(schema)?;
    let states = deletable(m);
    if states.is_empty() {
        return Ok(0);
    }
    let mut q = QueryBuilder::<Sqlite>::new(format!("DELETE FROM {p}jobs"));
    push_match(&mut q, m, Some(&states))?;
    Ok(q.build().execute(&mut *conn).await?.rows_affected())
}

async fn update(
    conn: &mut SqliteConnection,
    schema: &str,
    m: &JobMatch,
    change: &JobChange,
    wakes: &mut Vec<Signal>,
) -> Result<Updated> {
    let p = prefix(schema)?;
    let states = m.states_within(&PENDING);
    let mut report = Updated::default();
    if !states.is_empty() && !change.is_empty() {
        let now = now_ms();
        // A no-op first assignment, so each change below starts with a comma.
        let mut q = QueryBuilder::<Sqlite>::new(format!("UPDATE {p}jobs SET id = id"));
        if let Some(args) = &change.args {
            q.push(", args = ").push_bind(json_text(args)?);
        }
        if let Some(priority) = change.priority {
            q.push(", priority = ").push_bind(i64::from(priority));
        }
        if let Some(queue) = &change.queue {
            q.push(", queue = ").push_bind(queue.clone());
        }
        if let Some(tags) = &change.tags {
            q.push(", tags = ").push_bind(json_text(tags)?);
        }
        if let Some(meta) = &change.meta {
            q.push(", meta = ").push_bind(json_text(meta)?);
        }
        if let Some((delay, at)) = change.schedule_parts() {
            let due = at.map(|t| t.timestamp_millis()).unwrap_or(now + delay.unwrap_or(0));
            q.push(", scheduled_at = ").push_bind(due);
            let state = if due > now {
                "CASE WHEN state = 'retryable' THEN 'retryable' ELSE 'scheduled' END"
            } else {
                "'available'"
            };
            q.push(format!(", state = {state}"));
        }
        push_match(&mut q, m, Some(&states))?;
        q.push(" RETURNING id, state, queue, CASE WHEN unique_key IS NULL THEN NULL ELSE args END");
        let changed: Vec<(i64, String, String, Option<String>)> =
            q.build_query_as().fetch_all(&mut *conn).await?;
        report.changed = changed.len() as u64;
        if change.rekeys() {
            rekey(conn, &p, &changed, change).await?;
        }
        let mut queues: Vec<String> = changed
            .into_iter()
            .filter(|(_, state, ..)| state == "available")
            .map(|(_, _, queue, _)| queue)
            .collect();
        queues.sort_unstable();
        queues.dedup();
        wake_queues(wakes, queues);
    }
    // Read after the write, under its lock: a row cannot have started in between. None when the
    // query names states and not `executing`.
    if m.states_within(&[JobState::Executing]).is_empty() {
        return Ok(report);
    }
    let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT id FROM {p}jobs"));
    push_match(&mut q, m, Some(&[JobState::Executing]))?;
    q.push(" ORDER BY id");
    report.started = q.build_query_scalar().fetch_all(&mut *conn).await?;
    Ok(report)
}

/// Rebuilds the unique keys of the changed rows that have one (see [`JobChange::unique_keys`]);
/// `changed` holds each changed row's id, state, queue and, when it has a unique key, its args.
async fn rekey(
    conn: &mut SqliteConnection,
    p: &str,
    changed: &[(i64, String, String, Option<String>)],
    change: &JobChange,
) -> Result<()> {
    let rows = changed
        .iter()
        .filter_map(|(id, _, queue, args)| Some((*id, queue.clone(), args.as_deref()?)))
        .map(|(id, queue, args)| Ok((id, queue, serde_json::from_str(args)?)))
        .collect::<Result<Vec<_>>>()?;
    for (id, key) in change.unique_keys(rows)? {
        sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE {p}jobs SET unique_key = ?1 WHERE id = ?2")))
            .bind(key)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The wake-ups for jobs made runnable on `queues` (and the stager's, which finds scheduled rows).
fn wake_queues(wakes: &mut Vec<Signal>, queues: Vec<String>) {
    wakes.extend(queues.into_iter().map(Signal::Available));
    wakes.push(Signal::Scheduled);
}

/// Sends `wakes` to this process's runtimes on the database `file`.
fn send(file: &str, wakes: Vec<Signal>) {
    if !wakes.is_empty() {
        wake::signal(file, wakes);
    }
}
