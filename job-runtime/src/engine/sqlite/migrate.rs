//! Versioned migrations for SQLite, tracked in `<prefix>migrations`.

use sqlx::AssertSqlSafe;
use sqlx::sqlite::{SqliteConnection, SqlitePool};

use crate::error::{Error, Result};

/// Every migration, in order: (version, name, SQL with `__P__` placeholders).
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "jobs", include_str!("../../../migrations/sqlite/0001_jobs.sql")),
    (2, "cluster", include_str!("../../../migrations/sqlite/0002_cluster.sql")),
    (3, "attempts_left", include_str!("../../../migrations/sqlite/0003_attempts_left.sql")),
    (4, "nodes_connected_since", include_str!("../../../migrations/sqlite/0004_nodes_connected_since.sql")),
    (5, "attempts_left_check", include_str!("../../../migrations/sqlite/0005_attempts_left_check.sql")),
    (6, "results", include_str!("../../../migrations/sqlite/0006_results.sql")),
    (7, "awaited", include_str!("../../../migrations/sqlite/0007_awaited.sql")),
    (8, "steps", include_str!("../../../migrations/sqlite/0008_steps.sql")),
    (9, "rate_limits", include_str!("../../../migrations/sqlite/0009_rate_limits.sql")),
    (10, "job_weights", include_str!("../../../migrations/sqlite/0010_job_weights.sql")),
    (11, "partitions", include_str!("../../../migrations/sqlite/0011_partitions.sql")),
    (12, "partition_limits", include_str!("../../../migrations/sqlite/0012_partition_limits.sql")),
    (13, "partition_rates", include_str!("../../../migrations/sqlite/0013_partition_rates.sql")),
    (14, "partition_weights", include_str!("../../../migrations/sqlite/0014_partition_weights.sql")),
    (15, "sequences", include_str!("../../../migrations/sqlite/0015_sequences.sql")),
    (16, "sequence_policies", include_str!("../../../migrations/sqlite/0016_sequence_policies.sql")),
    (17, "cron_entries", include_str!("../../../migrations/sqlite/0017_cron_entries.sql")),
];

/// Applies pending migrations for the instance whose tables start with `prefix`, in one
/// immediate (write-locked) transaction. Idempotent; a newer schema is refused.
pub async fn migrate(pool: &SqlitePool, prefix: &str) -> Result<()> {
    migrate_on(&mut *pool.acquire().await?, prefix).await
}

/// [`migrate`] through this connection.
pub(super) async fn migrate_on(conn: &mut SqliteConnection, prefix: &str) -> Result<()> {
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let result = async {
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {prefix}migrations (
                version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
        )))
        .execute(&mut *conn)
        .await?;
        let applied: Vec<i32> = sqlx::query_scalar(AssertSqlSafe(format!("SELECT version FROM {prefix}migrations")))
            .fetch_all(&mut *conn)
            .await?;
        let newest_known = MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0);
        if let Some(newest) = applied.iter().copied().max().filter(|v| *v > newest_known) {
            return Err(Error::Migration(format!(
                "database is at version {newest}, newer than this jobsmith knows ({newest_known}); upgrade jobsmith"
            )));
        }
        for (version, name, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            sqlx::raw_sql(AssertSqlSafe(sql.replace("__P__", prefix)))
                .execute(&mut *conn)
                .await
                .map_err(|e| Error::Migration(format!("migration {version} ({name}) failed: {e}")))?;
            sqlx::query(AssertSqlSafe(format!("INSERT INTO {prefix}migrations (version, name) VALUES (?1, ?2)")))
                .bind(version)
                .bind(name)
                .execute(&mut *conn)
                .await?;
            tracing::info!(target: "jobsmith", version, name, "jobsmith sqlite migration applied");
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            Ok(())
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(e)
        }
    }
}
