//! `jobsmith` with its default settings, used the way `benches/throughput.rs` uses it: one queue
//! at concurrency C, `Db::insert` one at a time, `Db::insert_all` for batches.

use std::time::Instant;

use jobsmith::prelude::*;
use jobsmith::{Db, JobState, NewJob, job};
use serde_json::{Value, json};

use crate::common::{self, Measured, Settings};

/// The no-op job (`n` is a sequence number, or the insert time in the latency scenario).
#[job(queue = "bench", max_attempts = 1)]
async fn noop(n: u64) -> Result<(), String> {
    common::record(n);
    Ok(())
}

/// What the JSON lines say about this system's setup.
pub fn settings() -> Value {
    json!({"runtime": "db.runtime().queue(\"bench\", C)", "tuning": "defaults"})
}

async fn open(s: &Settings) -> (String, Db) {
    let (name, url) = common::fresh_database(&s.url).await;
    let db = Db::connect(&url).await.expect("connect");
    db.migrate().await.expect("jobsmith migrations");
    (name, db)
}

async fn close(db: &Db) {
    #[allow(irrefutable_let_patterns)]
    if let jobsmith::Pool::Postgres(pool) = db.pool() {
        pool.close().await;
    }
}

fn batch(from: u64, n: usize) -> Vec<NewJob> {
    (from..from + n as u64).map(|n| Noop { n }.build().expect("job")).collect()
}

async fn insert_one(db: &Db, n: u64) {
    db.insert(Noop { n }).await.expect("insert");
}

async fn insert_many(db: &Db, from: u64, n: usize) {
    db.insert_all(batch(from, n)).await.expect("insert_all");
}

/// Completed rows, from the engine's per-state counts.
async fn completed(db: &Db) -> Option<i64> {
    let counts = db.engine().count_by_state().await.ok()?;
    Some(counts.iter().filter(|c| c.state == JobState::Completed).map(|c| c.count).sum())
}

/// `insert-single`: `Db::insert` per job.
pub async fn insert_single(s: &Settings) -> (String, Measured) {
    let (name, db) = open(s).await;
    let m = common::time_single_inserts(s, |i| insert_one(&db, i)).await;
    close(&db).await;
    (name, m)
}

/// `insert-bulk`: `Db::insert_all` per batch.
pub async fn insert_bulk(s: &Settings) -> (String, Measured) {
    let (name, db) = open(s).await;
    let m = common::time_bulk_inserts(s, |from, n| insert_many(&db, from, n)).await;
    close(&db).await;
    (name, m)
}

/// `burn-down`: N queued jobs, timed from the runtime's start until all are completed.
pub async fn burn_down(s: &Settings) -> (String, Measured) {
    let (name, db) = open(s).await;
    common::queue_all(s, |from, n| insert_many(&db, from, n)).await;
    common::reset(false);
    let start = Instant::now();
    let rt = db.runtime().queue("bench", s.concurrency).start().await.expect("start");
    let m = common::await_burn_down(s, start, || completed(&db)).await;
    common::bounded(rt.shutdown()).await;
    close(&db).await;
    (name, m)
}

/// `latency`: an idle runtime, jobs inserted one at a time.
pub async fn latency(s: &Settings) -> (String, Measured) {
    let (name, db) = open(s).await;
    common::reset(true);
    let rt = db.runtime().queue("bench", s.concurrency).start().await.expect("start");
    let m = common::time_latency(s, |n| insert_one(&db, n)).await;
    common::bounded(rt.shutdown()).await;
    close(&db).await;
    (name, m)
}
