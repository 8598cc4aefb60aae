//! Faults as they happen in production, against a node in this process: a connection cut right
//! after a fetch's claim committed (its answer lost), and the database stopped under a leader.
//! Invariants are checked from SQL afterwards. Figures are printed as `figure: ...` lines (run
//! with `--nocapture`) and recorded in docs/reliability.md.

#![allow(unreachable_pub, dead_code, unused_macros)]

#[path = "conformance/harness.rs"]
mod harness;

#[path = "support/faults.rs"]
mod faults;

use std::collections::HashMap;
use std::net::ToSocketAddrs;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use faults::{FaultProxy, TempCluster};
use harness::{LONG, new_pg_database, wait_for};
use jobsmith::prelude::*;
use jobsmith::{Db, JobContext};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};

/// Runs per (test, job id): ids repeat across the tests' databases.
static RUNS: LazyLock<Mutex<HashMap<(String, i64), u32>>> = LazyLock::new(Default::default);

/// Counts its runs and completes.
#[jobsmith::job(queue = "faults")]
async fn counted(ctx: JobContext, test: String) -> Result<(), String> {
    *RUNS.lock().unwrap().entry((test, ctx.id)).or_default() += 1;
    Ok(())
}

fn runs_of(test: &str) -> Vec<u32> {
    RUNS.lock().unwrap().iter().filter(|((t, _), _)| t == test).map(|(_, n)| *n).collect()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_string())).fetch_one(pool).await.unwrap()
}

/// Where the shared test server listens, for the proxy to forward to.
fn server_addr() -> std::net::SocketAddr {
    let opts: sqlx::postgres::PgConnectOptions = harness::base_url().parse().unwrap();
    (opts.get_host(), opts.get_port()).to_socket_addrs().unwrap().next().unwrap()
}

/// A part of every fetch statement and of no other.
const FETCH_MARKER: &str = "picked_id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_whose_answer_is_lost_after_its_commit_strands_nothing() {
    const TEST: &str = "lost-answer";
    let direct = new_pg_database().await;
    jobsmith::migrate(&direct).await.unwrap();
    let name: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&direct).await.unwrap();
    let jobs = (0..100).map(|_| Counted { test: TEST.into() }.build().unwrap()).collect();
    jobsmith::insert_all(&direct, jobs).await.unwrap();

    let proxy = FaultProxy::start(server_addr()).await;
    // The node's first fetch commits its claim of 20 jobs and never hears back.
    proxy.cut_after_commit_of(FETCH_MARKER, 1);
    let through_proxy = PgPoolOptions::new().max_connections(5).connect(&proxy.url_for(&name)).await.unwrap();
    let rescue_interval = Duration::from_millis(500);
    let rt = Db::postgres(through_proxy, "jobsmith")
        .unwrap()
        .runtime()
        .node_name("cut-1")
        .queue("faults", 20)
        .poll_interval(Duration::from_millis(200))
        .rescue_interval(rescue_interval)
        .start()
        .await
        .unwrap();
    proxy.wait_for_cuts(1).await;
    let cut = Instant::now();
    let lost = "'%claimed the job but never ran it%'";
    wait_for("the lost claim to be handed back", LONG, || async {
        (count(&direct, &format!("SELECT count(*) FROM jobsmith.jobs WHERE errors::text LIKE {lost}")).await
            > 0)
        .then_some(())
    })
    .await;
    let reconciled = cut.elapsed();
    eprintln!(
        "figure: lost claim handed back {reconciled:?} after the cut (rescue_interval {rescue_interval:?})"
    );
    // Two reconciliation rounds confirm a lost claim; allow slack for a loaded machine.
    assert!(reconciled < rescue_interval * 2 + Duration::from_secs(10), "took {reconciled:?}");
    wait_for("all 100 jobs to complete", LONG, || async {
        (count(&direct, "SELECT count(*) FROM jobsmith.jobs WHERE state = 'completed'").await == 100)
            .then_some(())
    })
    .await;
    rt.shutdown().await.unwrap();

    assert_eq!(count(&direct, "SELECT count(*) FROM jobsmith.jobs WHERE state = 'executing'").await, 0);
    let handed_back =
        count(&direct, &format!("SELECT count(*) FROM jobsmith.jobs WHERE errors::text LIKE {lost}")).await;
    assert_eq!(handed_back, 20, "exactly the cut fetch's 20 jobs were handed back");
    assert_eq!(
        count(&direct, "SELECT count(*) FROM jobsmith.jobs WHERE attempt <> 1").await,
        0,
        "each job used one attempt: the lost claim's was returned"
    );
    let runs = runs_of(TEST);
    assert_eq!(runs.len(), 100, "every job ran");
    assert!(runs.iter().all(|n| *n == 1), "a job ran twice: {runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_steps_down_within_its_lease_when_the_database_stops() {
    let cluster = TempCluster::start().await;
    cluster.create_database("jobs").await;
    // The pool's defaults: an acquire waits up to 30 s, far longer than the lease.
    let pool = PgPoolOptions::new().connect(&cluster.url_for("jobs")).await.unwrap();
    let db = Db::postgres(pool, "jobsmith").unwrap();
    db.migrate().await.unwrap();
    // Default timings: lease 5 s, heartbeat every 1 s.
    let (lease, heartbeat) = (Duration::from_secs(5), Duration::from_secs(1));
    let rt = db.runtime().node_name("leader-1").queue("faults", 2).start().await.unwrap();
    wait_for("the node to lead", LONG, || async { rt.is_leader().then_some(()) }).await;

    cluster.stop().await;
    let stopped = Instant::now();
    wait_for("the leader to step down", LONG, || async { (!rt.is_leader()).then_some(()) }).await;
    let stepped_down = stopped.elapsed();
    eprintln!("figure: leader stepped down {stepped_down:?} after the database stopped (lease {lease:?})");
    assert!(stepped_down < lease + heartbeat, "still leading {stepped_down:?} after the database stopped");

    cluster.start_again().await;
    wait_for("the node to lead again", LONG, || async { rt.is_leader().then_some(()) }).await;
    rt.shutdown().await.unwrap();
}
