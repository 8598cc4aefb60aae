//! `pipeline`: a hand-written SQL pipeline on jobsmith's own table (`jobsmith.jobs`, made by
//! jobsmith's migration), the floor the frameworks are held against. One fetcher claims batches of
//! up to [`CLAIM_BATCH`] rows with `FOR UPDATE SKIP LOCKED` into a tokio mpsc buffer of
//! [`BUFFER`]; C worker tasks run the no-op job; one completer writes completions in batches
//! (`UPDATE ... WHERE id = ANY($1)`). The claim and completion statements have the shape of
//! `floor_once` in `benches/throughput.rs`; the claim also returns `args`, which the job needs.
//! It has no LISTEN: an idle fetcher polls every [`IDLE_POLL`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc};

use crate::common::{self, Measured, Payload, Settings};

/// Rows one claim takes at most.
pub const CLAIM_BATCH: i64 = 100;
/// Claimed jobs the in-process buffer holds.
pub const BUFFER: usize = 100;
/// How long an idle fetcher waits before it claims again.
pub const IDLE_POLL: Duration = Duration::from_millis(5);

const INSERT_ONE: &str = "INSERT INTO jobsmith.jobs (state, worker, queue, args, max_attempts) \
                          VALUES ('available', 'noop', 'bench', $1, 1)";
const INSERT_MANY: &str = "INSERT INTO jobsmith.jobs (state, worker, queue, args, max_attempts) \
                           SELECT 'available', 'noop', 'bench', a, 1 FROM unnest($1::jsonb[]) AS t(a)";
const CLAIM: &str = "WITH picked AS MATERIALIZED ( \
        SELECT id FROM jobsmith.jobs WHERE state = 'available' AND queue = 'bench' \
        ORDER BY priority, scheduled_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
     UPDATE jobsmith.jobs j SET state = 'executing', attempt = j.attempt + 1, \
         attempted_at = now(), attempted_by = 'pipeline' \
     FROM picked WHERE j.id = picked.id RETURNING j.id, j.args";
const COMPLETE: &str = "UPDATE jobsmith.jobs SET state = 'completed', completed_at = now() \
                        WHERE id = ANY($1) AND state = 'executing'";
const COUNT_COMPLETED: &str = "SELECT count(*) FROM jobsmith.jobs WHERE state = 'completed'";

/// What the JSON lines say about this system's setup.
pub fn settings() -> Value {
    json!({"fetchers": 1, "claim_batch": CLAIM_BATCH, "buffer": BUFFER, "completers": 1,
           "idle_poll_ms": IDLE_POLL.as_millis(), "table": "jobsmith.jobs"})
}

/// A fresh database with jobsmith's table, and a pool on it.
async fn open(s: &Settings) -> (String, PgPool) {
    let (name, url) = common::fresh_database(&s.url).await;
    let db = jobsmith::Db::connect(&url).await.expect("connect");
    db.migrate().await.expect("jobsmith migrations");
    close_jobsmith(&db).await;
    let pool = PgPool::connect(&url).await.expect("connect");
    (name, pool)
}

async fn close_jobsmith(db: &jobsmith::Db) {
    #[allow(irrefutable_let_patterns)]
    if let jobsmith::Pool::Postgres(pool) = db.pool() {
        pool.close().await;
    }
}

async fn insert_one(pool: &PgPool, n: u64) {
    sqlx::query(INSERT_ONE).bind(json!({ "n": n })).execute(pool).await.expect("insert");
}

async fn insert_many(pool: &PgPool, from: u64, n: usize) {
    let args: Vec<Value> = (from..from + n as u64).map(|k| json!({ "n": k })).collect();
    sqlx::query(INSERT_MANY).bind(&args).execute(pool).await.expect("insert");
}

