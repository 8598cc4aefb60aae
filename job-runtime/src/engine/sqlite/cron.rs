//! Cron entries kept in the database, and the job types the leader publishes (ADR 30).

use sqlx::{AssertSqlSafe, Row};

use super::{SqliteEngine, now_ms, row};
use crate::engine::RuntimeOps;
use crate::engine::common::code_cron_entry as code_entry;
use crate::error::{Error, Result};
use crate::types::{CronEntryRow, CronEntryWrite, CronSource, InsertedJob, JobTemplate, WorkerRow};

impl SqliteEngine {
    pub(super) async fn cron_entry_rows(&self) -> Result<Vec<CronEntryRow>> {
        let p = &self.prefix;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT e.name, e.source, e.expr, e.timezone, e.missed, e.paused, e.job, e.error, e.updated_at,
                    c.last_slot, c.last_job_id, j.state AS last_state
             FROM {p}cron_entries e
             LEFT JOIN {p}cron c ON c.name = e.name
             LEFT JOIN {p}jobs j ON j.id = c.last_job_id
             ORDER BY e.name"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let source: String = r.try_get("source")?;
                let job: String = r.try_get("job")?;
                let last_slot: Option<i64> = r.try_get("last_slot")?;
                let last_job: Option<i64> = r.try_get("last_job_id")?;
                let last_state: Option<String> = r.try_get("last_state")?;
                Ok(CronEntryRow {
                    name: r.try_get("name")?,
                    source: stored_source(&source)?,
                    expr: r.try_get("expr")?,
                    timezone: r.try_get("timezone")?,
                    missed: r.try_get("missed")?,
                    paused: r.try_get::<i64, _>("paused")? != 0,
                    job: stored_template(&job)?,
                    error: r.try_get("error")?,
                    // -1: a row the first firing reserved before recording its slot.
                    last_slot: last_slot.filter(|t| *t >= 0).map(row::time).transpose()?,
                    last_job: last_job.map(|id| (id, last_state.and_then(|s| s.parse().ok()))),
                    updated_at: row::time(r.try_get("updated_at")?)?,
                })
            })
            .collect()
    }

    pub(super) async fn save_cron_row(&self, entry: &CronEntryWrite) -> Result<()> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        let mut tx = w.transaction().await?;
        let before: Option<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT expr, timezone FROM {p}cron_entries WHERE name = ?1"
        )))
        .bind(&entry.name)
        .fetch_optional(&mut *tx)
        .await?;
        let written: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "INSERT INTO {p}cron_entries (name, source, expr, timezone, missed, job, updated_at)
             VALUES (?1, 'database', ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (name) DO UPDATE SET expr = excluded.expr, timezone = excluded.timezone,
                 missed = excluded.missed, job = excluded.job, error = NULL, updated_at = excluded.updated_at
             WHERE {p}cron_entries.source = 'database'
             RETURNING name"
        )))
        .bind(&entry.name)
        .bind(&entry.expr)
        .bind(&entry.timezone)
        .bind(&entry.missed)
        .bind(serde_json::to_string(&entry.job)?)
        .bind(now_ms())
        .fetch_optional(&mut *tx)
        .await?;
        if written.is_none() {
            return Err(code_entry(&entry.name));
        }
        // A new schedule starts afresh, as a new entry does (see the PostgreSQL engine).
        if before.is_some_and(|(expr, tz)| expr != entry.expr || tz != entry.timezone) {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {p}cron WHERE name = ?1")))
                .bind(&entry.name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn remove_cron_row(&self, name: &str) -> Result<bool> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        let mut tx = w.transaction().await?;
        let source: Option<String> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT source FROM {p}cron_entries WHERE name = ?1")))
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        match source.as_deref() {
            None => return Ok(false),
            Some("code") => return Err(code_entry(name)),
            Some(_) => {}
        }
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {p}cron_entries WHERE name = ?1")))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        // Its bookkeeping goes too: an entry added again under the name starts afresh.
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {p}cron WHERE name = ?1")))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn pause_cron_row(&self, name: &str, paused: bool) -> Result<bool> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        let done = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {p}cron_entries SET paused = ?2, updated_at = ?3 WHERE name = ?1"
        )))
        .bind(name)
        .bind(i64::from(paused))
        .bind(now_ms())
        .execute(&mut *w)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn run_cron_row(&self, name: &str) -> Result<Option<InsertedJob>> {
        let p = &self.prefix;
        let job: Option<String> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT job FROM {p}cron_entries WHERE name = ?1")))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        let Some(job) = job else { return Ok(None) };
        let job = crate::cron::run_now_job(name, &stored_template(&job)?);
        Ok(self.insert(vec![job]).await?.into_iter().next())
    }

    pub(super) async fn worker_rows(&self) -> Result<Vec<WorkerRow>> {
        let p = &self.prefix;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT name, queue, priority, max_attempts, weight, tags FROM {p}workers ORDER BY name"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let tags: String = r.try_get("tags")?;
                Ok(WorkerRow {
                    name: r.try_get("name")?,
                    queue: r.try_get("queue")?,
                    priority: r.try_get::<i64, _>("priority")? as u8,
                    max_attempts: r.try_get::<i64, _>("max_attempts")? as u32,
                    weight: r.try_get::<i64, _>("weight")? as u16,
                    tags: serde_json::from_str(&tags)
                        .map_err(|e| Error::Unexpected(format!("a worker's tags: {e}")))?,
                })
            })
            .collect()
    }

    pub(super) async fn publish_catalog_rows(
        &self,
        code: &[CronEntryWrite],
        workers: &[WorkerRow],
    ) -> Result<()> {
        let p = &self.prefix;
        let now = now_ms();
        let mut w = self.write().await?;
        let mut tx = w.transaction().await?;
        let names = serde_json::to_string(&code.iter().map(|e| e.name.as_str()).collect::<Vec<_>>())?;
        // Code entries the leader no longer has go, with their bookkeeping.
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {p}cron WHERE name IN (SELECT name FROM {p}cron_entries WHERE source = 'code'
                 AND name NOT IN (SELECT value FROM json_each(?1)))"
        )))
        .bind(&names)
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {p}cron_entries WHERE source = 'code' AND name NOT IN (SELECT value FROM json_each(?1))"
        )))
        .bind(&names)
        .execute(&mut *tx)
        .await?;
        for e in code {
            // A code entry takes over a stored entry of the same name: the deploy decides. Its
            // pause survives.
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {p}cron_entries (name, source, expr, timezone, missed, job, updated_at)
                 VALUES (?1, 'code', ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (name) DO UPDATE SET source = 'code', expr = excluded.expr, timezone = excluded.timezone,
                     missed = excluded.missed, job = excluded.job, error = NULL, updated_at = excluded.updated_at"
            )))
            .bind(&e.name)
            .bind(&e.expr)
            .bind(&e.timezone)
            .bind(&e.missed)
            .bind(serde_json::to_string(&e.job)?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {p}workers"))).execute(&mut *tx).await?;
        for w in workers {
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {p}workers (name, queue, priority, max_attempts, weight, tags, registered_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            )))
            .bind(&w.name)
            .bind(&w.queue)
            .bind(i64::from(w.priority))
            .bind(i64::from(w.max_attempts))
            .bind(i64::from(w.weight))
            .bind(serde_json::to_string(&w.tags)?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn set_cron_error_row(&self, name: &str, error: Option<&str>) -> Result<()> {
        let p = &self.prefix;
        let mut w = self.write().await?;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {p}cron_entries SET error = ?2 WHERE name = ?1 AND error IS NOT ?2"
        )))
        .bind(name)
        .bind(error)
        .execute(&mut *w)
        .await?;
        Ok(())
    }
}

fn stored_source(text: &str) -> Result<CronSource> {
    CronSource::parse(text).ok_or_else(|| Error::Unexpected(format!("unknown cron entry source `{text}`")))
}

fn stored_template(job: &str) -> Result<JobTemplate> {
    serde_json::from_str(job).map_err(|e| Error::Unexpected(format!("a stored cron entry's job: {e}")))
}
