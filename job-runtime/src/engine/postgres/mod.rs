//! The PostgreSQL engine: every statement jobsmith runs on PostgreSQL.
//!
//! Statements are formatted once per schema (see [`sql::Statements`]) so two isolated instances
//! can share one database; all values travel as bind parameters.

mod migrate;
mod row;
mod sql;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backoff::reconnect_delay as backoff;
use crate::engine::{Ack, AckKind, Engine, FetchedJob, JobRow, Signal, StageReport, StateCount};
use crate::error::Result;
use crate::insert::{InsertDatabase, InsertedJob, NewJob};
use crate::state::JobState;

pub use migrate::{MIGRATIONS, migrate};
pub use sql::validate_schema;

/// The PostgreSQL engine over a pool, for one schema.
#[derive(Debug, Clone)]
pub struct PostgresEngine {
    pool: PgPool,
    schema: String,
    sql: std::sync::Arc<sql::Statements>,
}

impl PostgresEngine {
    /// An engine for `schema` (see [`crate::insert::DEFAULT_SCHEMA`]).
    pub fn new(pool: PgPool, schema: &str) -> Result<Self> {
        validate_schema(schema)?;
        Ok(Self { pool, schema: schema.to_string(), sql: std::sync::Arc::new(sql::Statements::new(schema)) })
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// The columns of one ack, as parallel arrays for `unnest`.
#[derive(Default)]
struct AckArrays {
    ids: Vec<i64>,
    states: Vec<&'static str>,
    delays: Vec<Option<i64>>,
    errors: Vec<Option<String>>,
    refunds: Vec<i32>,
}

impl AckArrays {
    fn push(&mut self, ack: &Ack) {
        let (state, delay, error, refund) = match &ack.kind {
            AckKind::Complete => (JobState::Completed, None, None, 0),
            AckKind::Retry { delay, error } => {
                (JobState::Retryable, Some(ms(*delay)), Some(error.clone()), 0)
            }
            AckKind::Discard { error } => (JobState::Discarded, None, Some(error.clone()), 0),
            AckKind::Cancel { reason } => (JobState::Cancelled, None, Some(reason.clone()), 0),
            AckKind::Snooze { delay } => (JobState::Scheduled, Some(ms(*delay)), None, 1),
            AckKind::HandBack { reason } => (JobState::Available, Some(0), Some(reason.clone()), 1),
        };
        self.ids.push(ack.id);
        self.states.push(state.as_str());
        self.delays.push(delay);
        self.errors.push(error);
        self.refunds.push(refund);
    }
}

#[async_trait]
impl Engine for PostgresEngine {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<()> {
        migrate(&self.pool, &self.schema).await
    }

    async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>> {
        <sqlx::Postgres as InsertDatabase>::insert_jobs(&self.pool, &self.schema, jobs).await
    }

    async fn fetch(&self, queue: &str, limit: u32, node: &str) -> Result<Vec<FetchedJob>> {
        let rows = sqlx::query(AssertSqlSafe(self.sql.fetch.clone()))
            .bind(queue)
            .bind(i64::from(limit))
            .bind(node)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row::fetched_job).collect()
    }

    async fn ack(&self, acks: &[Ack]) -> Result<u64> {
        let mut a = AckArrays::default();
        for ack in acks {
            a.push(ack);
        }
        let done = sqlx::query(AssertSqlSafe(self.sql.ack.clone()))
            .bind(&a.ids)
            .bind(&a.states)
            .bind(&a.delays)
            .bind(&a.errors)
            .bind(&a.refunds)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn stage(&self, limit: u32) -> Result<StageReport> {
        let row = sqlx::query(AssertSqlSafe(self.sql.stage.clone()))
            .bind(i64::from(limit))
            .bind(&self.sql.channel)
            .fetch_one(&self.pool)
            .await?;
        let staged: i64 = row.try_get("staged")?;
        let queues: Option<Vec<String>> = row.try_get("queues")?;
        let next_ms: Option<f64> = row.try_get("next_due_ms")?;
        Ok(StageReport {
            staged: staged as u64,
            queues: queues.unwrap_or_default(),
            next_due_in: next_ms.map(|m| Duration::from_secs_f64(m.max(0.0) / 1000.0)),
        })
    }

    async fn cancel_job(&self, id: i64) -> Result<Option<JobState>> {
        let old: Option<String> = sqlx::query_scalar(AssertSqlSafe(self.sql.cancel.clone()))
            .bind(id)
            .bind(&self.sql.channel)
            .fetch_optional(&self.pool)
            .await?;
        old.map(|s| s.parse().map_err(crate::error::Error::Unexpected)).transpose()
    }

    async fn retry_job(&self, id: i64) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(self.sql.retry.clone()))
            .bind(id)
            .bind(&self.sql.channel)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    async fn get_job(&self, id: i64) -> Result<Option<JobRow>> {
        let row =
            sqlx::query(AssertSqlSafe(self.sql.get_job.clone())).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(row::job_row).transpose()
    }

    async fn count_by_state(&self) -> Result<Vec<StateCount>> {
        let rows = sqlx::query(AssertSqlSafe(self.sql.count_by_state.clone())).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get("state")?;
                Ok(StateCount {
                    queue: r.try_get("queue")?,
                    state: state.parse().map_err(crate::error::Error::Unexpected)?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    async fn listen(&self, signals: mpsc::UnboundedSender<Signal>, stop: CancellationToken) {
        let mut failures = 0u32;
        while !stop.is_cancelled() {
            // A fresh listener after any error: a terminated backend can leave the old one unusable.
            let mut listener = match PgListener::connect_with(&self.pool).await {
                Ok(mut l) => match l.listen(&self.sql.channel).await {
                    Ok(()) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "jobsmith listener could not LISTEN; retrying");
                        failures += 1;
                        sleep_or_stop(backoff(failures), &stop).await;
                        continue;
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "jobsmith listener could not connect; retrying");
                    failures += 1;
                    sleep_or_stop(backoff(failures), &stop).await;
                    continue;
                }
            };
            if failures > 0 {
                // Notifications sent while we were away are lost: make everyone look.
                let _ = signals.send(Signal::Resync);
            }
            failures = 0;
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return,
                    n = listener.try_recv() => n,
                };
                match next {
                    Ok(Some(n)) => {
                        if let Some(signal) = parse_payload(n.payload())
                            && signals.send(signal).is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => {
                        tracing::warn!("jobsmith listener lost its connection; reconnecting");
                        failures += 1;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "jobsmith listener failed; reconnecting");
                        failures += 1;
                        break;
                    }
                }
            }
            sleep_or_stop(backoff(failures), &stop).await;
        }
    }
}