/// The running pipeline: stop it with [`Pipeline::stop`].
struct Pipeline {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Pipeline {
    fn start(pool: &PgPool, concurrency: usize) -> Pipeline {
        let stop = Arc::new(AtomicBool::new(false));
        let (job_tx, job_rx) = mpsc::channel::<(i64, Value)>(BUFFER);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<i64>();
        let mut tasks = Vec::new();
        // The fetcher: claims a batch, hands it to the buffer (waiting while the buffer is full).
        tasks.push({
            let pool = pool.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let rows: Vec<(i64, Value)> =
                        match sqlx::query_as(CLAIM).bind(CLAIM_BATCH).fetch_all(&pool).await {
                            Ok(rows) => rows,
                            Err(_) if stop.load(Ordering::Relaxed) => break,
                            Err(e) => panic!("claim: {e}"),
                        };
                    if rows.is_empty() {
                        tokio::time::sleep(IDLE_POLL).await;
                        continue;
                    }
                    for row in rows {
                        if job_tx.send(row).await.is_err() {
                            return;
                        }
                    }
                }
            })
        });
        // The workers: take one job at a time from the buffer, run it, report its id.
        for _ in 0..concurrency {
            let job_rx = job_rx.clone();
            let done_tx = done_tx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let next = job_rx.lock().await.recv().await;
                    let Some((id, args)) = next else { break };
                    let payload: Payload = serde_json::from_value(args).expect("payload");
                    common::record(payload.n);
                    if done_tx.send(id).is_err() {
                        break;
                    }
                }
            }));
        }
        drop(done_tx);
        // The completer: writes whatever completions have piled up, in one statement.
        tasks.push({
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                while let Some(id) = done_rx.recv().await {
                    ids.clear();
                    ids.push(id);
                    while let Ok(more) = done_rx.try_recv() {
                        ids.push(more);
                    }
                    if sqlx::query(COMPLETE).bind(&ids).execute(&pool).await.is_err() {
                        break;
                    }
                }
            })
        });
        Pipeline { stop, tasks }
    }

    /// Stops the fetcher; the workers drain the buffer and the completer writes what they did.
    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            let abort = t.abort_handle();
            if !common::bounded(t).await {
                abort.abort();
            }
        }
    }
}

/// `insert-single`: one bare autocommit INSERT per job.
pub async fn insert_single(s: &Settings) -> (String, Measured) {
    let (name, pool) = open(s).await;
    let m = common::time_single_inserts(s, |i| insert_one(&pool, i)).await;
    pool.close().await;
    (name, m)
}

/// `insert-bulk`: `INSERT ... SELECT FROM unnest($1::jsonb[])` per batch.
pub async fn insert_bulk(s: &Settings) -> (String, Measured) {
    let (name, pool) = open(s).await;
    let m = common::time_bulk_inserts(s, |from, n| insert_many(&pool, from, n)).await;
    pool.close().await;
    (name, m)
}

/// `burn-down`: N queued jobs, timed from the pipeline's start until all are completed.
pub async fn burn_down(s: &Settings) -> (String, Measured) {
    let (name, pool) = open(s).await;
    common::queue_all(s, |from, n| insert_many(&pool, from, n)).await;
    common::reset(false);
    let start = Instant::now();
    let pipeline = Pipeline::start(&pool, s.concurrency);
    let m = common::await_burn_down(s, start, || async {
        sqlx::query_scalar::<_, i64>(COUNT_COMPLETED).fetch_one(&pool).await.ok()
    })
    .await;
    pipeline.stop().await;
    pool.close().await;
    (name, m)
}

/// `latency`: an idle pipeline, jobs inserted one at a time.
pub async fn latency(s: &Settings) -> (String, Measured) {
    let (name, pool) = open(s).await;
    common::reset(true);
    let pipeline = Pipeline::start(&pool, s.concurrency);
    let m = common::time_latency(s, |n| insert_one(&pool, n)).await;
    pipeline.stop().await;
    pool.close().await;
    (name, m)
}
