//! One node of a test cluster, run as its own process by `tests/cluster.rs`.
//!
//! Configured by environment: `DATABASE_URL`, `NODE_NAME`, `CONCURRENCY` (default 20),
//! `GLOBAL_LIMIT` (optional), `RATE_LIMIT` (optional, as `10/1s`), `PARTITION_LIMIT` (optional;
//! `cluster_tenant_work` jobs are partitioned by tenant and gauge each tenant's concurrency in
//! `cluster_tenant_gauge`), `SEQUENCE` (optional, `wait` or `continue`: each tenant's jobs run as
//! a sequence), `CRON=1` (a per-second cron entry; with `CRON_POLICY=default` it
//! keeps the default missed-slot policy), `TIMINGS=default` (the library's default heartbeat,
//! lease, TTL and rescue timings instead of short test ones), `RECORD_LAST=1` (a job sleeps first
//! and records its run as its last step, with no gauge: a run is recorded only if it finished, so
//! a fault test counts true duplicate runs), `LEDGER` (the concurrency of the `ledger` queue, whose
//! jobs write in their own transaction; not run without it). Jobs record every run in the `cluster_runs` table and
//! the cluster-wide concurrency in `cluster_gauge`, so the test can check from outside what ran
//! where. SIGTERM shuts down cleanly; SIGKILL is the crash under test.

use std::time::Duration;

use jobsmith::{CronEntry, JobTx, MissedSlots, State, job};
use sqlx::PgPool;

/// What the jobs take as state: the database they record into and this node's name.
#[derive(Clone)]
struct Node {
    pool: PgPool,
    name: String,
}

/// Records the run, holds a slot of the cluster-wide gauge for `sleep_ms`, and completes.
#[job(queue = "work", max_attempts = 5)]
async fn cluster_work(
    ctx: jobsmith::JobContext,
    State(node): State<Node>,
    n: i64,
    sleep_ms: u64,
) -> Result<(), sqlx::Error> {
    let started_at = chrono::Utc::now();
    if std::env::var("RECORD_LAST").as_deref() == Ok("1") {
        tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
        return record_run(&ctx, &node, n, chrono::Utc::now()).await;
    }
    record_run(&ctx, &node, n, started_at).await?;
    sqlx::query("UPDATE cluster_gauge SET cur = cur + 1, peak = greatest(peak, cur + 1)")
        .execute(&node.pool)
        .await?;
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    sqlx::query("UPDATE cluster_gauge SET cur = cur - 1").execute(&node.pool).await?;
    Ok(())
}

/// One row of `cluster_runs`: this node ran job `ctx.id` in this attempt, started (its fn was
/// entered) at `started_at` under the claim stamped `attempted_at`.
async fn record_run(
    ctx: &jobsmith::JobContext,
    node: &Node,
    n: i64,
    started_at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO cluster_runs (job_id, n, node, attempt, claimed_at, started_at)
         VALUES ($1, $2, $3, $4, (SELECT attempted_at FROM jobsmith.jobs WHERE id = $1), $5)",
    )
    .bind(ctx.id)
    .bind(n)
    .bind(&node.name)
    .bind(ctx.attempt as i32)
    .bind(started_at)
    .execute(&node.pool)
    .await?;
    Ok(())
}

/// Records its run outside its transaction (so a run cut short by a crash still shows), then
/// writes one `cluster_ledger` row in the job's own transaction and holds it open for `sleep_ms`.
/// The row commits with the job's completion or not at all: one row per job, however many runs.
#[job(queue = "ledger", max_attempts = 20)]
async fn cluster_ledger(
    ctx: jobsmith::JobContext,
    tx: &mut JobTx,
    State(node): State<Node>,
    n: i64,
    sleep_ms: u64,
) -> Result<(), sqlx::Error> {
    record_run(&ctx, &node, n, chrono::Utc::now()).await?;
    let conn = tx.postgres().expect("the cluster runs on PostgreSQL");
    sqlx::query("INSERT INTO cluster_ledger (job_id, n) VALUES ($1, $2)")
        .bind(ctx.id)
        .bind(n)
        .execute(conn)
        .await?;
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    Ok(())
}

