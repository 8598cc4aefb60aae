//! `graphile_worker` (the Rust port), tuned the way its guide suggests for many small jobs: its
//! local queue (`WorkerOptions::local_queue`, batch-fetching into the process) and batched
//! completions and failures (`complete_job_batch_delay`, `fail_job_batch_delay`). Jobs carry no
//! `queue_name`: in graphile_worker a named queue runs its jobs one at a time, so "one queue at
//! concurrency C" is the worker's unnamed pool at `concurrency(C)`. Completed jobs are deleted, so
//! the database shows a job finished when its row is gone from `graphile_worker._private_jobs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use graphile_worker::{
    IntoTaskHandlerResult, JobSpec, LocalQueueConfig, TaskHandler, Worker, WorkerContext, WorkerOptions,
    WorkerUtils,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::common::{self, Measured, Settings};

/// Jobs the local queue fetches and holds at once (its default, and the pipeline's batch).
pub const LOCAL_QUEUE_SIZE: usize = 100;
/// How long completions (and permanent failures) are collected before one flush.
pub const BATCH_DELAY: Duration = Duration::from_millis(5);
/// Pool size (graphile_worker's default for `database_url`).
pub const MAX_PG_CONN: u32 = 20;

/// The no-op job.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Noop {
    n: u64,
}

impl TaskHandler for Noop {
    const IDENTIFIER: &'static str = "noop";

    async fn run(self, _ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        common::record(self.n);
        Ok::<(), String>(())
    }
}

/// What the JSON lines say about this system's setup.
pub fn settings() -> Value {
    json!({"local_queue": {"size": LOCAL_QUEUE_SIZE, "queue_count": 1, "ttl": "default (5 min)", "refetch_delay": null},
           "complete_job_batch_delay_ms": BATCH_DELAY.as_millis(), "fail_job_batch_delay_ms": BATCH_DELAY.as_millis(),
           "max_pg_conn": MAX_PG_CONN, "job_spec": {"max_attempts": 1, "queue_name": null}})
}

/// A fresh database with graphile_worker's schema (migrated by `init`), and the worker on it.
async fn open(s: &Settings) -> (String, Arc<Worker>) {
    let (name, url) = common::fresh_database(&s.url).await;
    let worker = WorkerOptions::default()
        .database_url(&url)
        .max_pg_conn(MAX_PG_CONN)
        .concurrency(s.concurrency)
        .listen_os_shutdown_signals(false)
        .local_queue(LocalQueueConfig::default().with_size(LOCAL_QUEUE_SIZE))
        .complete_job_batch_delay(BATCH_DELAY)
        .fail_job_batch_delay(BATCH_DELAY)
        .define_job::<Noop>()
        .init()
        .await
        .expect("graphile_worker init");
    (name, Arc::new(worker))
}

fn spec() -> JobSpec {
    JobSpec { max_attempts: Some(1), ..JobSpec::default() }
}

async fn insert_one(utils: &WorkerUtils, n: u64) {
    utils.add_job(Noop { n }, spec()).await.expect("add_job");
}

async fn insert_many(utils: &WorkerUtils, from: u64, n: usize) {
    let spec = spec();
    let jobs: Vec<(Noop, &JobSpec)> = (from..from + n as u64).map(|n| (Noop { n }, &spec)).collect();
    utils.add_jobs(&jobs).await.expect("add_jobs");
}

/// Runs the worker in the background until `stop`.
fn spawn_worker(worker: &Arc<Worker>) -> tokio::task::JoinHandle<()> {
    let worker = worker.clone();
    tokio::spawn(async move {
        if let Err(e) = worker.run().await {
            eprintln!("graphile_worker: {e:?}");
        }
    })
}

/// Asks the worker to shut down, waits for it (bounded), and closes its pool.
async fn stop(worker: Arc<Worker>, running: tokio::task::JoinHandle<()>) {
    worker.request_shutdown();
    let abort = running.abort_handle();
    if !common::bounded(running).await {
        abort.abort();
    }
    worker.pg_pool().close().await;
}

/// `insert-single`: `WorkerUtils::add_job` per job.
pub async fn insert_single(s: &Settings) -> (String, Measured) {
    let (name, worker) = open(s).await;
    let utils = worker.create_utils();
    let m = common::time_single_inserts(s, |i| insert_one(&utils, i)).await;
    worker.pg_pool().close().await;
    (name, m)
}

/// `insert-bulk`: `WorkerUtils::add_jobs` per batch.
pub async fn insert_bulk(s: &Settings) -> (String, Measured) {
    let (name, worker) = open(s).await;
    let utils = worker.create_utils();
    let m = common::time_bulk_inserts(s, |from, n| insert_many(&utils, from, n)).await;
    worker.pg_pool().close().await;
    (name, m)
}

/// `burn-down`: N queued jobs, timed from `Worker::run` until all are gone from the table.
pub async fn burn_down(s: &Settings) -> (String, Measured) {
    let (name, worker) = open(s).await;
    let utils = worker.create_utils();
    common::queue_all(s, |from, n| insert_many(&utils, from, n)).await;
    common::reset(false);
    let pool = worker.pg_pool().clone();
    let jobs = s.jobs as i64;
    let start = Instant::now();
    let running = spawn_worker(&worker);
    let m = common::await_burn_down(s, start, || async {
        let left: Option<i64> = sqlx::query_scalar("SELECT count(*) FROM graphile_worker._private_jobs")
            .fetch_one(&pool)
            .await
            .ok();
        left.map(|left| jobs - left)
    })
    .await;
    stop(worker, running).await;
    (name, m)
}

/// `latency`: an idle worker, jobs added one at a time.
pub async fn latency(s: &Settings) -> (String, Measured) {
    let (name, worker) = open(s).await;
    let utils = worker.create_utils();
    common::reset(true);
    let running = spawn_worker(&worker);
    let m = common::time_latency(s, |n| insert_one(&utils, n)).await;
    stop(worker, running).await;
    (name, m)
}
