//! Acting on the jobs a [`JobMatch`] selects, on PostgreSQL, through any executor (see
//! [`crate::engine::QueryDatabase`]). Each operation is one statement, so it needs no
//! transaction of its own and commits or rolls back with the caller's.
//!
//! Rows are locked (`FOR UPDATE`) before they are changed, so a fetch that claims one at the same
//! moment either claims it first (the operation then sees it `executing` and keeps to its rules)
//! or skips it (`SKIP LOCKED`) until the operation's transaction ends. Notifications are sent in
//! the statement, so they reach the nodes at the commit and never after a rollback: a cancel of
//! running jobs tells their nodes to fire the jobs' tokens (`c:<id>`), and jobs made runnable wake
//! their queues.

use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::row;
use super::sql::JOB_COLUMNS;
use crate::engine::common::validate_schema;
use crate::engine::query_database::{PENDING, RETRYABLE, UNFINISHED, deletable};
use crate::error::{Error, Result};
use crate::types::{JobChange, JobMatch, JobRow, JobState, Page, QueryOp, QueryOutput, Updated};

pub(super) async fn run(conn: &mut PgConnection, s: &str, m: &JobMatch, op: QueryOp) -> Result<QueryOutput> {
    validate_schema(s)?;
    if let Some(invalid) = &m.invalid {
        return Err(Error::InvalidOption(invalid.clone()));
    }
    let write = match op {
        QueryOp::Count => return Ok(QueryOutput::Count(count(conn, s, m).await?)),
        QueryOp::List(page) => return Ok(QueryOutput::Rows(list(conn, s, m, page).await?)),
        write => write,
    };
    // A transaction of its own, a savepoint inside the caller's: a statement that fails (a retry
    // or an update that would duplicate a unique job) changes nothing and leaves the caller's
    // transaction usable.
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let out = match write {
        QueryOp::Cancel => QueryOutput::Count(cancel(&mut tx, s, m).await?),
        QueryOp::Retry => QueryOutput::Count(retry(&mut tx, s, m).await?),
        QueryOp::Delete => QueryOutput::Count(delete(&mut tx, s, m).await?),
        QueryOp::Update(change) => QueryOutput::Updated(update(&mut tx, s, m, &change).await?),
        QueryOp::Count | QueryOp::List(_) => unreachable!("answered above"),
    };
    tx.commit().await?;
    Ok(out)
}

fn state_names(states: &[JobState]) -> Vec<String> {
    states.iter().map(|s| s.as_str().to_string()).collect()
}

/// ` WHERE` each condition of `m` `AND`ed, and `state` in `states` when given.
fn push_match(
    q: &mut QueryBuilder<Postgres>,
    s: &str,
    m: &JobMatch,
    states: Option<&[JobState]>,
) -> Result<()> {
    if let Some(invalid) = &m.invalid {
        return Err(Error::InvalidOption(invalid.clone()));
    }
    q.push(" WHERE true");
    if !m.workers.is_empty() {
        q.push(" AND worker = ANY(").push_bind(m.workers.clone()).push(")");
    }
    for (field, value) in &m.args {
        // jsonb equality: exact, whatever the type (containment would let an array match a
        // longer one).
        q.push(" AND args -> ").push_bind(field.clone()).push(" = ").push_bind(value.clone());
    }
    if let Some(ids) = &m.ids {
        q.push(" AND id = ANY(").push_bind(ids.clone()).push(")");
    }
    let states = states.map(<[JobState]>::to_vec).unwrap_or_else(|| m.states.clone());
    if !states.is_empty() {
        q.push(" AND state = ANY(").push_bind(state_names(&states)).push(format!("::{s}.job_state[])"));
    }
    if !m.queues.is_empty() {
        q.push(" AND queue = ANY(").push_bind(m.queues.clone()).push(")");
    }
    if !m.tags.is_empty() {
        q.push(" AND tags @> ").push_bind(m.tags.clone());
    }
    for (key, value) in &m.meta {
        q.push(" AND meta -> ").push_bind(key.clone()).push(" = ").push_bind(value.clone());
    }
    for key in &m.meta_keys {
        q.push(" AND jsonb_exists(meta, ").push_bind(key.clone()).push(")");
    }
    if let Some(min) = m.min_id {
        q.push(" AND id >= ").push_bind(min);
    }
    if let Some(from) = m.scheduled_from {
        q.push(" AND scheduled_at >= ").push_bind(from);
    }
    if let Some(before) = m.scheduled_before {
        q.push(" AND scheduled_at < ").push_bind(before);
    }
    Ok(())
}