async fn sleep_or_stop(d: Duration, stop: &CancellationToken) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}

/// Notification payloads: `a:<queue>` work available, `s:` a scheduled insert, `c:<id>` cancel.
fn parse_payload(payload: &str) -> Option<Signal> {
    let (kind, rest) = payload.split_once(':')?;
    match kind {
        "a" => Some(Signal::Available(rest.to_string())),
        "s" => Some(Signal::Scheduled),
        "c" => rest.parse().ok().map(Signal::CancelJob),
        _ => None,
    }
}

impl InsertDatabase for sqlx::Postgres {
    async fn insert_jobs<'c, A>(db: A, schema: &str, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>>
    where
        A: sqlx::Acquire<'c, Database = Self> + Send,
    {
        validate_schema(schema)?;
        let mut conn = db.acquire().await?;
        insert::insert_jobs(&mut *conn, schema, jobs).await
    }
}

mod insert;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        assert_eq!(parse_payload("a:events"), Some(Signal::Available("events".into())));
        assert_eq!(parse_payload("a:with:colon"), Some(Signal::Available("with:colon".into())));
        assert_eq!(parse_payload("s:"), Some(Signal::Scheduled));
        assert_eq!(parse_payload("c:42"), Some(Signal::CancelJob(42)));
        assert_eq!(parse_payload("c:x"), None);
        assert_eq!(parse_payload("junk"), None);
    }
}
