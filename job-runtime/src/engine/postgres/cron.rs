//! Cron entries kept in the database, and the job types the leader publishes (ADR 30).

use sqlx::{AssertSqlSafe, Row};

use super::PostgresEngine;
use crate::engine::RuntimeOps;
use crate::engine::common::code_cron_entry as code_entry;
use crate::error::{Error, Result};
use crate::types::{CronEntryRow, CronEntryWrite, CronSource, InsertedJob, JobTemplate, WorkerRow};

impl PostgresEngine {
    pub(super) async fn cron_entry_rows(&self) -> Result<Vec<CronEntryRow>> {
        let s = &self.schema;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT e.name, e.source, e.expr, e.timezone, e.missed, e.paused, e.job, e.error, e.updated_at,
                    c.last_slot, c.last_job_id, j.state::text AS last_state
             FROM {s}.cron_entries e
             LEFT JOIN {s}.cron c ON c.name = e.name
             LEFT JOIN {s}.jobs j ON j.id = c.last_job_id
             ORDER BY e.name"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let source: String = r.try_get("source")?;
                let job: serde_json::Value = r.try_get("job")?;
                let last_job: Option<i64> = r.try_get("last_job_id")?;
                let last_state: Option<String> = r.try_get("last_state")?;
                Ok(CronEntryRow {
                    name: r.try_get("name")?,
                    source: stored_source(&source)?,
                    expr: r.try_get("expr")?,
                    timezone: r.try_get("timezone")?,
                    missed: r.try_get("missed")?,
                    paused: r.try_get("paused")?,
                    job: stored_template(job)?,
                    error: r.try_get("error")?,
                    last_slot: r.try_get("last_slot")?,
                    last_job: last_job.map(|id| (id, last_state.and_then(|s| s.parse().ok()))),
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    pub(super) async fn save_cron_row(&self, entry: &CronEntryWrite) -> Result<()> {
        let s = &self.schema;
        let mut tx = self.pool.begin().await?;
        let before: Option<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT expr, timezone FROM {s}.cron_entries WHERE name = $1 FOR UPDATE"
        )))
        .bind(&entry.name)
        .fetch_optional(&mut *tx)
        .await?;
        // The entry is written unless a code entry holds the name, which the RETURNING tells
        // apart from a write.
        let written: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "INSERT INTO {s}.cron_entries (name, source, expr, timezone, missed, job)
             VALUES ($1, 'database', $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET expr = EXCLUDED.expr, timezone = EXCLUDED.timezone,
                 missed = EXCLUDED.missed, job = EXCLUDED.job, error = NULL, updated_at = now()
             WHERE {s}.cron_entries.source = 'database'
             RETURNING name"
        )))
        .bind(&entry.name)
        .bind(&entry.expr)
        .bind(&entry.timezone)
        .bind(&entry.missed)
        .bind(serde_json::to_value(&entry.job)?)
        .fetch_optional(&mut *tx)
        .await?;
        if written.is_none() {
            return Err(code_entry(&entry.name));
        }
        // A new schedule starts afresh, as a new entry does (no slot of it fires for the past);
        // kept, the old schedule's last slot would make the new one's slots since then "missed".
        if before.is_some_and(|(expr, tz)| expr != entry.expr || tz != entry.timezone) {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {s}.cron WHERE name = $1")))
                .bind(&entry.name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn remove_cron_row(&self, name: &str) -> Result<bool> {
        let s = &self.schema;
        let mut tx = self.pool.begin().await?;
        let source: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT source FROM {s}.cron_entries WHERE name = $1 FOR UPDATE"
        )))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        match source.as_deref() {
            None => return Ok(false),
            Some("code") => return Err(code_entry(name)),
            Some(_) => {}
        }
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {s}.cron_entries WHERE name = $1")))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        // Its bookkeeping goes too: an entry added again under the name starts afresh.
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {s}.cron WHERE name = $1")))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn pause_cron_row(&self, name: &str, paused: bool) -> Result<bool> {
        let s = &self.schema;
        let done = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {s}.cron_entries SET paused = $2, updated_at = now() WHERE name = $1"
        )))
        .bind(name)
        .bind(paused)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn run_cron_row(&self, name: &str) -> Result<Option<InsertedJob>> {
        let s = &self.schema;
        let job: Option<serde_json::Value> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT job FROM {s}.cron_entries WHERE name = $1")))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        let Some(job) = job else { return Ok(None) };
        let job = crate::cron::run_now_job(name, &stored_template(job)?);
        Ok(self.insert(vec![job]).await?.into_iter().next())
    }

    pub(super) async fn worker_rows(&self) -> Result<Vec<WorkerRow>> {
        let s = &self.schema;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT name, queue, priority, max_attempts, weight, tags FROM {s}.workers ORDER BY name"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WorkerRow {
                    name: r.try_get("name")?,
                    queue: r.try_get("queue")?,
                    priority: r.try_get::<i16, _>("priority")? as u8,
                    max_attempts: r.try_get::<i32, _>("max_attempts")? as u32,
                    weight: r.try_get::<i32, _>("weight")? as u16,
                    tags: r.try_get("tags")?,
                })
            })
            .collect()
    }

    pub(super) async fn publish_catalog_rows(
        &self,
        code: &[CronEntryWrite],
        workers: &[WorkerRow],
    ) -> Result<()> {
        let s = &self.schema;
        let mut tx = self.pool.begin().await?;
        let names: Vec<&str> = code.iter().map(|e| e.name.as_str()).collect();
        // Code entries the leader no longer has go, with their bookkeeping.
        sqlx::query(AssertSqlSafe(format!(
            "WITH gone AS (DELETE FROM {s}.cron_entries WHERE source = 'code' AND NOT name = ANY($1) RETURNING name)
             DELETE FROM {s}.cron WHERE name IN (SELECT name FROM gone)"
        )))
        .bind(&names)
        .execute(&mut *tx)
        .await?;
        for e in code {
            // A code entry takes over a stored entry of the same name: the deploy decides. Its
            // pause survives.
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {s}.cron_entries (name, source, expr, timezone, missed, job)
                 VALUES ($1, 'code', $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET source = 'code', expr = EXCLUDED.expr, timezone = EXCLUDED.timezone,
                     missed = EXCLUDED.missed, job = EXCLUDED.job, error = NULL, updated_at = now()"
            )))
            .bind(&e.name)
            .bind(&e.expr)
            .bind(&e.timezone)
            .bind(&e.missed)
            .bind(serde_json::to_value(&e.job)?)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {s}.workers"))).execute(&mut *tx).await?;
        for w in workers {
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {s}.workers (name, queue, priority, max_attempts, weight, tags) VALUES ($1, $2, $3, $4, $5, $6)"
            )))
            .bind(&w.name)
            .bind(&w.queue)
            .bind(i16::from(w.priority))
            .bind(w.max_attempts as i32)
            .bind(i32::from(w.weight))
            .bind(&w.tags)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn set_cron_error_row(&self, name: &str, error: Option<&str>) -> Result<()> {
        let s = &self.schema;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {s}.cron_entries SET error = $2 WHERE name = $1 AND error IS DISTINCT FROM $2"
        )))
        .bind(name)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records job `id` as the one entry `name`'s newest slot inserted (in the firing's transaction).
    pub(super) async fn record_cron_job(
        tx: &mut sqlx::PgConnection,
        schema: &str,
        name: &str,
        id: i64,
    ) -> Result<()> {
        sqlx::query(AssertSqlSafe(format!("UPDATE {schema}.cron SET last_job_id = $2 WHERE name = $1")))
            .bind(name)
            .bind(id)
            .execute(tx)
            .await?;
        Ok(())
    }
}

fn stored_source(text: &str) -> Result<CronSource> {
    CronSource::parse(text).ok_or_else(|| Error::Unexpected(format!("unknown cron entry source `{text}`")))
}

fn stored_template(job: serde_json::Value) -> Result<JobTemplate> {
    serde_json::from_value(job).map_err(|e| Error::Unexpected(format!("a stored cron entry's job: {e}")))
}