async fn count(conn: &mut PgConnection, s: &str, m: &JobMatch) -> Result<u64> {
    validate_schema(s)?;
    let mut q = QueryBuilder::<Postgres>::new(format!("SELECT count(*) FROM {s}.jobs"));
    push_match(&mut q, s, m, None)?;
    let n: i64 = q.build_query_scalar().fetch_one(&mut *conn).await?;
    Ok(n as u64)
}

async fn list(conn: &mut PgConnection, s: &str, m: &JobMatch, page: Page) -> Result<Vec<JobRow>> {
    validate_schema(s)?;
    let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {JOB_COLUMNS} FROM {s}.jobs"));
    push_match(&mut q, s, m, None)?;
    if let Some(before) = page.before_id {
        q.push(" AND id < ").push_bind(before);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(page.limit));
    let rows = q.build().fetch_all(&mut *conn).await?;
    rows.iter().map(row::job_row).collect()
}

async fn cancel(conn: &mut PgConnection, s: &str, m: &JobMatch) -> Result<u64> {
    validate_schema(s)?;
    let states = m.states_within(&UNFINISHED);
    if states.is_empty() {
        return Ok(0);
    }
    // The locked CTE gives the state each row had when it was locked (after waiting out a fetch
    // that claimed it meanwhile), so a job that started in between is cancelled as running and
    // its node is told.
    let mut q = QueryBuilder::<Postgres>::new(format!("WITH locked AS (SELECT id, state FROM {s}.jobs"));
    push_match(&mut q, s, m, Some(&states))?;
    // In id order, as every multi-row write here locks, so two of them cannot deadlock.
    q.push(format!(
        " ORDER BY id FOR UPDATE), upd AS (
            UPDATE {s}.jobs j SET state = 'cancelled', cancelled_at = now(),
                errors = array_append(j.errors, jsonb_build_object(
                    'attempt', j.attempt, 'at', now(), 'node', j.attempted_by, 'started_at', j.attempted_at, 'error', 'cancelled by request'))
            FROM locked WHERE j.id = locked.id
            RETURNING j.id, locked.state = 'executing' AS running
        ), notified AS (
            SELECT pg_notify("
    ));
    q.push_bind(format!("{s}_signal"));
    q.push(", 'c:' || id::text) FROM upd WHERE running) SELECT count(*) FROM upd WHERE (SELECT count(*) FROM notified) >= 0");
    let n: i64 = q.build_query_scalar().fetch_one(&mut *conn).await?;
    Ok(n as u64)
}

async fn retry(conn: &mut PgConnection, s: &str, m: &JobMatch) -> Result<u64> {
    validate_schema(s)?;
    let states = m.states_within(&RETRYABLE);
    if states.is_empty() {
        return Ok(0);
    }
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "WITH upd AS (
            UPDATE {s}.jobs SET state = 'available', max_attempts = GREATEST(max_attempts, attempt + 1),
                scheduled_at = now(), discarded_at = NULL, cancelled_at = NULL"
    ));
    push_match(&mut q, s, m, Some(&states))?;
    q.push(" RETURNING queue), notified AS (SELECT pg_notify(");
    q.push_bind(format!("{s}_signal"));
    q.push(", 'a:' || queue) FROM (SELECT DISTINCT queue FROM upd) k) SELECT (SELECT count(*) FROM upd) + 0 * (SELECT count(*) FROM notified)");
    let n: i64 = q.build_query_scalar().fetch_one(&mut *conn).await?;
    Ok(n as u64)
}

async fn delete(conn: &mut PgConnection, s: &str, m: &JobMatch) -> Result<u64> {
    validate_schema(s)?;
    let states = deletable(m);
    if states.is_empty() {
        return Ok(0);
    }
    let mut q = QueryBuilder::<Postgres>::new(format!("DELETE FROM {s}.jobs"));
    push_match(&mut q, s, m, Some(&states))?;
    Ok(q.build().execute(&mut *conn).await?.rows_affected())
}

