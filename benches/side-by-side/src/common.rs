//! What every system shares: the settings, the in-process counters the no-op job touches, the
//! monotonic clock, fresh databases, and the timing loops that turn a run into a [`Measured`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// Jobs per call of a bulk insert (and of the untimed queueing before a burn-down).
pub const BULK_BATCH: usize = 5_000;
/// Jobs of the latency scenario.
pub const LATENCY_JOBS: usize = 200;
/// The pause between two inserts of the latency scenario.
pub const LATENCY_GAP: Duration = Duration::from_millis(10);
/// How long the worker sits idle before the latency scenario's first insert.
pub const LATENCY_IDLE: Duration = Duration::from_millis(500);
/// The most a worker's shutdown may take before the run goes on without it.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(15);

/// The command line, shared by every measurement.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The server: each measurement makes its own database on it.
    pub url: String,
    /// N: jobs of `insert-bulk` and `burn-down`.
    pub jobs: usize,
    /// K: jobs of `insert-single`.
    pub single_jobs: usize,
    /// C: the worker's concurrency (one queue).
    pub concurrency: usize,
    /// The most one measurement may take.
    pub timeout: Duration,
}

impl Settings {
    /// The settings as printed with every measurement.
    pub fn to_json(&self) -> Value {
        json!({
            "jobs": self.jobs,
            "single_jobs": self.single_jobs,
            "concurrency": self.concurrency,
            "bulk_batch": BULK_BATCH,
            "timeout_secs": self.timeout.as_secs(),
        })
    }
}

/// The payload of every system's no-op job: `{"n": ...}`. In the latency scenario `n` is the
/// insert time, in microseconds since [`micros_now`]'s origin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    /// A sequence number, or the insert time.
    pub n: u64,
}

/// One measurement's outcome.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The figure (None: nothing to report, e.g. a latency run in which no job started).
    pub figure: Option<f64>,
    /// What the figure counts.
    pub unit: &'static str,
    /// Anything else worth printing (seconds, timeout, percentiles...).
    pub extra: Value,
}

static DONE: AtomicUsize = AtomicUsize::new(0);
static RECORDING: AtomicBool = AtomicBool::new(false);
static LATENCIES: Mutex<Vec<f64>> = Mutex::new(Vec::new());
static T0: OnceLock<Instant> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// Microseconds since a process-wide origin, from the monotonic clock.
pub fn micros_now() -> u64 {
    T0.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// The body of every system's no-op job: counts it, and in the latency scenario records how long
/// it waited since its insert (`n`).
pub fn record(n: u64) {
    if RECORDING.load(Ordering::Relaxed) {
        let waited_ms = micros_now().saturating_sub(n) as f64 / 1000.0;
        LATENCIES.lock().unwrap().push(waited_ms);
    }
    DONE.fetch_add(1, Ordering::Relaxed);
}

/// Jobs run since the last [`reset`].
pub fn done() -> usize {
    DONE.load(Ordering::Relaxed)
}

/// Zeroes the counter and the latency samples; `recording` turns latency recording on or off.
pub fn reset(recording: bool) {
    DONE.store(0, Ordering::SeqCst);
    LATENCIES.lock().unwrap().clear();
    RECORDING.store(recording, Ordering::SeqCst);
}

/// A fresh database on the server: returns its name and URL.
pub async fn fresh_database(url: &str) -> (String, String) {
    let name = format!("sbs_{}_{}", std::process::id(), DATABASES.fetch_add(1, Ordering::SeqCst));
    let mut admin = PgConnection::connect(url).await.expect("connect to PostgreSQL");
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE");
    admin.close().await.ok();
    let mut db_url = url.to_string();
    let cut = db_url.rfind('/').expect("a URL with a database name") + 1;
    // Keep any query string (`?sslmode=...`) after the name.
    let query = db_url[cut..].find('?').map(|q| db_url[cut + q..].to_string()).unwrap_or_default();
    db_url.truncate(cut);
    db_url.push_str(&name);
    db_url.push_str(&query);
    (name, db_url)
}

/// Drops one database made by [`fresh_database`] (its connections are ended).
pub async fn drop_database(url: &str, name: &str) {
    if let Ok(mut admin) = PgConnection::connect(url).await {
        let _ = sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&mut admin)
            .await;
        admin.close().await.ok();
    }
}

/// Drops every database this process made that is still there.
pub async fn drop_all_databases(url: &str) {
    let Ok(mut admin) = PgConnection::connect(url).await else { return };
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
        .bind(format!("sbs\\_{}\\_%", std::process::id()))
        .fetch_all(&mut admin)
        .await
        .unwrap_or_default();
    admin.close().await.ok();
    for name in names {
        drop_database(url, &name).await;
    }
}