/// Records the run and holds a slot of its tenant's gauge for `sleep_ms`: the queue is
/// partitioned by tenant when `PARTITION_LIMIT` is set.
#[job(queue = "work", max_attempts = 5, partition = "tenant")]
async fn cluster_tenant_work(
    ctx: jobsmith::JobContext,
    State(node): State<Node>,
    tenant: String,
    n: i64,
    sleep_ms: u64,
) -> Result<(), sqlx::Error> {
    record_run(&ctx, &node, n, chrono::Utc::now()).await?;
    sqlx::query(
        "INSERT INTO cluster_tenant_gauge AS g (tenant, cur, peak) VALUES ($1, 1, 1)
         ON CONFLICT (tenant) DO UPDATE SET cur = g.cur + 1, peak = greatest(g.peak, g.cur + 1)",
    )
    .bind(&tenant)
    .execute(&node.pool)
    .await?;
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    sqlx::query("UPDATE cluster_tenant_gauge SET cur = cur - 1 WHERE tenant = $1")
        .bind(&tenant)
        .execute(&node.pool)
        .await?;
    Ok(())
}

/// Inserted by the per-second cron entry; the slot is in its meta.
/// Records `n * n` as its result, for a test process that awaits it without a runtime.
#[job(queue = "work")]
async fn cluster_square(n: i64) -> Result<i64, String> {
    Ok(n * n)
}

#[job(queue = "work")]
async fn cluster_tick() -> Result<(), String> {
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let url = std::env::var("DATABASE_URL")?;
    let name = std::env::var("NODE_NAME")?;
    let concurrency: usize = std::env::var("CONCURRENCY").ok().and_then(|c| c.parse().ok()).unwrap_or(20);
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(10).connect(&url).await?;
    let node = Node { pool: pool.clone(), name: name.clone() };

    let mut builder = jobsmith::Db::postgres(pool, "jobsmith")?
        .runtime()
        .state(node)
        .node_name(&name)
        .queue("work", concurrency)
        .poll_interval(Duration::from_millis(200))
        .shutdown_grace(Duration::from_secs(10));
    if std::env::var("TIMINGS").as_deref() != Ok("default") {
        builder = builder
            .heartbeat_interval(Duration::from_millis(200))
            .node_ttl(Duration::from_secs(2))
            .leader_lease(Duration::from_secs(1))
            .rescue_interval(Duration::from_millis(250));
    }
    if let Some(ledger) = std::env::var("LEDGER").ok().and_then(|l| l.parse().ok()) {
        builder = builder.queue("ledger", ledger);
    }
    if let Some(limit) = std::env::var("GLOBAL_LIMIT").ok().and_then(|l| l.parse().ok()) {
        builder = builder.global_limit("work", limit);
    }
    if let Ok(rate) = std::env::var("RATE_LIMIT") {
        builder = builder.rate_limit("work", rate.parse()?);
    }
    if let Some(limit) = std::env::var("PARTITION_LIMIT").ok().and_then(|l| l.parse().ok()) {
        builder = builder.partition_limit("work", limit);
    }
    if let Ok(policy) = std::env::var("SEQUENCE") {
        builder = builder.sequence("work", policy.parse()?);
    }
    if std::env::var("CRON").as_deref() == Ok("1") {
        let mut entry = CronEntry::new("* * * * * *", ClusterTick {})?.named("tick");
        if std::env::var("CRON_POLICY").as_deref() != Ok("default") {
            entry = entry.missed(MissedSlots::RunAll { max: 60 });
        }
        builder = builder.cron_entry(entry);
    }
    let runtime = builder.start().await?;
    // Listen before announcing readiness: a SIGTERM sent on reading the line must find the handler.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    println!("ready {name}");
    term.recv().await;
    runtime.shutdown().await?;
    println!("stopped {name}");
    Ok(())
}