async fn update(conn: &mut PgConnection, s: &str, m: &JobMatch, change: &JobChange) -> Result<Updated> {
    validate_schema(s)?;
    let states = m.states_within(&PENDING);
    if states.is_empty() || change.is_empty() {
        return started_only(conn, s, m).await;
    }
    let running = m.states_within(&[JobState::Executing]);
    // `seen`: the pending rows of the statement's snapshot; `locked`: those still pending once
    // locked (a row a fetch claimed meanwhile is re-read after that fetch commits, and is then
    // executing, so it drops out). The difference, and the rows already executing, are the
    // jobs that started: never changed, always reported.
    let mut q = QueryBuilder::<Postgres>::new(format!("WITH seen AS (SELECT id FROM {s}.jobs"));
    push_match(&mut q, s, m, Some(&states))?;
    q.push(format!("), locked AS (SELECT id FROM {s}.jobs"));
    push_match(&mut q, s, m, Some(&states))?;
    // A no-op first assignment, so each change below starts with a comma.
    q.push(format!(" ORDER BY id FOR UPDATE), upd AS (UPDATE {s}.jobs j SET id = j.id"));
    if let Some(args) = &change.args {
        q.push(", args = ").push_bind(args.clone());
    }
    if let Some(priority) = change.priority {
        q.push(", priority = ").push_bind(i16::from(priority));
    }
    if let Some(queue) = &change.queue {
        q.push(", queue = ").push_bind(queue.clone());
    }
    if let Some(tags) = &change.tags {
        q.push(", tags = ").push_bind(tags.clone());
    }
    if let Some(meta) = &change.meta {
        q.push(", meta = ").push_bind(meta.clone());
    }
    if let Some((delay, at)) = change.schedule_parts() {
        q.push(", scheduled_at = COALESCE(")
            .push_bind(at)
            .push(", now() + ")
            .push_bind(delay.unwrap_or(0))
            .push(" * interval '1 millisecond')");
        q.push(", state = CASE WHEN COALESCE(")
            .push_bind(at)
            .push(", now() + ")
            .push_bind(delay.unwrap_or(0))
            .push(format!(
                " * interval '1 millisecond') <= now() THEN 'available'::{s}.job_state
                  WHEN j.state = 'retryable' THEN 'retryable'::{s}.job_state
                  ELSE 'scheduled'::{s}.job_state END"
            ));
    }
    q.push(" FROM locked WHERE j.id = locked.id RETURNING j.id, j.state, j.queue), notified AS (SELECT pg_notify(");
    q.push_bind(format!("{s}_signal"));
    q.push(format!(
        ", CASE WHEN state = 'available' THEN 'a:' || queue ELSE 's:' END)
            FROM (SELECT DISTINCT state, queue FROM upd) k
        ), running AS (SELECT id FROM {s}.jobs"
    ));
    push_match(&mut q, s, m, Some(&[JobState::Executing]))?;
    if running.is_empty() {
        q.push(" AND false");
    }
    // The rows that left the waiting states while the update waited for them: re-read under a
    // lock, which gives their latest version, so only those a fetch claimed count as started
    // (not those cancelled or deleted meanwhile).
    q.push(format!(
        "), moved AS (
            SELECT id, state FROM {s}.jobs
            WHERE id IN (SELECT id FROM seen EXCEPT SELECT id FROM locked)
            FOR SHARE
        ) SELECT ARRAY(SELECT id FROM upd WHERE (SELECT count(*) FROM notified) >= 0) AS changed,
                 ARRAY(SELECT id FROM running UNION SELECT id FROM moved WHERE state = 'executing' ORDER BY 1) AS started"
    ));
    let (changed, started): (Vec<i64>, Vec<i64>) = q.build_query_as().fetch_one(&mut *conn).await?;
    if change.rekeys() && !changed.is_empty() {
        rekey(conn, s, &changed, change).await?;
    }
    Ok(Updated { changed: changed.len() as u64, started })
}

/// Rebuilds the unique keys of the changed rows that have one (see [`JobChange::unique_keys`]).
async fn rekey(conn: &mut PgConnection, s: &str, changed: &[i64], change: &JobChange) -> Result<()> {
    let rows: Vec<(i64, String, serde_json::Value)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, queue, args FROM {s}.jobs WHERE id = ANY($1) AND unique_key IS NOT NULL"
    )))
    .bind(changed)
    .fetch_all(&mut *conn)
    .await?;
    let keys = change.unique_keys(rows)?;
    if keys.is_empty() {
        return Ok(());
    }
    let (ids, keys): (Vec<i64>, Vec<Vec<u8>>) = keys.into_iter().unzip();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {s}.jobs j SET unique_key = k.key FROM unnest($1::bigint[], $2::bytea[]) AS k(id, key) WHERE j.id = k.id"
    )))
    .bind(&ids)
    .bind(&keys)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An update that changes nothing still says which matching jobs had started (none when the
/// query names states and not `executing`).
async fn started_only(conn: &mut PgConnection, s: &str, m: &JobMatch) -> Result<Updated> {
    if m.states_within(&[JobState::Executing]).is_empty() {
        return Ok(Updated::default());
    }
    let mut q = QueryBuilder::<Postgres>::new(format!("SELECT id FROM {s}.jobs"));
    push_match(&mut q, s, m, Some(&[JobState::Executing]))?;
    q.push(" ORDER BY id");
    let started: Vec<i64> = q.build_query_scalar().fetch_all(&mut *conn).await?;
    Ok(Updated { changed: 0, started })
}
