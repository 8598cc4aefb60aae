//! `apalis` 1.0 on its PostgreSQL storage (`apalis-postgres`), with its documented defaults
//! (`Config::default()`: fetch batches of 10, results persisted, tasks locked) on one queue,
//! `bench`. The worker is woken by LISTEN/NOTIFY (`PostgresStorage::with_pubsub`): without it,
//! an idle worker is not woken by inserts from another handle. Concurrency C is apalis's
//! `concurrency(C)` layer with `parallelize(tokio::spawn)`, as its README shows. Inserts go
//! through the `TaskSink` trait: `push_task` per job, `push_all` per batch (the sink buffers the
//! batch and writes it as one `INSERT ... SELECT unnest(...)`, the same path `push_bulk` takes).

use std::time::Instant;

use ::apalis::prelude::*;
use apalis_postgres::{Config, PgPool, PostgresStorage};
use futures_util::stream;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::common::{self, Measured, Payload, Settings};

/// The queue (apalis's `job_type`).
const QUEUE: &str = "bench";

/// What the JSON lines say about this system's setup.
pub fn settings() -> Value {
    let c = Config::default();
    json!({"config": {"queue": QUEUE, "batch_size": c.batch_size, "lock_tasks": c.lock_tasks,
                      "persist_results": c.persist_results},
           "pubsub": true, "layers": ["concurrency(C)", "parallelize(tokio::spawn)"], "max_attempts": 1})
}

/// The no-op job.
async fn noop(job: Payload) -> Result<(), BoxDynError> {
    common::record(job.n);
    Ok(())
}

/// A fresh database with apalis's schema, a pool on it, and a storage for the queue.
async fn open(s: &Settings) -> (String, PgPool, PostgresStorage<Payload>) {
    let (name, url) = common::fresh_database(&s.url).await;
    let pool = PgPool::connect(&url).await.expect("connect");
    PostgresStorage::<()>::setup(&pool).await.expect("apalis migrations");
    let storage = PostgresStorage::<Payload>::new(&pool).with_config(Config::default().queue(QUEUE));
    (name, pool, storage)
}

fn task(n: u64) -> Task<Payload> {
    TaskBuilder::new(Payload { n }).max_attempts(1).build()
}

async fn insert_one(storage: &mut PostgresStorage<Payload>, n: u64) {
    storage.push_task(task(n)).await.expect("push_task");
}

async fn insert_many(storage: &mut PostgresStorage<Payload>, from: u64, n: usize) {
    let tasks: Vec<Task<Payload>> = (from..from + n as u64).map(task).collect();
    storage.push_all(stream::iter(tasks)).await.expect("push_all");
}

/// Runs `body` while a worker on `storage` runs beside it in the same task, then stops the worker
/// (waiting at most [`common::SHUTDOWN_WAIT`]) and returns what `body` measured. (The worker is
/// not `tokio::spawn`ed: its future, with `parallelize(tokio::spawn)` inside, does not satisfy the
/// compiler's `Send` check for a spawned future.)
async fn with_worker<Fut>(storage: &PostgresStorage<Payload>, concurrency: usize, body: Fut) -> Measured
where
    Fut: Future<Output = Measured>,
{
    let ctx = WorkerContext::new("side-by-side");
    let worker = WorkerBuilder::new(&ctx)
        .backend(storage.clone().with_pubsub())
        .concurrency(concurrency)
        .parallelize(tokio::spawn)
        .build(noop);
    let (stopped_tx, stopped_rx) = oneshot::channel::<()>();
    let run = async move {
        let run = worker.run();
        tokio::pin!(run);
        let ended = tokio::select! {
            r = &mut run => Some(r),
            _ = stopped_rx => tokio::time::timeout(common::SHUTDOWN_WAIT, run).await.ok(),
        };
        match ended {
            Some(Err(e)) => eprintln!("apalis: {e}"),
            None => eprintln!("apalis: the worker did not stop in time"),
            Some(Ok(())) => {}
        }
    };
    let body = async move {
        let m = body.await;
        let _ = ctx.stop();
        let _ = stopped_tx.send(());
        m
    };
    tokio::join!(run, body).1
}

/// `insert-single`: `TaskSink::push_task` per job.
pub async fn insert_single(s: &Settings) -> (String, Measured) {
    let (name, pool, storage) = open(s).await;
    let m = common::time_single_inserts(s, |i| {
        let mut storage = storage.clone();
        async move { insert_one(&mut storage, i).await }
    })
    .await;
    pool.close().await;
    (name, m)
}

/// `insert-bulk`: `TaskSink::push_all` per batch.
pub async fn insert_bulk(s: &Settings) -> (String, Measured) {
    let (name, pool, storage) = open(s).await;
    let m = common::time_bulk_inserts(s, |from, n| {
        let mut storage = storage.clone();
        async move { insert_many(&mut storage, from, n).await }
    })
    .await;
    pool.close().await;
    (name, m)
}

/// `burn-down`: N queued jobs, timed from the worker's start until all show `Done`.
pub async fn burn_down(s: &Settings) -> (String, Measured) {
    let (name, pool, storage) = open(s).await;
    common::queue_all(s, |from, n| {
        let mut storage = storage.clone();
        async move { insert_many(&mut storage, from, n).await }
    })
    .await;
    common::reset(false);
    let start = Instant::now();
    let finished = common::await_burn_down(s, start, || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM apalis.jobs WHERE status = 'Done'")
            .fetch_one(&pool)
            .await
            .ok()
    });
    let m = with_worker(&storage, s.concurrency, finished).await;
    pool.close().await;
    (name, m)
}

/// `latency`: an idle worker, jobs pushed one at a time.
pub async fn latency(s: &Settings) -> (String, Measured) {
    let (name, pool, storage) = open(s).await;
    common::reset(true);
    let timed = common::time_latency(s, |n| {
        let mut storage = storage.clone();
        async move { insert_one(&mut storage, n).await }
    });
    let m = with_worker(&storage, s.concurrency, timed).await;
    pool.close().await;
    (name, m)
}
