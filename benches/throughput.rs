//! The throughput benchmark: `cargo bench --bench throughput -- --database-url URL [--jobs N]
//! [--concurrency C] [--prefetch P[,P...]] [--rounds R] [--scenario S] [--seconds T]`. Prints one JSON object per
//! scenario.
//!
//! Scenarios: insert-single, insert-bulk, burn-down, burn-down-relaxed, burn-down-prefetch,
//! burn-down-prefetch-relaxed, steady, latency, latency-relaxed, floor, burn-down-vs-floor (the
//! two interleaved, with the ratio of their medians), burn-down-tx (jobs that take their own
//! transaction, interleaved with `burn-down`; not in `all`), rate-limited (a queue under
//! `--rate N/WINDOW`, default 1000/1s, with `--seconds` of work at that rate; with
//! `--rate N/WINDOW/partition` the jobs spread over `--partitions P` (default 10) partitions, each
//! under that limit; not in `all`),
//! partitioned (burn-downs over 10 and 1,000 tenants against the plain queue, and a small
//! tenant's first-job delay behind a large one's backlog; not in `all`), sequenced (1,000
//! tenants partitioned, and run as sequences; not in `all`), or `all`
//! (the default). `burn-down` uses the queue's defaults; `burn-down-prefetch` lets the queue claim
//! P jobs ahead of its free slots, once per P given (`--prefetch 100,400`; default C and 4·C);
//! `-relaxed` runs with `relaxed_fetch_commit(true)` (the prefetch one with the last P). Each scenario runs on a fresh database (PostgreSQL: a new database on
//! the server of the URL; SQLite: a new file), so results do not depend on earlier runs. Method
//! and results: docs/benchmarks.md.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use jobsmith::prelude::*;
use jobsmith::{Db, JobState, Pool, job};
use serde_json::json;
use sqlx::{AssertSqlSafe, PgPool};

static DONE: AtomicUsize = AtomicUsize::new(0);
static LATENCIES: OnceLock<Mutex<Vec<f64>>> = OnceLock::new();
static T0: OnceLock<Instant> = OnceLock::new();

