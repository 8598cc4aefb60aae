//! Versioned migrations for PostgreSQL, tracked in the instance's own table
//! (`<schema>.jobsmith_migrations`), so they never touch an application's `_sqlx_migrations`.

use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;

use crate::engine::common::validate_schema;
use crate::error::{Error, Result};

/// Every migration, in order: (version, name, SQL with `__SCHEMA__` placeholders).
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "jobs", include_str!("../../../migrations/postgres/0001_jobs.sql")),
    (2, "cluster", include_str!("../../../migrations/postgres/0002_cluster.sql")),
    (3, "finished_idx", include_str!("../../../migrations/postgres/0003_finished_idx.sql")),
    (4, "attempts_left", include_str!("../../../migrations/postgres/0004_attempts_left.sql")),
    (5, "nodes_connected_since", include_str!("../../../migrations/postgres/0005_nodes_connected_since.sql")),
    (6, "prune_idx", include_str!("../../../migrations/postgres/0006_prune_idx.sql")),
    (7, "results", include_str!("../../../migrations/postgres/0007_results.sql")),
    (8, "awaited", include_str!("../../../migrations/postgres/0008_awaited.sql")),
    (9, "steps", include_str!("../../../migrations/postgres/0009_steps.sql")),
    (10, "rate_limits", include_str!("../../../migrations/postgres/0010_rate_limits.sql")),
    (11, "job_weights", include_str!("../../../migrations/postgres/0011_job_weights.sql")),
    (12, "partitions", include_str!("../../../migrations/postgres/0012_partitions.sql")),
    (13, "partition_rates", include_str!("../../../migrations/postgres/0013_partition_rates.sql")),
    (14, "partition_weights", include_str!("../../../migrations/postgres/0014_partition_weights.sql")),
    (15, "sequences", include_str!("../../../migrations/postgres/0015_sequences.sql")),
    (16, "sequence_policies", include_str!("../../../migrations/postgres/0016_sequence_policies.sql")),
    (17, "cron_entries", include_str!("../../../migrations/postgres/0017_cron_entries.sql")),
];

/// Applies the pending migrations of the instance in `schema`, in one transaction under an
/// advisory lock, so several nodes starting at once apply each migration exactly once.
///
/// Running it again is a no-op. A database migrated by a newer jobsmith is refused with a clear
/// error instead of being half-understood.
pub async fn migrate(pool: &PgPool, schema: &str) -> Result<()> {
    validate_schema(schema)?;
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("jobsmith.migrate.{schema}"))
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.jobsmith_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    )))
    .execute(&mut *tx)
    .await?;
    let applied: Vec<i32> =
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT version FROM {schema}.jobsmith_migrations")))
            .fetch_all(&mut *tx)
            .await?;
    let newest_known = MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0);
    if let Some(newest) = applied.iter().copied().max().filter(|v| *v > newest_known) {
        return Err(Error::Migration(format!(
            "schema `{schema}` is at version {newest}, newer than this jobsmith knows ({newest_known}); upgrade jobsmith"
        )));
    }
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        sqlx::raw_sql(AssertSqlSafe(sql.replace("__SCHEMA__", schema)))
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::Migration(format!("migration {version} ({name}) failed: {e}")))?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {schema}.jobsmith_migrations (version, name) VALUES ($1, $2)"
        )))
        .bind(version)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tracing::info!(target: "jobsmith", version, name, schema, "jobsmith migration applied");
    }
    tx.commit().await?;
    Ok(())
}