/// Runs `insert(i)` for `i` in `0..k`, one after another, and reports jobs/s (stopping early at
/// the timeout, with the rate so far).
pub async fn time_single_inserts<F, Fut>(s: &Settings, mut insert: F) -> Measured
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    let mut inserted = 0;
    let mut timed_out = false;
    for i in 0..s.single_jobs {
        if start.elapsed() > s.timeout {
            timed_out = true;
            break;
        }
        insert(i as u64).await;
        inserted += 1;
    }
    rate(inserted, start.elapsed(), timed_out, json!({"inserted": inserted}))
}

/// Runs `insert_batch(from, n)` over `0..jobs` in batches of [`BULK_BATCH`] and reports jobs/s.
pub async fn time_bulk_inserts<F, Fut>(s: &Settings, mut insert_batch: F) -> Measured
where
    F: FnMut(u64, usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    let mut inserted = 0;
    let mut timed_out = false;
    while inserted < s.jobs {
        if start.elapsed() > s.timeout {
            timed_out = true;
            break;
        }
        let n = BULK_BATCH.min(s.jobs - inserted);
        insert_batch(inserted as u64, n).await;
        inserted += n;
    }
    rate(inserted, start.elapsed(), timed_out, json!({"inserted": inserted}))
}

/// Queues `0..jobs` through `insert_batch` in batches of [`BULK_BATCH`], untimed.
pub async fn queue_all<F, Fut>(s: &Settings, mut insert_batch: F)
where
    F: FnMut(u64, usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut i = 0;
    while i < s.jobs {
        let n = BULK_BATCH.min(s.jobs - i);
        insert_batch(i as u64, n).await;
        i += n;
    }
}

/// Waits, from `start` (when the worker was started), until the jobs have all run in this
/// process and then until `finished_in_db` (rows the database shows finished; None where the
/// system gives no such count) reaches N, or until the timeout; reports jobs/s.
pub async fn await_burn_down<F, Fut>(s: &Settings, start: Instant, mut finished_in_db: F) -> Measured
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<i64>>,
{
    let deadline = start + s.timeout;
    while done() < s.jobs && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let ran_at = start.elapsed();
    let mut in_db = None;
    if done() >= s.jobs {
        loop {
            in_db = finished_in_db().await;
            match in_db {
                Some(n) if (n as usize) < s.jobs && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => break,
            }
        }
    }
    let elapsed = start.elapsed();
    let timed_out = done() < s.jobs || in_db.is_some_and(|n| (n as usize) < s.jobs);
    let counted = match in_db {
        Some(n) => (n as usize).min(done()),
        None => done(),
    };
    rate(
        counted,
        elapsed,
        timed_out,
        json!({"ran_in_process": done(), "finished_in_db": in_db,
               "seconds_until_ran_in_process": round3(ran_at.as_secs_f64())}),
    )
}

/// The latency scenario once the system's worker is running idle: [`LATENCY_JOBS`] inserts
/// [`LATENCY_GAP`] apart, each carrying its insert time; reports p50 (and p99) of insert-to-start.
pub async fn time_latency<F, Fut>(s: &Settings, mut insert: F) -> Measured
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::time::sleep(LATENCY_IDLE).await;
    let start = Instant::now();
    for _ in 0..LATENCY_JOBS {
        insert(micros_now()).await;
        tokio::time::sleep(LATENCY_GAP).await;
    }
    let deadline = start + s.timeout;
    while done() < LATENCY_JOBS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    RECORDING.store(false, Ordering::SeqCst);
    let mut l = std::mem::take(&mut *LATENCIES.lock().unwrap());
    l.sort_by(f64::total_cmp);
    let p50 = percentile(&l, 0.5);
    Measured {
        figure: p50,
        unit: "ms (p50 insert-to-start)",
        extra: json!({"p50_ms": p50, "p99_ms": percentile(&l, 0.99), "max_ms": percentile(&l, 1.0),
                      "samples": l.len(), "timeout": l.len() < LATENCY_JOBS}),
    }
}

/// jobs/s for `n` jobs over `elapsed`.
fn rate(n: usize, elapsed: Duration, timed_out: bool, extra: Value) -> Measured {
    let secs = elapsed.as_secs_f64();
    let mut extra = extra;
    extra["seconds"] = json!(round3(secs));
    extra["timeout"] = json!(timed_out);
    Measured { figure: Some(if secs > 0.0 { n as f64 / secs } else { 0.0 }), unit: "jobs/s", extra }
}

/// The `p` quantile (nearest rank) of sorted samples, in ms to 0.01.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some((sorted[idx] * 100.0).round() / 100.0)
}

/// `x` to three decimals.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Awaits `fut` for at most [`SHUTDOWN_WAIT`]; false when it did not finish in time.
pub async fn bounded<F: Future>(fut: F) -> bool {
    tokio::time::timeout(SHUTDOWN_WAIT, fut).await.is_ok()
}