fn micros_now() -> u64 {
    T0.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// A job that does nothing: the framework's own cost is what is measured.
#[job(queue = "bench", max_attempts = 1)]
async fn noop(n: u64) -> Result<(), String> {
    let _ = n;
    DONE.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// `noop` taking its own transaction (ADR 21): its completion is written and committed in it, by
/// a statement and a commit of its own, instead of a share of a batched ack.
#[job(queue = "bench", max_attempts = 1)]
async fn noop_tx(tx: &mut jobsmith::JobTx, n: u64) -> Result<(), String> {
    let _ = (tx, n);
    DONE.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// When the small tenant's job started (µs, this process's monotonic clock), for `partitioned`.
static SMALL_STARTED: AtomicU64 = AtomicU64::new(0);

/// A no-op of one tenant, for `partitioned`: the queue takes the tenants in turn.
#[job(queue = "bench", max_attempts = 1, partition = "tenant")]
async fn tenant_noop(tenant: String, n: u64) -> Result<(), String> {
    let _ = n;
    if tenant == "small" {
        SMALL_STARTED.store(micros_now(), Ordering::Relaxed);
    }
    DONE.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Start times (µs, this process's monotonic clock) of `rated` jobs with their `n`, for
/// `rate-limited`.
static STARTS: OnceLock<Mutex<Vec<(u64, u64)>>> = OnceLock::new();

/// A no-op that records when its code started, for the peak starts in any window.
#[job(queue = "bench", max_attempts = 1)]
async fn rated(n: u64) -> Result<(), String> {
    STARTS.get_or_init(Default::default).lock().unwrap().push((n, micros_now()));
    DONE.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Set while `burn-down-tx` queues its jobs: `noop_jobs` then builds `NoopTx` instead of `Noop`.
static TRANSACTIONAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records insert-to-start latency (both times from this process's monotonic clock).
#[job(queue = "bench", max_attempts = 1)]
async fn timed(inserted_us: u64) -> Result<(), String> {
    let waited = micros_now().saturating_sub(inserted_us) as f64 / 1000.0;
    LATENCIES.get_or_init(Default::default).lock().unwrap().push(waited);
    DONE.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

struct Args {
    url: String,
    jobs: usize,
    concurrency: usize,
    rounds: usize,
    prefetch: Option<Vec<usize>>,
    scenario: String,
    seconds: u64,
    /// Worker process counts for `scale-out`.
    processes: Vec<usize>,
    /// Finished rows already in the table for `history`.
    history: Vec<usize>,
    /// Set in a child process of `scale-out`: the database it works on.
    worker_of: Option<String>,
    /// The limit of `rate-limited`.
    rate: jobsmith::RateLimit,
    /// With a rate limit for each partition (`--rate N/WINDOW/partition`): how many partitions
    /// `rate-limited` spreads its jobs over.
    partitions: usize,
}

fn args() -> Args {
    let mut a = Args {
        url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        jobs: 100_000,
        concurrency: 100,
        rounds: 1,
        prefetch: None,
        scenario: "all".into(),
        seconds: 10,
        processes: vec![1, 2, 4],
        history: vec![1_000_000],
        worker_of: None,
        rate: jobsmith::RateLimit::per_second(1_000),
        partitions: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--database-url" => a.url = value(),
            "--jobs" => a.jobs = value().parse().expect("--jobs N"),
            "--concurrency" => a.concurrency = value().parse().expect("--concurrency C"),
            "--prefetch" => {
                a.prefetch =
                    Some(value().split(',').map(|p| p.parse().expect("--prefetch P[,P...]")).collect())
            }
            "--scenario" => a.scenario = value(),
            "--seconds" => a.seconds = value().parse().expect("--seconds T"),
            "--rounds" => a.rounds = value().parse::<usize>().expect("--rounds R").max(1),
            "--processes" => a.processes = list(&value(), "--processes P[,P...]"),
            "--history" => a.history = list(&value(), "--history ROWS[,ROWS...]"),
            "--worker-of" => a.worker_of = Some(value()),
            "--rate" => a.rate = value().parse().expect("--rate N/WINDOW, like 1000/1s or 100/1s/partition"),
            "--partitions" => a.partitions = value().parse::<usize>().expect("--partitions N").max(1),
            "--bench" => {} // cargo bench passes this
            other => panic!("unknown argument {other}; see the header of benches/throughput.rs"),
        }
    }
    a
}

fn list(v: &str, what: &str) -> Vec<usize> {
    v.split(',').map(|p| p.parse().unwrap_or_else(|_| panic!("{what}"))).collect()
}

/// A fresh database for one scenario.
async fn fresh(url: &str) -> Db {
    fresh_with_url(url).await.0
}

/// A fresh database for one scenario, and its URL (for the worker processes of `scale-out`).
async fn fresh_with_url(url: &str) -> (Db, String) {
    if url.starts_with("sqlite:") {
        let path =
            std::env::temp_dir().join(format!("jobsmith-bench-{}-{}.db", std::process::id(), micros_now()));
        let db_url = format!("sqlite://{}", path.display());
        let db = Db::connect(&db_url).await.unwrap();
        db.migrate().await.unwrap();
        return (db, db_url);
    }
    let admin = PgPool::connect(url).await.expect("connect to PostgreSQL");
    let name = format!("jobsmith_bench_{}_{}", std::process::id(), micros_now());
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
    let mut db_url = url.to_string();
    db_url.truncate(db_url.rfind('/').unwrap() + 1);
    db_url.push_str(&name);
    let db = Db::connect(&db_url).await.unwrap();
    db.migrate().await.unwrap();
    if std::env::var("BENCH_WITHOUT_FINISH_TRIGGER").as_deref() == Ok("1") {
        // For the A/B of the trigger that announces awaited jobs (ADR 20): the same build without it.
        let pool = PgPool::connect(&db_url).await.unwrap();
        sqlx::query("DROP TRIGGER jobs_notify_finished ON jobsmith.jobs").execute(&pool).await.unwrap();
    }
    (db, db_url)
}

fn report(scenario: &str, figure: f64, unit: &str, extra: serde_json::Value, a: &Args, engine: &str) {
    let mut obj = json!({
        "scenario": scenario,
        "figure": (figure * 10.0).round() / 10.0,
        "unit": unit,
        "engine": engine,
        "jobs": a.jobs,
        "concurrency": a.concurrency,
        "peak_rss_mb": peak_rss_mb(),
    });
    if let (Some(o), serde_json::Value::Object(e)) = (obj.as_object_mut(), extra) {
        o.extend(e);
    }
    println!("{obj}");
}

/// CPU seconds (user + system) this process has used so far, from /proc (0 where unavailable).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which is in parentheses and may hold spaces).
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            let user: f64 = rest.get(11)?.parse().ok()?;
            let system: f64 = rest.get(12)?.parse().ok()?;
            Some((user + system) / 100.0)
        })
        .unwrap_or(0.0)
}

/// Peak resident memory of this process (the worker), from /proc.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Committed transactions of the database so far (PostgreSQL's statistics). The pool that did the
/// work is closed first: a backend reports its counts when it exits, while an idle one may hold
/// them back for seconds, which made earlier figures undercount.
async fn commits(db: &Db) -> Option<i64> {
    let Pool::Postgres(pool) = db.pool() else { return None };
    let options = (*pool.connect_options()).clone();
    pool.close().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut conn = sqlx::ConnectOptions::connect(&options).await.ok()?;
    let n = sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(&mut conn)
        .await
        .ok();
    sqlx::Connection::close(conn).await.ok();
    n
}

/// How far the server's write-ahead log has been written, in bytes (PostgreSQL; None for SQLite).
/// Server-wide: the difference over a scenario is that scenario's WAL while nothing else runs.
async fn wal_position(db: &Db) -> Option<i64> {
    let Pool::Postgres(pool) = db.pool() else { return None };
    sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint")
        .fetch_one(pool)
        .await
        .ok()
}

/// WAL bytes per job between two positions.
fn wal_per_job(before: Option<i64>, after: Option<i64>, jobs: usize) -> serde_json::Value {
    match (before, after) {
        (Some(b), Some(a)) => json!(((a - b) as f64 / jobs as f64).round()),
        _ => json!(null),
    }
}

/// The same database through a new pool (after `commits` closed the old one).
async fn reopen(db: &Db) -> Db {
    match db.pool() {
        Pool::Postgres(pool) => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .connect_with((*pool.connect_options()).clone())
                .await
                .expect("reconnect");
            Db::postgres(pool, "jobsmith").expect("db")
        }
        Pool::Sqlite(_) => db.clone(),
    }
}

fn noop_jobs(from: usize, n: usize) -> Vec<jobsmith::NewJob> {
    if TRANSACTIONAL.load(Ordering::Relaxed) {
        return (from..from + n).map(|i| NoopTx { n: i as u64 }.build().unwrap()).collect();
    }
    (from..from + n).map(|i| Noop { n: i as u64 }.build().unwrap()).collect()
}

/// One round of one-by-one inserts: jobsmith's rate and, on PostgreSQL, the bare INSERT's.
async fn insert_single(a: &Args) -> (f64, Option<f64>) {
    let db = fresh(&a.url).await;
    let n = a.jobs.min(20_000);
    let start = Instant::now();
    for i in 0..n {
        db.insert(Noop { n: i as u64 }).await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    // The floor of one-by-one inserts, in the same run: the same calls as a bare hand-written
    // single-row INSERT (one commit each), and the same with the wake-up notification jobsmith
    // sends, which tells how much of any gap is the notification itself.
    let (bare, notifying) = match db.pool() {
        Pool::Postgres(_) => {
            let bare = insert_single_by_hand(a, n, false).await;
            let notifying = insert_single_by_hand(a, n, true).await;
            (Some(bare), Some(notifying))
        }
        Pool::Sqlite(_) => (None, None),
    };
    let rate = n as f64 / secs;
    report(
        "insert-single",
        rate,
        "jobs/s",
        json!({"jobs": n, "seconds": secs, "by_hand_jobs_per_s": bare.map(f64::round),
               "by_hand_with_notify_jobs_per_s": notifying.map(f64::round)}),
        a,
        db.engine().name(),
    );
    (rate, bare)
}

/// `n` bare single-row inserts of the same jobs, each its own commit, optionally notifying as
/// jobsmith does; jobs/s.
async fn insert_single_by_hand(a: &Args, n: usize, notify: bool) -> f64 {
    let db = fresh(&a.url).await;
    let Pool::Postgres(pool) = db.pool().clone() else { unreachable!() };
    let sql = if notify {
        "WITH ins AS (INSERT INTO jobsmith.jobs (state, worker, queue, args, max_attempts)
                      VALUES ('available', 'noop', 'bench', $1, 1) RETURNING id, queue)
         SELECT id, pg_notify('jobsmith_signal', 'a:' || queue)::text FROM ins"
    } else {
        "INSERT INTO jobsmith.jobs (state, worker, queue, args, max_attempts) VALUES ('available', 'noop', 'bench', $1, 1)"
    };
    let start = Instant::now();
    for i in 0..n {
        let args = serde_json::to_value(Noop { n: i as u64 }).unwrap();
        sqlx::query(sql).bind(args).execute(&pool).await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// One round of bulk inserts: jobsmith's rate and the bare hand-written INSERT's.
async fn insert_bulk(a: &Args) -> (f64, Option<f64>) {
    let db = fresh(&a.url).await;
    let batch = 5_000;
    let wal_before = wal_position(&db).await;
    let start = Instant::now();
    let mut i = 0;
    while i < a.jobs {
        let n = batch.min(a.jobs - i);
        db.insert_all(noop_jobs(i, n)).await.unwrap();
        i += n;
    }
    let secs = start.elapsed().as_secs_f64();
    let wal = wal_per_job(wal_before, wal_position(&db).await, a.jobs);
    // The same N from two callers at once (two request handlers, say): what the database takes
    // when this process is not the only thing between batches.
    let db2 = fresh(&a.url).await;
    let start2 = Instant::now();
    let halves: Vec<_> = [(0, a.jobs / 2), (a.jobs / 2, a.jobs - a.jobs / 2)]
        .into_iter()
        .map(|(from, n)| {
            let db = db2.clone();
            tokio::spawn(async move {
                let mut i = 0;
                while i < n {
                    let k = batch.min(n - i);
                    db.insert_all(noop_jobs(from + i, k)).await.unwrap();
                    i += k;
                }
            })
        })
        .collect();
    for h in halves {
        h.await.unwrap();
    }
    let two_callers = a.jobs as f64 / start2.elapsed().as_secs_f64();
    let (by_hand, by_hand_wal) = match a.url.starts_with("sqlite:") {
        true => (insert_by_hand_sqlite(a, batch).await, json!(null)),
        false => insert_by_hand(a, batch).await,
    };
    let rate = a.jobs as f64 / secs;
    report(
        "insert-bulk",
        rate,
        "jobs/s",
        json!({"batch": batch, "seconds": secs, "two_callers_jobs_per_s": two_callers.round(),
               "by_hand_jobs_per_s": by_hand.round(), "wal_bytes_per_job": wal, "by_hand_wal_bytes_per_job": by_hand_wal}),
        a,
        db.engine().name(),
    );
    (rate, Some(by_hand))
}

/// The insert floor: the same jobs (args encoded the same way, batches of `batch`, one caller) into
/// the same table by a bare hand-written statement that sets only the columns a job needs, with
/// no returned rows, no notification and no scheduling logic.
async fn insert_by_hand(a: &Args, batch: usize) -> (f64, serde_json::Value) {
    let db = fresh(&a.url).await;
    let Pool::Postgres(pool) = db.pool().clone() else { unreachable!() };
    let wal_before = wal_position(&db).await;
    let start = Instant::now();
    let mut i = 0;
    while i < a.jobs {
        let n = batch.min(a.jobs - i);
        let args: Vec<serde_json::Value> =
            (i..i + n).map(|k| serde_json::to_value(Noop { n: k as u64 }).unwrap()).collect();
        sqlx::query(
            "INSERT INTO jobsmith.jobs (state, worker, queue, args, max_attempts)
             SELECT 'available', 'noop', 'bench', a, 1 FROM unnest($1::jsonb[]) AS t(a)",
        )
        .bind(&args)
        .execute(&pool)
        .await
        .unwrap();
        i += n;
    }
    let rate = a.jobs as f64 / start.elapsed().as_secs_f64();
    (rate, wal_per_job(wal_before, wal_position(&db).await, a.jobs))
}

/// The insert floor on SQLite: as [`insert_by_hand`], one statement per batch taking the args as
/// one JSON array, each batch its own transaction (one commit, as `synchronous = FULL` syncs).
async fn insert_by_hand_sqlite(a: &Args, batch: usize) -> f64 {
    let db = fresh(&a.url).await;
    let Pool::Sqlite(pool) = db.pool().clone() else { unreachable!() };
    let start = Instant::now();
    let mut i = 0;
    while i < a.jobs {
        let n = batch.min(a.jobs - i);
        let args: Vec<serde_json::Value> =
            (i..i + n).map(|k| serde_json::to_value(Noop { n: k as u64 }).unwrap()).collect();
        let now = chrono::Utc::now().timestamp_millis();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO jobsmith_jobs (state, worker, queue, args, max_attempts, inserted_at, scheduled_at)
             SELECT 'available', 'noop', 'bench', value, 1, ?2, ?2 FROM json_each(?1)",
        )
        .bind(serde_json::Value::from(args).to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        i += n;
    }
    a.jobs as f64 / start.elapsed().as_secs_f64()
}

/// Completed rows now.
async fn completed(db: &Db) -> usize {
    db.engine()
        .count_by_state()
        .await
        .unwrap()
        .iter()
        .filter(|c| c.state == JobState::Completed)
        .map(|c| c.count as usize)
        .sum()
}

/// Waits until nothing is left to run: no row `available` or `executing`. Asked by `EXISTS` on
/// the two partial indexes, which stops at the first live entry, every 5 ms: a count of the rows
/// left (as this did before 2026-12-01, third pass) scanned thousands of entries 200 times a
/// second, load on the database under test that the floors, which know when they are done, do
/// not carry.
async fn wait_unfinished_gone(db: &Db) {
    const LEFT: &str = "SELECT EXISTS (SELECT 1 FROM {jobs} WHERE state = 'available')
                            OR EXISTS (SELECT 1 FROM {jobs} WHERE state = 'executing')";
    loop {
        let left: bool = match db.pool() {
            Pool::Postgres(pool) => {
                sqlx::query_scalar(AssertSqlSafe(LEFT.replace("{jobs}", "jobsmith.jobs")))
                    .fetch_one(pool)
                    .await
                    .unwrap()
            }
            Pool::Sqlite(pool) => sqlx::query_scalar(AssertSqlSafe(LEFT.replace("{jobs}", "jobsmith_jobs")))
                .fetch_one(pool)
                .await
                .unwrap(),
        };
        if !left {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn burn_down(a: &Args, prefetch: usize, relaxed: bool) -> f64 {
    let name = match (prefetch, relaxed) {
        (0, false) => "burn-down",
        (0, true) => "burn-down-relaxed",
        (_, false) => "burn-down-prefetch",
        (_, true) => "burn-down-prefetch-relaxed",
    };
    burn_down_on(a, fresh(&a.url).await, prefetch, relaxed, name).await
}

/// `burn-down` of jobs that take their own transaction.
async fn burn_down_tx(a: &Args) -> f64 {
    TRANSACTIONAL.store(true, Ordering::Relaxed);
    let db = fresh(&a.url).await;
    let rate = burn_down_on(a, db, 0, false, "burn-down-tx").await;
    TRANSACTIONAL.store(false, Ordering::Relaxed);
    rate
}

/// The burn-down of N queued no-op jobs on `db` (which may hold finished rows already).
async fn burn_down_on(a: &Args, db: Db, prefetch: usize, relaxed: bool, name: &str) -> f64 {
    let finished_before = completed(&db).await;
    queue_noops(&db, a.jobs).await;
    let before = commits(&db).await;
    let db = reopen(&db).await;
    DONE.store(0, Ordering::SeqCst);
    let wal_before = wal_position(&db).await;
    let start = Instant::now();
    let cpu_before = cpu_seconds();
    let mut builder = db.runtime().queue("bench", a.concurrency).relaxed_fetch_commit(relaxed);
    // 0 keeps the default (the measured claim-ahead), rather than turning it off.
    if prefetch > 0 {
        builder = builder.prefetch("bench", prefetch);
    }
    let rt = builder.start().await.unwrap();
    while DONE.load(Ordering::Relaxed) < a.jobs {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    wait_unfinished_gone(&db).await;
    let secs = start.elapsed().as_secs_f64();
    // Outside the timed part: nothing left to run, so every result is written and none missing.
    let done = completed(&db).await;
    assert_eq!(done, finished_before + a.jobs, "completed rows once nothing was left to run");
    let worker_cpu = cpu_seconds() - cpu_before;
    let wal = wal_per_job(wal_before, wal_position(&db).await, a.jobs);
    rt.shutdown().await.unwrap();
    let after = commits(&db).await;
    let per_job = match (before, after) {
        (Some(b), Some(a2)) => json!(((a2 - b) as f64 / a.jobs as f64 * 1000.0).round() / 1000.0),
        _ => json!(null),
    };
    let rate = a.jobs as f64 / secs;
    report(
        name,
        rate,
        "jobs/s",
        json!({"seconds": secs, "transactions_per_job": per_job, "prefetch": prefetch, "relaxed_fetch_commit": relaxed,
               "worker_cpu_share": (worker_cpu / secs * 100.0).round() / 100.0, "wal_bytes_per_job": wal}),
        a,
        db.engine().name(),
    );
    rate
}

/// A rate-limited queue with work: `limit` per window × `--seconds` worth of queued jobs, run by
/// one node at concurrency C under `--rate`; prints jobs/s against the limit's own rate (over the
/// whole run, whose first window starts at once, and steady: the jobs after the first window over
/// the time from the first start to the last), and the most jobs whose code started in any window
/// (their own clock; never above the limit).
async fn rate_limited(a: &Args) {
    let db = fresh(&a.url).await;
    // For each partition: the queue's pace is the partitions' together.
    let partitions = if a.rate.per_partition { a.partitions } else { 1 };
    let per_second = f64::from(a.rate.limit) / a.rate.window.as_secs_f64() * partitions as f64;
    let jobs = (per_second * a.seconds as f64).round().max(1.0) as usize;
    let mut i = 0;
    while i < jobs {
        let k = 5_000.min(jobs - i);
        let batch = (i..i + k).map(|n| {
            let job = Rated { n: n as u64 };
            if a.rate.per_partition {
                job.partition(format!("p{}", n % partitions)).build()
            } else {
                job.build()
            }
        });
        db.insert_all(batch.map(Result::unwrap).collect()).await.unwrap();
        i += k;
    }
    let db = reopen(&db).await;
    DONE.store(0, Ordering::SeqCst);
    STARTS.get_or_init(Default::default).lock().unwrap().clear();
    let start = Instant::now();
    let rt = db.runtime().queue("bench", a.concurrency).rate_limit("bench", a.rate).start().await.unwrap();
    while DONE.load(Ordering::Relaxed) < jobs {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    rt.shutdown().await.unwrap();
    let recorded = STARTS.get().unwrap().lock().unwrap().clone();
    let window_us = a.rate.window.as_micros() as u64;
    // The most starts of one partition (of the queue, for a plain limit) in any window.
    let mut peak = 0;
    for partition in 0..partitions as u64 {
        let mut times: Vec<u64> =
            recorded.iter().filter(|(n, _)| n % partitions as u64 == partition).map(|(_, t)| *t).collect();
        times.sort_unstable();
        let mut lo = 0;
        for hi in 0..times.len() {
            while times[hi] - times[lo] >= window_us {
                lo += 1;
            }
            peak = peak.max(hi - lo + 1);
        }
    }
    let mut starts: Vec<u64> = recorded.iter().map(|(_, t)| *t).collect();
    starts.sort_unstable();
    // From the first start to the last: the queue's own pace, without the runtime's start-up.
    let span = (starts.last().copied().unwrap_or(0) - starts.first().copied().unwrap_or(0)) as f64 / 1e6;
    let rate = jobs as f64 / secs;
    report(
        "rate-limited",
        rate,
        "jobs/s",
        json!({"limit": a.rate.to_string(), "partitions": partitions, "limit_per_second": per_second, "queued": jobs, "seconds": secs,
               "vs_limit": (rate / per_second * 1000.0).round() / 1000.0,
               // The first window's jobs start at once; after them, the pace the limit allows.
               "steady_vs_limit": (jobs.saturating_sub(a.rate.limit as usize * partitions) as f64 / span / per_second * 1000.0).round() / 1000.0,
               "peak_starts_in_any_window": peak}),
        a,
        db.engine().name(),
    );
}

/// The burn-down of `--jobs` no-op jobs spread over `tenants` partitions of a queue partitioned
/// with a limit of C per tenant (so the limit never binds: what is measured is the fetch); 0
/// tenants is the plain queue.
async fn partitioned_burn_down(a: &Args, tenants: usize) -> f64 {
    partitioned_burn_down_as(a, tenants, None).await
}

/// [`partitioned_burn_down`], with each tenant run as a sequence under `sequence` if set.
async fn partitioned_burn_down_as(
    a: &Args,
    tenants: usize,
    sequence: Option<jobsmith::SequencePolicy>,
) -> f64 {
    let db = fresh(&a.url).await;
    let mut i = 0;
    while i < a.jobs {
        let k = 5_000.min(a.jobs - i);
        let jobs = (i..i + k)
            .map(|n| match tenants {
                0 => Noop { n: n as u64 }.build().unwrap(),
                t => TenantNoop { tenant: format!("t{:04}", n % t), n: n as u64 }.build().unwrap(),
            })
            .collect();
        db.insert_all(jobs).await.unwrap();
        i += k;
    }
    let db = reopen(&db).await;
    DONE.store(0, Ordering::SeqCst);
    let start = Instant::now();
    let mut builder = db.runtime().queue("bench", a.concurrency);
    if tenants > 0 {
        builder = builder.partition_limit("bench", a.concurrency as u32);
    }
    if let Some(policy) = sequence {
        builder = builder.sequence("bench", policy);
    }
    let rt = builder.start().await.unwrap();
    while DONE.load(Ordering::Relaxed) < a.jobs {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    rt.shutdown().await.unwrap();
    let rate = a.jobs as f64 / secs;
    report(
        "partitioned-burn-down",
        rate,
        "jobs/s",
        json!({"tenants": tenants, "sequenced": sequence.is_some(), "seconds": secs}),
        a,
        db.engine().name(),
    );
    rate
}

/// How long a small tenant's one job waits behind a large tenant's backlog of `--jobs`: the
/// runtime is busy with the backlog when the job is inserted; from its insert to its start.
async fn small_tenant_delay(a: &Args, partitioned: bool) -> f64 {
    let db = fresh(&a.url).await;
    let mut i = 0;
    while i < a.jobs {
        let k = 5_000.min(a.jobs - i);
        let jobs =
            (i..i + k).map(|n| TenantNoop { tenant: "big".into(), n: n as u64 }.build().unwrap()).collect();
        db.insert_all(jobs).await.unwrap();
        i += k;
    }
    let db = reopen(&db).await;
    DONE.store(0, Ordering::SeqCst);
    SMALL_STARTED.store(0, Ordering::SeqCst);
    let mut builder = db.runtime().queue("bench", a.concurrency);
    if partitioned {
        builder = builder.partition_limit("bench", a.concurrency as u32);
    }
    let rt = builder.start().await.unwrap();
    while DONE.load(Ordering::Relaxed) < 1_000.min(a.jobs / 2) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let inserted = micros_now();
    db.insert(TenantNoop { tenant: "small".into(), n: 0 }).await.unwrap();
    while SMALL_STARTED.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let delay_ms = (SMALL_STARTED.load(Ordering::Relaxed) - inserted) as f64 / 1000.0;
    let done_before = DONE.load(Ordering::Relaxed);
    rt.shutdown().await.unwrap();
    report(
        "small-tenant-delay",
        delay_ms,
        "ms",
        json!({"partitioned": partitioned, "backlog": a.jobs, "big_jobs_done_when_small_started": done_before}),
        a,
        db.engine().name(),
    );
    delay_ms
}

/// `partitioned` (not in `all`): burn-downs of the plain queue and of 10 and 1,000 tenants,
/// `--rounds` interleaved, with each one's median against the plain queue's; then the small
/// tenant's delay behind a backlog, plain and partitioned.
async fn partitioned(a: &Args) {
    let tenants = [0, 10, 1_000];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); tenants.len()];
    for _ in 0..a.rounds {
        for (i, t) in tenants.iter().enumerate() {
            rates[i].push(partitioned_burn_down(a, *t).await);
        }
    }
    let plain = median(&rates[0]).unwrap_or_default();
    for (t, r) in tenants.iter().zip(&rates) {
        let m = median(r).unwrap_or_default();
        println!(
            "{}",
            json!({"scenario": "partitioned-burn-down-summary", "tenants": t, "figure": m.round(),
                   "unit": "jobs/s (median)", "rounds": r.len(), "min": min_of(r).round(), "max": max_of(r).round(),
                   "median_vs_plain_queue": (m / plain * 100.0).round() / 100.0})
        );
    }
    small_tenant_delay(a, false).await;
    small_tenant_delay(a, true).await;
}

/// `sequenced` (not in `all`): burn-downs of `--jobs` over 1,000 tenants, partitioned and run as
/// sequences (one job of a tenant at a time, ADR 27), `--rounds` interleaved, with the medians.
async fn sequenced(a: &Args) {
    let mut rates = [Vec::new(), Vec::new()];
    for _ in 0..a.rounds {
        rates[0].push(partitioned_burn_down_as(a, 1_000, None).await);
        rates[1]
            .push(partitioned_burn_down_as(a, 1_000, Some(jobsmith::SequencePolicy::WaitForRetries)).await);
    }
    let partitioned = median(&rates[0]).unwrap_or_default();
    let sequenced = median(&rates[1]).unwrap_or_default();
    println!(
        "{}",
        json!({"scenario": "sequenced-burn-down-summary", "tenants": 1_000, "figure": sequenced.round(),
               "unit": "jobs/s (median)", "rounds": a.rounds, "partitioned_median": partitioned.round(),
               "vs_partitioned": (sequenced / partitioned * 100.0).round() / 100.0})
    );
}

/// The median of `v` (the mean of the middle two for an even count); None when empty.
/// Runs `round` `n` times, one after the other.
async fn rounds_of<F, Fut>(n: usize, round: F) -> Vec<(f64, Option<f64>)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (f64, Option<f64>)>,
{
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(round().await);
    }
    out
}

/// Prints the median over rounds of jobsmith's figure and of its floor's, and their ratio.
fn summarize_against_floor(name: &str, rounds: &[(f64, Option<f64>)]) {
    let ours: Vec<f64> = rounds.iter().map(|r| r.0).collect();
    let floors: Vec<f64> = rounds.iter().filter_map(|r| r.1).collect();
    let m = median(&ours).unwrap_or_default();
    let f = median(&floors);
    println!(
        "{}",
        json!({"scenario": format!("{name}-summary"), "figure": m.round(), "unit": "jobs/s (median)",
               "rounds": ours.len(), "min": min_of(&ours).round(), "max": max_of(&ours).round(),
               "by_hand_median": f.map(f64::round),
               "median_vs_by_hand_median": f.map(|f| (m / f * 100.0).round() / 100.0)})
    );
}

fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => None,
        n if n % 2 == 1 => Some(s[n / 2]),
        n => Some((s[n / 2 - 1] + s[n / 2]) / 2.0),
    }
}

fn min_of(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max_of(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    (sorted[idx] * 100.0).round() / 100.0
}

fn latency_stats() -> serde_json::Value {
    let mut l = std::mem::take(&mut *LATENCIES.get_or_init(Default::default).lock().unwrap());
    l.sort_by(|a, b| a.partial_cmp(b).unwrap());
    json!({"p50_ms": percentile(&l, 0.5), "p99_ms": percentile(&l, 0.99), "max_ms": percentile(&l, 1.0), "samples": l.len()})
}

async fn steady(a: &Args) {
    let db = fresh(&a.url).await;
    DONE.store(0, Ordering::SeqCst);
    LATENCIES.get_or_init(Default::default).lock().unwrap().clear();
    let rt = db.runtime().queue("bench", a.concurrency).start().await.unwrap();
    let stop = Arc::new(AtomicU64::new(0));
    let inserted = Arc::new(AtomicUsize::new(0));
    let backlog = a.concurrency * 2;
    let producers: Vec<_> = (0..2)
        .map(|_| {
            let db = db.clone();
            let stop = stop.clone();
            let inserted = inserted.clone();
            tokio::spawn(async move {
                while stop.load(Ordering::Relaxed) == 0 {
                    let jobs =
                        (0..50).map(|_| Timed { inserted_us: micros_now() }.build().unwrap()).collect();
                    db.insert_all(jobs).await.unwrap();
                    inserted.fetch_add(50, Ordering::Relaxed);
                    // Keep the queue short: a steady state, not a backlog. Counted in this
                    // process (inserted minus started), so the bench adds no queries of its own.
                    while inserted.load(Ordering::Relaxed).saturating_sub(DONE.load(Ordering::Relaxed))
                        > backlog
                        && stop.load(Ordering::Relaxed) == 0
                    {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await; // warm-up
    let from = DONE.load(Ordering::Relaxed);
    LATENCIES.get().unwrap().lock().unwrap().clear();
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    let done = DONE.load(Ordering::Relaxed) - from;
    let secs = start.elapsed().as_secs_f64();
    let stats = latency_stats();
    stop.store(1, Ordering::Relaxed);
    for p in producers {
        p.await.unwrap();
    }
    rt.shutdown().await.unwrap();
    let mut extra = stats;
    extra["seconds"] = json!(secs);
    report("steady", done as f64 / secs, "jobs/s", extra, a, db.engine().name());
}

async fn latency(a: &Args, relaxed: bool) {
    let db = fresh(&a.url).await;
    DONE.store(0, Ordering::SeqCst);
    LATENCIES.get_or_init(Default::default).lock().unwrap().clear();
    let rt = db.runtime().queue("bench", a.concurrency).relaxed_fetch_commit(relaxed).start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await; // idle
    for _ in 0..200 {
        db.insert(Timed { inserted_us: micros_now() }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while DONE.load(Ordering::Relaxed) < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rt.shutdown().await.unwrap();
    let stats = latency_stats();
    let p50 = stats["p50_ms"].as_f64().unwrap_or_default();
    let name = if relaxed { "latency-relaxed" } else { "latency" };
    report(name, p50, "ms (p50 insert-to-start)", stats, a, db.engine().name());
}

/// One round of a floor: the best rate of the round and the rate of each setting tried, by name.
struct FloorRound {
    best: f64,
    settings: Vec<(String, f64)>,
}

/// The floor: the same table driven by a minimal hand-written pipeline (fetchers taking batches
/// with SKIP LOCKED, one completer writing batches), tuned over a few settings; the best counts.
async fn floor(a: &Args) -> Option<FloorRound> {
    if a.url.starts_with("sqlite:") {
        return Some(sqlite_floor(a).await);
    }
    let mut best: (f64, usize, usize, serde_json::Value) = (0.0, 0, 0, json!(null));
    let mut tries = Vec::new();
    let mut settings = Vec::new();
    for (fetchers, batch) in [(1, 50), (1, 100), (1, 250), (1, 500), (2, 100), (2, 250), (4, 200)] {
        let (rate, wal) = floor_once(a, fetchers, batch, UPDATE_COMPLETED).await;
        tries.push(json!({"fetchers": fetchers, "batch": batch, "jobs_per_s": rate.round()}));
        settings.push((format!("{fetchers}x{batch}"), rate));
        if rate > best.0 {
            best = (rate, fetchers, batch, wal);
        }
    }
    // What keeping finished rows costs: the best setting again, deleting rows on completion.
    let (deleting, _) = floor_once(a, best.1, best.2, DELETE_COMPLETED).await;
    report(
        "floor",
        best.0,
        "jobs/s",
        json!({"fetchers": best.1, "batch": best.2, "tries": tries, "deleting_finished_rows_jobs_per_s": deleting.round(),
               "wal_bytes_per_job": best.3}),
        a,
        "postgres",
    );
    Some(FloorRound { best: best.0, settings })
}

/// The floor's completion statement: finished rows kept, as jobsmith keeps them.
const UPDATE_COMPLETED: &str = "UPDATE jobsmith.jobs SET state = 'completed', completed_at = now() WHERE id = ANY($1) AND state = 'executing'";
/// The same, deleting finished rows instead.
const DELETE_COMPLETED: &str = "DELETE FROM jobsmith.jobs WHERE id = ANY($1) AND state = 'executing'";

/// One floor run: `fetchers` loops taking `batch` rows, one completer running `complete`.
async fn floor_once(
    a: &Args,
    fetchers: usize,
    batch: usize,
    complete: &'static str,
) -> (f64, serde_json::Value) {
    let db = fresh(&a.url).await;
    let Pool::Postgres(pool) = db.pool().clone() else { unreachable!() };
    queue_noops(&db, a.jobs).await;
    let wal_before = wal_position(&db).await;
    let start = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<i64>>();
    let completer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            while let Some(mut ids) = rx.recv().await {
                while let Ok(more) = rx.try_recv() {
                    ids.extend(more);
                }
                sqlx::query(complete).bind(&ids).execute(&pool).await.unwrap();
            }
        })
    };
    let workers: Vec<_> = (0..fetchers)
        .map(|_| {
            let pool = pool.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    let ids: Vec<i64> = sqlx::query_scalar(
                        "WITH picked AS MATERIALIZED (
                            SELECT id FROM jobsmith.jobs WHERE state = 'available' AND queue = 'bench'
                            ORDER BY priority, scheduled_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
                         UPDATE jobsmith.jobs j SET state = 'executing', attempt = j.attempt + 1,
                             attempted_at = now(), attempted_by = 'floor'
                         FROM picked WHERE j.id = picked.id RETURNING j.id",
                    )
                    .bind(batch as i64)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                    if ids.is_empty() {
                        break;
                    }
                    tx.send(ids).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for w in workers {
        w.await.unwrap();
    }
    completer.await.unwrap();
    let rate = a.jobs as f64 / start.elapsed().as_secs_f64();
    (rate, wal_per_job(wal_before, wal_position(&db).await, a.jobs))
}

/// Queues `n` no-op jobs in batches of 5,000.
async fn queue_noops(db: &Db, n: usize) {
    let mut i = 0;
    while i < n {
        let k = 5_000.min(n - i);
        db.insert_all(noop_jobs(i, k)).await.unwrap();
        i += k;
    }
}

/// Scale-out: N jobs queued, then P worker processes (this binary with `--worker-of`), each one
/// runtime at concurrency C with defaults, on the one database; timed from the moment all are
/// connected and told to start until the database shows N completed. Once per P in `--processes`.
async fn scale_out(a: &Args) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let exe = std::env::current_exe().expect("the bench binary");
    let mut curve = Vec::new();
    for &p in &a.processes {
        let (db, url) = fresh_with_url(&a.url).await;
        queue_noops(&db, a.jobs).await;
        let mut children = Vec::new();
        for _ in 0..p {
            let mut child = tokio::process::Command::new(&exe)
                .args(["--worker-of", &url, "--concurrency", &a.concurrency.to_string()])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("start a worker process");
            let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
            assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("ready"), "worker did not start");
            children.push(child);
        }
        let start = Instant::now();
        for c in &mut children {
            c.stdin.as_mut().unwrap().write_all(b"go\n").await.unwrap();
        }
        wait_unfinished_gone(&db).await;
        let secs = start.elapsed().as_secs_f64();
        for c in &mut children {
            // Closing stdin tells the worker to shut down.
            drop(c.stdin.take());
        }
        for mut c in children {
            let status = c.wait().await.unwrap();
            assert!(status.success(), "a worker process failed: {status}");
        }
        let twice: i64 = match db.pool() {
            Pool::Postgres(pool) => {
                sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobs WHERE attempt > 1")
                    .fetch_one(pool)
                    .await
                    .unwrap()
            }
            Pool::Sqlite(_) => 0,
        };
        assert_eq!(twice, 0, "a job ran more than once");
        let rate = a.jobs as f64 / secs;
        curve.push(json!({"processes": p, "jobs_per_s": rate.round()}));
        report("scale-out", rate, "jobs/s", json!({"processes": p, "seconds": secs}), a, db.engine().name());
    }
    println!(
        "{}",
        json!({"scenario": "scale-out-curve", "curve": curve, "concurrency_per_process": a.concurrency})
    );
}

/// A worker process of `scale-out`: connects, says `ready`, starts on `go`, stops when stdin
/// closes.
async fn worker_process(url: &str, a: &Args) {
    use tokio::io::AsyncBufReadExt;
    let db = Db::connect(url).await.expect("worker connects");
    println!("ready");
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    assert_eq!(stdin.next_line().await.unwrap().as_deref(), Some("go"));
    let rt = db.runtime().queue("bench", a.concurrency).start().await.unwrap();
    while stdin.next_line().await.ok().flatten().is_some() {}
    rt.shutdown().await.unwrap();
}

/// Cost as work grows: burn-down of N jobs with H finished rows already in the table (completed
/// an hour ago, so within the default retention), for each H in `--history`, beside the same
/// burn-down on an empty table. The history is written by one bench-owned statement.
async fn history(a: &Args) {
    let empty = burn_down(a, 0, false).await;
    for &h in &a.history {
        let db = fresh(&a.url).await;
        let filled = Instant::now();
        match db.pool() {
            Pool::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO jobsmith.jobs (state, worker, queue, args, max_attempts, attempt,
                         attempted_at, attempted_by, completed_at, inserted_at, scheduled_at)
                     SELECT 'completed', 'noop', 'bench', jsonb_build_object('n', g), 1, 1,
                         now() - interval '1 hour', 'old', now() - interval '1 hour',
                         now() - interval '2 hours', now() - interval '2 hours'
                     FROM generate_series(1, $1::bigint) g",
                )
                .bind(h as i64)
                .execute(pool)
                .await
                .unwrap();
                // What autovacuum would have done to a table this old; then a checkpoint, so the
                // burn-down does not pay for writing out the fill (full-page images of every page
                // it touches first, and the checkpoint's own writes), which a table that grew over
                // days would not.
                sqlx::query("VACUUM ANALYZE jobsmith.jobs").execute(pool).await.unwrap();
                sqlx::query("CHECKPOINT").execute(pool).await.unwrap();
            }
            Pool::Sqlite(pool) => {
                sqlx::query(
                    "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?1)
                     INSERT INTO jobsmith_jobs (state, worker, queue, args, max_attempts, attempt,
                         attempted_at, attempted_by, completed_at, inserted_at, scheduled_at)
                     SELECT 'completed', 'noop', 'bench', json_object('n', n), 1, 1, ?2, 'old', ?2, ?2, ?2
                     FROM g",
                )
                .bind(h as i64)
                .bind(chrono::Utc::now().timestamp_millis() - 3_600_000)
                .execute(pool)
                .await
                .unwrap();
            }
        }
        let fill_secs = filled.elapsed().as_secs_f64();
        let rate = burn_down_on(a, db, 0, false, "history").await;
        println!(
            "{}",
            json!({"scenario": "history-summary", "history_rows": h, "jobs_per_s": rate.round(),
                   "empty_table_jobs_per_s": empty.round(), "vs_empty_pct": (rate / empty * 1000.0).round() / 10.0,
                   "fill_seconds": fill_secs.round()})
        );
    }
}

/// Pruning under load: for `--seconds` T, two tasks keep the queue fed while the runtime works
/// with a retention of 10 s for completed jobs (pruned every second), so pruning runs at the
/// completion rate; every 10 s the table's and the fetch index's sizes are printed. A table that
/// pruning keeps up with levels off after the first retention period.
async fn prune_steady(a: &Args) {
    let db = fresh(&a.url).await;
    let Pool::Postgres(pool) = db.pool().clone() else {
        println!("{}", json!({"scenario": "prune-steady", "skipped": "PostgreSQL only"}));
        return;
    };
    DONE.store(0, Ordering::SeqCst);
    let keep = Duration::from_secs(10);
    let rt = db
        .runtime()
        .queue("bench", a.concurrency)
        .retention(
            jobsmith::Retention { completed: keep, cancelled: keep, discarded: keep },
            Duration::from_secs(1),
        )
        .start()
        .await
        .unwrap();
    let stop = Arc::new(AtomicU64::new(0));
    let inserted = Arc::new(AtomicUsize::new(0));
    let feeders: Vec<_> = (0..2)
        .map(|t| {
            let (db, stop, inserted) = (db.clone(), stop.clone(), inserted.clone());
            tokio::spawn(async move {
                let mut i = t * 1_000_000_000;
                while stop.load(Ordering::Relaxed) == 0 {
                    db.insert_all(noop_jobs(i, 1_000)).await.unwrap();
                    i += 1_000;
                    inserted.fetch_add(1_000, Ordering::Relaxed);
                    while inserted.load(Ordering::Relaxed).saturating_sub(DONE.load(Ordering::Relaxed))
                        > 20_000
                        && stop.load(Ordering::Relaxed) == 0
                    {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    let mut last_done = 0;
    let mut samples = Vec::new();
    while start.elapsed() < Duration::from_secs(a.seconds) {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (table, index, rows): (i64, i64, i64) = sqlx::query_as(
            "SELECT pg_total_relation_size('jobsmith.jobs'), pg_relation_size('jobsmith.jobs_fetch_idx'),
                    (SELECT count(*) FROM jobsmith.jobs)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let done = DONE.load(Ordering::Relaxed);
        let sample = json!({"second": start.elapsed().as_secs(), "completed_per_s": (done - last_done) / 10,
                            "rows": rows, "table_mb": table / 1_048_576, "fetch_index_mb": index / 1_048_576});
        last_done = done;
        println!("{}", json!({"scenario": "prune-steady-sample", "sample": sample}));
        samples.push(sample);
    }
    stop.store(1, Ordering::Relaxed);
    for f in feeders {
        f.await.unwrap();
    }
    rt.shutdown().await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    report(
        "prune-steady",
        DONE.load(Ordering::Relaxed) as f64 / secs,
        "jobs/s",
        json!({"samples": samples}),
        a,
        "postgres",
    );
}

/// The floor on SQLite: one loop on one connection, as a naive hand-written pipeline would run
/// on the embedded database (one writer at a time, so more loops would only queue for the write
/// lock): claim a batch by one `UPDATE ... RETURNING` in its own write transaction, then complete
/// it by one `UPDATE ... WHERE id IN` in another, until nothing is left. Two commits per batch,
/// each synced (`synchronous = FULL`, as jobsmith's connection). Tuned over the batch size.
async fn sqlite_floor(a: &Args) -> FloorRound {
    let mut best = (0.0, 0);
    let mut tries = Vec::new();
    let mut settings = Vec::new();
    for batch in [50, 200, 500] {
        let rate = sqlite_floor_once(a, batch).await;
        tries.push(json!({"batch": batch, "jobs_per_s": rate.round()}));
        settings.push((format!("1x{batch}"), rate));
        if rate > best.0 {
            best = (rate, batch);
        }
    }
    report("floor", best.0, "jobs/s", json!({"batch": best.1, "tries": tries}), a, "sqlite");
    FloorRound { best: best.0, settings }
}

/// One SQLite floor run with batches of `batch`.
async fn sqlite_floor_once(a: &Args, batch: usize) -> f64 {
    let db = fresh(&a.url).await;
    let Pool::Sqlite(pool) = db.pool().clone() else { unreachable!() };
    queue_noops(&db, a.jobs).await;
    let mut conn = pool.acquire().await.unwrap();
    let now = || chrono::Utc::now().timestamp_millis();
    let start = Instant::now();
    loop {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await.unwrap();
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE jobsmith_jobs SET state = 'executing', attempt = attempt + 1, attempted_at = ?1,
                 attempted_by = 'floor'
             WHERE id IN (SELECT id FROM jobsmith_jobs WHERE state = 'available' AND queue = 'bench'
                          ORDER BY priority, scheduled_at, id LIMIT ?2)
             RETURNING id",
        )
        .bind(now())
        .bind(batch as i64)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
        if ids.is_empty() {
            break;
        }
        sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
        sqlx::query(
            "UPDATE jobsmith_jobs SET state = 'completed', completed_at = ?1
             WHERE id IN (SELECT value FROM json_each(?2)) AND state = 'executing'",
        )
        .bind(now())
        .bind(serde_json::Value::from(ids).to_string())
        .execute(&mut *conn)
        .await
        .unwrap();
        sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
    }
    a.jobs as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let a = args();
    micros_now();
    if let Some(url) = &a.worker_of {
        return worker_process(url, &a).await;
    }
    let all = a.scenario == "all";
    // `burn-down-vs-floor`: the two interleaved round by round, for the ratio of their medians.
    let pair = a.scenario == "burn-down-vs-floor";
    let run = |s: &str| all || a.scenario == s || (pair && (s == "burn-down" || s == "floor"));
    // Each insert round runs jobsmith and then its floor, `--rounds` times: one short run each
    // (20,000 rows take a tenth of a second) is mostly this machine's noise.
    if run("insert-single") {
        let rounds: Vec<_> = rounds_of(a.rounds, || insert_single(&a)).await;
        summarize_against_floor("insert-single", &rounds);
    }
    if run("insert-bulk") {
        let rounds: Vec<_> = rounds_of(a.rounds, || insert_bulk(&a)).await;
        summarize_against_floor("insert-bulk", &rounds);
    }
    // The burn-downs and the floor, `--rounds` times round-robin: this machine's speed drifts by
    // up to 2x within minutes, so each setting is compared through its median over rounds that
    // interleave with the floor's, not through one run each.
    let sizes = a.prefetch.clone().unwrap_or_else(|| vec![a.concurrency, a.concurrency * 4]);
    let mut settings: Vec<(String, usize, bool)> = Vec::new();
    if run("burn-down") {
        settings.push(("burn-down".into(), 0, false));
    }
    if run("burn-down-relaxed") {
        settings.push(("burn-down-relaxed".into(), 0, true));
    }
    // Not in `all`: what a transactional job costs, against `burn-down` in the same rounds.
    if a.scenario == "burn-down-tx" {
        settings.push(("burn-down".into(), 0, false));
        settings.push(("burn-down-tx".into(), 0, false));
    }
    if run("burn-down-prefetch") {
        for &p in &sizes {
            settings.push((format!("burn-down-prefetch-{p}"), p, false));
        }
    }
    if run("burn-down-prefetch-relaxed") {
        let p = sizes.last().copied().unwrap_or(a.concurrency);
        settings.push((format!("burn-down-prefetch-{p}-relaxed"), p, true));
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); settings.len()];
    let mut floors = Vec::new();
    let mut floor_settings: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for _ in 0..a.rounds {
        for (i, (name, prefetch, relaxed)) in settings.iter().enumerate() {
            let rate = if name == "burn-down-tx" {
                burn_down_tx(&a).await
            } else {
                burn_down(&a, *prefetch, *relaxed).await
            };
            rates[i].push(rate);
        }
        if run("floor")
            && let Some(f) = floor(&a).await
        {
            floors.push(f.best);
            for (name, rate) in f.settings {
                floor_settings.entry(name).or_default().push(rate);
            }
        }
    }
    let floor_median = median(&floors);
    // Two more readings of the floor beside the median of each round's best: the best setting's
    // own median (the best of one round is the luckiest of several noisy runs, which a median of
    // bests carries along), and on SQLite the naive pipeline issue 14 defines (batches of 50).
    let setting_medians: Vec<(String, f64)> =
        floor_settings.iter().filter_map(|(n, r)| median(r).map(|m| (n.clone(), m))).collect();
    let best_setting = setting_medians.iter().cloned().max_by(|x, y| x.1.total_cmp(&y.1));
    let naive = a
        .url
        .starts_with("sqlite:")
        .then(|| setting_medians.iter().find(|s| s.0 == "1x50").map(|s| s.1))
        .flatten();
    let pct = |m: f64, f: Option<f64>| f.map(|f| (m / f * 1000.0).round() / 10.0);
    for ((name, _, _), r) in settings.iter().zip(&rates) {
        let m = median(r).unwrap_or_default();
        println!(
            "{}",
            json!({"scenario": format!("{name}-summary"), "figure": m.round(), "unit": "jobs/s (median)",
                   "rounds": r.len(), "min": min_of(r).round(), "max": max_of(r).round(),
                   "median_vs_floor_median_pct": pct(m, floor_median),
                   "best_floor_setting": best_setting.as_ref().map(|b| b.0.clone()),
                   "median_vs_best_setting_median_pct": pct(m, best_setting.as_ref().map(|b| b.1)),
                   "median_vs_batch_50_floor_median_pct": pct(m, naive)})
        );
    }
    if let Some(f) = floor_median {
        println!(
            "{}",
            json!({"scenario": "floor-summary", "figure": f.round(), "unit": "jobs/s (median)", "rounds": floors.len(),
                   "min": min_of(&floors).round(), "max": max_of(&floors).round()})
        );
    }
    if run("steady") {
        steady(&a).await;
    }
    if run("latency") {
        latency(&a, false).await;
    }
    // Not in `all`: each takes minutes.
    if a.scenario == "scale-out" {
        scale_out(&a).await;
    }
    if a.scenario == "history" {
        history(&a).await;
    }
    if a.scenario == "prune-steady" {
        prune_steady(&a).await;
    }
    if a.scenario == "rate-limited" {
        rate_limited(&a).await;
    }
    if a.scenario == "partitioned" {
        partitioned(&a).await;
    }
    if a.scenario == "sequenced" {
        sequenced(&a).await;
    }
    if run("latency-relaxed") {
        latency(&a, true).await;
    }
    drop_databases(&a.url).await;
}

/// Drops the databases (or removes the SQLite files) this run created.
async fn drop_databases(url: &str) {
    if url.starts_with("sqlite:") {
        let prefix = format!("jobsmith-bench-{}-", std::process::id());
        for entry in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        return;
    }
    let admin = PgPool::connect(url).await.expect("connect to PostgreSQL");
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
        .bind(format!("jobsmith\\_bench\\_{}\\_%", std::process::id()))
        .fetch_all(&admin)
        .await
        .unwrap_or_default();
    for name in names {
        let _ = sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&admin)
            .await;
    }
}
