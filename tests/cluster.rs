//! Real processes on one PostgreSQL: crash a node, crash the leader, restart every node under
//! load, and hold a global limit across nodes. Each node is `examples/cluster_node.rs` in its own
//! OS process (built by `cargo test`, which builds the examples).

#![allow(unreachable_pub, dead_code, unused_macros)]

#[path = "conformance/harness.rs"]
#[macro_use]
mod harness;

#[path = "support/faults.rs"]
mod faults;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{new_pg_database, wait_for};
use jobsmith::prelude::*;
use sqlx::PgPool;

/// The example binary, next to this test binary's directory.
fn node_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("examples").join("cluster_node");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test` (which builds examples) or `cargo build --example cluster_node`",
        bin.display()
    );
    bin
}

struct Node {
    name: String,
    child: Child,
}

impl Node {
    fn start(url: &str, name: &str, env: &[(&str, &str)]) -> Node {
        let mut cmd = Command::new(node_binary());
        cmd.env("DATABASE_URL", url).env("NODE_NAME", name).stdout(Stdio::piped()).stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn node");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("ready"), "node {name} did not start: {line:?}");
        Node { name: name.to_string(), child }
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    fn terminate(mut self) {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "node {} exited with {status}", self.name);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn setup() -> (PgPool, String) {
    let pool = new_pg_database().await;
    let db: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&pool).await.unwrap();
    let mut url = harness::base_url();
    let cut = url.rfind('/').unwrap();
    url.truncate(cut + 1);
    url.push_str(&db);
    prepare(&pool).await;
    (pool, url)
}

/// The schema and the tables the node binary records into.
async fn prepare(pool: &PgPool) {
    jobsmith::migrate(pool).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE cluster_runs (job_id bigint NOT NULL, n bigint NOT NULL, node text NOT NULL, attempt int NOT NULL,
                                    claimed_at timestamptz, started_at timestamptz NOT NULL DEFAULT clock_timestamp());
         CREATE TABLE cluster_gauge (cur int NOT NULL, peak int NOT NULL);
         CREATE TABLE cluster_ledger (job_id bigint NOT NULL, n bigint NOT NULL);
         CREATE TABLE cluster_tenant_gauge (tenant text PRIMARY KEY, cur int NOT NULL, peak int NOT NULL);
         INSERT INTO cluster_gauge VALUES (0, 0);",
    )
    .execute(pool)
    .await
    .unwrap();
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(pool).await.unwrap()
}

async fn insert_work(pool: &PgPool, from: i64, n: i64, sleep_ms: u64) {
    let jobs = (from..from + n).map(|i| ClusterWork { n: i, sleep_ms }.build().unwrap()).collect();
    jobsmith::insert_all(pool, jobs).await.unwrap();
}

/// The node binary's partitioned job (same worker name), so the test can insert it.
#[jobsmith::job(
    queue = "work",
    max_attempts = 5,
    partition = "tenant",
    name = "cluster_node::ClusterTenantWork"
)]
async fn cluster_tenant_work(tenant: String, n: i64, sleep_ms: u64) -> Result<(), String> {
    let _ = (tenant, n, sleep_ms);
    Ok(())
}

/// The node binary's squaring job (same worker name): inserted and awaited by the test, run only
/// by a node.
#[jobsmith::job(queue = "work", name = "cluster_node::ClusterSquare")]
async fn cluster_square(n: i64) -> Result<i64, String> {
    Ok(n * n)
}

/// The same job type as the node binary's (same worker name), so the test can insert it.
#[jobsmith::job(queue = "work", max_attempts = 5, name = "cluster_node::ClusterWork")]
async fn cluster_work(n: i64, sleep_ms: u64) -> Result<(), String> {
    let _ = (n, sleep_ms);
    unreachable!("runs only in the node processes")
}

/// The node binary's ledger job (same worker name), which writes in its own transaction.
#[jobsmith::job(queue = "ledger", max_attempts = 20, name = "cluster_node::ClusterLedger")]
async fn cluster_ledger(n: i64, sleep_ms: u64) -> Result<(), String> {
    let _ = (n, sleep_ms);
    unreachable!("runs only in the node processes")
}

const MINUTES: Duration = Duration::from_secs(180);

/// Jobs that write a row in their own transaction (to a table without a unique constraint), on
/// three nodes of which one is SIGKILLed and replaced six times while they run: afterwards every
/// job completed and the table holds exactly one row per job, though jobs cut short by the kills
/// ran more than once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_that_write_in_their_own_transaction_leave_one_row_each_across_repeated_sigkills() {
    let (pool, url) = setup().await;
    const JOBS: i64 = 2_000;
    let jobs = (0..JOBS).map(|n| ClusterLedger { n, sleep_ms: 50 }.build().unwrap()).collect();
    jobsmith::insert_all(&pool, jobs).await.unwrap();
    let env = [("LEDGER", "5")];
    let mut nodes: Vec<Node> = (0..3).map(|i| Node::start(&url, &format!("l{i}"), &env)).collect();
    for round in 0..6 {
        let before = count(&pool, "SELECT count(*) FROM cluster_runs").await;
        wait_for("the cluster to run more jobs", MINUTES, || async {
            (count(&pool, "SELECT count(*) FROM cluster_runs").await >= before + 150).then_some(())
        })
        .await;
        // Each node holds five open transactions at almost any moment: the kill cuts them.
        nodes.remove(round % nodes.len()).kill();
        nodes.push(Node::start(&url, &format!("l{}", round + 3), &env));
    }
    wait_for("every ledger job to complete", MINUTES, || async {
        (count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE state = 'completed'").await == JOBS)
            .then_some(())
    })
    .await;
    for node in nodes {
        node.terminate();
    }
    assert_eq!(count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE state <> 'completed'").await, 0);
    assert_eq!(count(&pool, "SELECT count(*) FROM cluster_ledger").await, JOBS, "one row per job");
    assert_eq!(count(&pool, "SELECT count(DISTINCT job_id) FROM cluster_ledger").await, JOBS);
    let mismatched =
        count(&pool, "SELECT count(*) FROM cluster_ledger l JOIN jobsmith.jobs j ON j.id = l.job_id WHERE j.args->>'n' <> l.n::text")
            .await;
    assert_eq!(mismatched, 0);
    let runs = count(&pool, "SELECT count(*) FROM cluster_runs").await;
    let rescued =
        count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE errors::text LIKE '%rescued%'").await;
    assert!(
        runs > JOBS && rescued > 0,
        "no kill cut a running job ({runs} runs, {rescued} rescued): the test proved nothing"
    );
    eprintln!(
        "figure: {JOBS} transactional jobs, {runs} runs, {rescued} rescued after 6 SIGKILLs, one ledger row each"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_no_job_and_live_nodes_run_nothing_twice() {
    let (pool, url) = setup().await;
    insert_work(&pool, 0, 5_000, 3).await;
    let n1 = Node::start(&url, "n1", &[]);
    let n2 = Node::start(&url, "n2", &[]);
    let n3 = Node::start(&url, "n3", &[]);
    wait_for("n2 to be busy", MINUTES, || async {
        (count(&pool, "SELECT count(*) FROM cluster_runs WHERE node = 'n2'").await >= 300).then_some(())
    })
    .await;
    n2.kill();
    let killed = Instant::now();
    wait_for("the killed node's jobs to be rescued", MINUTES, || async {
        (count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE errors::text LIKE '%rescued: node `n2`%'")
            .await
            > 0)
        .then_some(())
    })
    .await;
    eprintln!(
        "figure: jobs of a SIGKILLed node rescued {:?} after the kill (node_ttl 2 s)",
        killed.elapsed()
    );
    wait_for("all 5,000 jobs to complete", MINUTES, || async {
        (count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE state = 'completed'").await == 5_000)
            .then_some(())
    })
    .await;
    n1.terminate();
    n3.terminate();

    assert_eq!(count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE state <> 'completed'").await, 0);
    assert_eq!(count(&pool, "SELECT count(DISTINCT job_id) FROM cluster_runs").await, 5_000, "every job ran");
    let twice_on_live = count(
        &pool,
        "SELECT count(*) FROM (SELECT job_id FROM cluster_runs WHERE node <> 'n2' GROUP BY job_id HAVING count(*) > 1) t",
    )
    .await;
    assert_eq!(twice_on_live, 0, "a job of a live node ran twice");
    let rescued =
        count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE errors::text LIKE '%rescued: node `n2`%'")
            .await;
    assert!(rescued >= 1, "the killed node had jobs in flight that were rescued");
    let rerun = count(
        &pool,
        "SELECT count(*) FROM jobsmith.jobs j WHERE errors::text LIKE '%rescued%'
           AND NOT EXISTS (SELECT 1 FROM cluster_runs r WHERE r.job_id = j.id AND r.node <> 'n2')",
    )
    .await;
    assert_eq!(rerun, 0, "every rescued job ran again on a live node");
}

/// Three nodes with a per-second cron entry (`env` chooses timings and policy); the leader is
/// SIGKILLed once three slots fired. Asserts another node leads within `bound` and, after three
/// more slots, that every slot from the first to the last fired exactly once. Returns the takeover
/// time.
async fn kill_the_leader_under_cron(names: [&str; 3], env: &[(&str, &str)], bound: Duration) -> Duration {
    let (pool, url) = setup().await;
    let mut nodes: HashMap<String, Node> =
        names.iter().map(|n| (n.to_string(), Node::start(&url, n, env))).collect();
    let current_leader = || async {
        sqlx::query_scalar::<_, String>("SELECT node FROM jobsmith.leader WHERE expires_at > now()")
            .fetch_optional(&pool)
            .await
            .unwrap()
    };
    let slots_fired = || count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE meta ? 'cron_slot'");
    let leader: String = wait_for("a leader", MINUTES, current_leader).await;
    wait_for("three cron firings", MINUTES, || async { (slots_fired().await >= 3).then_some(()) }).await;
    nodes.remove(&leader).unwrap().kill();
    let killed = Instant::now();
    wait_for("a new leader", MINUTES, || async { current_leader().await.filter(|l| *l != leader) }).await;
    let takeover = killed.elapsed();
    assert!(takeover < bound, "takeover took {takeover:?}");
    let fired = slots_fired().await;
    wait_for("cron under the new leader", MINUTES, || async {
        (slots_fired().await >= fired + 3).then_some(())
    })
    .await;
    for (_, node) in nodes.drain() {
        node.terminate();
    }
    let slots: Vec<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "SELECT (meta->>'cron_slot')::timestamptz FROM jobsmith.jobs WHERE meta ? 'cron_slot' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for w in slots.windows(2) {
        assert_eq!((w[1] - w[0]).num_seconds(), 1, "a slot fired twice or not at all: {slots:?}");
    }
    takeover
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_in_time_and_cron_fires_each_slot_once() {
    // Short test timings: lease 1 s + heartbeat 200 ms, with scheduling slack.
    kill_the_leader_under_cron(["c1", "c2", "c3"], &[("CRON", "1")], Duration::from_secs(4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_loses_nothing_and_leaves_nothing_executing() {
    let (pool, url) = setup().await;
    let mut nodes: Vec<Node> = ["r1", "r2", "r3"].iter().map(|n| Node::start(&url, n, &[])).collect();
    let producer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            for batch in 0..40 {
                insert_work(&pool, batch * 50, 50, 20).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    for i in 0..3 {
        let old = nodes.remove(0);
        let name = format!("{}-b", old.name);
        old.terminate();
        nodes.push(Node::start(&url, &name, &[]));
        let _ = i;
    }
    producer.await.unwrap();
    wait_for("all 2,000 jobs to complete", MINUTES, || async {
        (count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE state = 'completed'").await == 2_000)
            .then_some(())
    })
    .await;
    for node in nodes {
        node.terminate();
    }
    assert_eq!(count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE state = 'executing'").await, 0);
    assert_eq!(count(&pool, "SELECT count(DISTINCT n) FROM cluster_runs").await, 2_000);
    assert_eq!(count(&pool, "SELECT count(*) FROM jobsmith.nodes").await, 0, "every node removed its row");
}

/// Starts three node processes named `names` with `env`, waits until `completed` jobs are
/// completed, then stops them.
async fn run_three_nodes(pool: &PgPool, url: &str, names: [&str; 3], env: &[(&str, &str)], completed: i64) {
    let nodes: Vec<Node> = names.iter().map(|n| Node::start(url, n, env)).collect();
    stop_when_completed(pool, nodes, completed).await;
}

/// Waits until `completed` jobs are completed, then stops `nodes` with SIGTERM.
async fn stop_when_completed(pool: &PgPool, nodes: Vec<Node>, completed: i64) {
    wait_for(&format!("{completed} jobs"), MINUTES, || async {
        (count(pool, "SELECT count(*) FROM jobsmith.jobs WHERE state = 'completed'").await == completed)
            .then_some(())
    })
    .await;
    for node in nodes {
        node.terminate();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_limit_of_five_holds_over_three_nodes() {
    let (pool, url) = setup().await;
    insert_work(&pool, 0, 300, 20).await;
    let limit = [("GLOBAL_LIMIT", "5"), ("CONCURRENCY", "10")];
    run_three_nodes(&pool, &url, ["g1", "g2", "g3"], &limit, 300).await;
    let peak = count(&pool, "SELECT peak::bigint FROM cluster_gauge").await;
    assert!((2..=5).contains(&peak), "peak {peak} with a global limit of 5");
    assert!(count(&pool, "SELECT count(DISTINCT node) FROM cluster_runs").await >= 2, "work was shared");
}

/// The most rows of `cluster_runs` whose `column` falls in any window of `window_ms` starting at
/// one of them.
async fn peak_in_any_window(pool: &PgPool, column: &str, window_ms: i64) -> i64 {
    peak_where(pool, column, window_ms, "").await
}

/// [`peak_in_any_window`] over the rows `same` (SQL ending in AND, over `a` and `b`) pairs.
async fn peak_where(pool: &PgPool, column: &str, window_ms: i64, same: &str) -> i64 {
    count(
        pool,
        &format!(
            "SELECT coalesce(max((SELECT count(*) FROM cluster_runs b
                                  WHERE {same} b.{column} >= a.{column}
                                    AND b.{column} < a.{column} + {window_ms} * interval '1 millisecond')), 0)
             FROM cluster_runs a"
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_of_ten_a_second_holds_over_three_nodes_and_the_queue_runs_at_it() {
    let (pool, url) = setup().await;
    insert_work(&pool, 0, 60, 0).await;
    let env = [("RATE_LIMIT", "10/1s"), ("CONCURRENCY", "10")];
    run_three_nodes(&pool, &url, ["r1", "r2", "r3"], &env, 60).await;
    // Each job read its own claim stamp (`attempted_at`) when it started: what the limit counts.
    let claimed = peak_in_any_window(&pool, "claimed_at", 1_000).await;
    assert_eq!(claimed, 10, "the most claims in any second");
    // Six windows of ten: the last ten start five windows (and their guards: 5 % each) after the
    // first, not much later.
    let span_ms = count(
        &pool,
        "SELECT (EXTRACT(EPOCH FROM max(claimed_at) - min(claimed_at)) * 1000)::bigint FROM cluster_runs",
    )
    .await;
    assert!(span_ms >= 5_250, "the limit held: {span_ms} ms");
    assert!(span_ms < 7_500, "the queue ran far below its limit: {span_ms} ms");
    let started = peak_in_any_window(&pool, "started_at", 1_000).await;
    // The jobs' own clocks: each job took the time as its fn was entered, a few ms after its
    // claim (the log's guard covers the spread of that delay).
    assert!(started <= 10, "{started} jobs entered their fn within one second");
    let (lag_min, lag_max): (i64, i64) = sqlx::query_as(
        "SELECT (EXTRACT(EPOCH FROM min(started_at - claimed_at)) * 1000)::bigint,
                (EXTRACT(EPOCH FROM max(started_at - claimed_at)) * 1000)::bigint FROM cluster_runs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM cluster_runs").await, 60, "each job ran once");
    assert!(count(&pool, "SELECT count(DISTINCT node) FROM cluster_runs").await >= 2, "work was shared");
    eprintln!(
        "figure: rate limit 10/1s over three nodes: 60 jobs claimed over {span_ms} ms ({:.1} jobs/s); \
         peak claims in any second {claimed}, peak in-job starts in any second {started}; \
         claim to fn entry {lag_min}-{lag_max} ms",
        50_000.0 / span_ms as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_limit_of_two_holds_over_three_nodes_and_every_tenant_runs_side_by_side() {
    let (pool, url) = setup().await;
    // Four tenants of 12 jobs each, 300 ms a job; three nodes of 3 slots each, so no node can
    // run the 8 the limit lets run at once alone: the limit must hold across processes.
    let jobs = (0..48)
        .map(|i| ClusterTenantWork { tenant: format!("t{}", i % 4), n: i, sleep_ms: 300 }.build().unwrap())
        .collect();
    jobsmith::insert_all(&pool, jobs).await.unwrap();
    let env = [("PARTITION_LIMIT", "2"), ("CONCURRENCY", "3")];
    run_three_nodes(&pool, &url, ["p1", "p2", "p3"], &env, 48).await;
    let peaks: Vec<(String, i32)> =
        sqlx::query_as("SELECT tenant, peak FROM cluster_tenant_gauge ORDER BY tenant")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(peaks.len(), 4, "{peaks:?}");
    assert!(peaks.iter().all(|(_, p)| *p <= 2), "no tenant ran more than 2 at once: {peaks:?}");
    assert!(peaks.iter().all(|(_, p)| *p == 2), "every tenant reached its limit: {peaks:?}");
    assert_eq!(count(&pool, "SELECT count(*) FROM cluster_runs").await, 48, "each job ran once");
    assert!(count(&pool, "SELECT count(DISTINCT node) FROM cluster_runs").await >= 2, "work was shared");
    assert_eq!(count(&pool, "SELECT coalesce(sum(cur), 0) FROM cluster_tenant_gauge").await, 0);
}

/// [`peak_in_any_window`] counting only the runs of one tenant (`n % 4`) at a time.
async fn peak_of_a_tenant_in_any_window(pool: &PgPool, column: &str, window_ms: i64) -> i64 {
    peak_where(pool, column, window_ms, "b.n % 4 = a.n % 4 AND").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_for_each_tenant_holds_over_three_nodes_and_tenants_run_side_by_side() {
    let (pool, url) = setup().await;
    // Four tenants of 10 jobs each, 3 a second each, on three nodes of 5 slots: every node can
    // take more of a tenant than the limit, so the limit must hold across processes.
    let jobs = (0..40)
        .map(|i| ClusterTenantWork { tenant: format!("t{}", i % 4), n: i, sleep_ms: 0 }.build().unwrap())
        .collect();
    jobsmith::insert_all(&pool, jobs).await.unwrap();
    let env = [("RATE_LIMIT", "3/1s/partition"), ("CONCURRENCY", "5")];
    run_three_nodes(&pool, &url, ["s1", "s2", "s3"], &env, 40).await;
    let claimed = peak_of_a_tenant_in_any_window(&pool, "claimed_at", 1_000).await;
    assert_eq!(claimed, 3, "the most claims of one tenant in any second");
    let started = peak_of_a_tenant_in_any_window(&pool, "started_at", 1_000).await;
    assert!(started <= 3, "{started} jobs of one tenant entered their fn within one second");
    // Each tenant's ten start in four windows: the last three windows (and guards) after the
    // first; the tenants side by side, so the whole run takes no longer than one tenant's.
    let spans: Vec<i64> = sqlx::query_scalar(
        "SELECT (EXTRACT(EPOCH FROM max(claimed_at) - min(claimed_at)) * 1000)::bigint FROM cluster_runs
         GROUP BY n % 4 ORDER BY n % 4",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(spans.len(), 4, "{spans:?}");
    assert!(spans.iter().all(|s| *s >= 3_150), "the limit held for every tenant: {spans:?} ms");
    let whole = count(
        &pool,
        "SELECT (EXTRACT(EPOCH FROM max(claimed_at) - min(claimed_at)) * 1000)::bigint FROM cluster_runs",
    )
    .await;
    assert!(whole < 5_500, "tenants ran side by side at their limits: {whole} ms for all, {spans:?} each");
    assert_eq!(count(&pool, "SELECT count(*) FROM cluster_runs").await, 40, "each job ran once");
    assert!(count(&pool, "SELECT count(DISTINCT node) FROM cluster_runs").await >= 2, "work was shared");
    eprintln!(
        "figure: rate limit 3/1s for each of 4 tenants over three nodes: 40 jobs claimed over {whole} ms \
         ({:.1} jobs/s against 12/s); peak claims of a tenant in any second {claimed}, in-job starts {started}",
        36_000.0 / whole as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_runs_one_job_at_a_time_in_order_over_three_nodes() {
    let (pool, url) = setup().await;
    // Four tenants of 8 jobs each, 50 ms a job, on three nodes of 2 slots: without the sequence
    // every node could run both of its jobs from one tenant. The nodes are up before the jobs
    // are inserted, and none can hold more than two of the four heads, so the work is shared
    // (a node started first with a backlog waiting could otherwise take every head in turn).
    let env = [("SEQUENCE", "wait"), ("CONCURRENCY", "2")];
    let nodes: Vec<Node> = ["q1", "q2", "q3"].iter().map(|n| Node::start(&url, n, &env)).collect();
    let jobs = (0..32)
        .map(|i| ClusterTenantWork { tenant: format!("t{}", i % 4), n: i, sleep_ms: 50 }.build().unwrap())
        .collect();
    jobsmith::insert_all(&pool, jobs).await.unwrap();
    stop_when_completed(&pool, nodes, 32).await;
    let peaks: Vec<(String, i32)> =
        sqlx::query_as("SELECT tenant, peak FROM cluster_tenant_gauge ORDER BY tenant")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(peaks.len(), 4, "{peaks:?}");
    assert!(peaks.iter().all(|(_, p)| *p == 1), "one job of a tenant at a time: {peaks:?}");
    // Each tenant's jobs started in insertion (id) order.
    let out_of_order = count(
        &pool,
        "SELECT count(*) FROM (
             SELECT job_id, lag(job_id) OVER (PARTITION BY n % 4 ORDER BY started_at) AS before FROM cluster_runs
         ) r WHERE before > job_id",
    )
    .await;
    assert_eq!(out_of_order, 0, "a tenant's job started before an older one");
    assert_eq!(count(&pool, "SELECT count(*) FROM cluster_runs").await, 32, "each job ran once");
    let nodes = count(&pool, "SELECT count(DISTINCT node) FROM cluster_runs").await;
    assert!(nodes >= 2, "work was shared");
    // Tenants side by side: the whole run takes about one tenant's 8 jobs, not all 32 in a row.
    let whole = count(
        &pool,
        "SELECT (EXTRACT(EPOCH FROM max(started_at) - min(started_at)) * 1000)::bigint FROM cluster_runs",
    )
    .await;
    assert!(whole < 32 * 50, "tenants ran side by side: {whole} ms");
    eprintln!(
        "figure: 4 sequences of 8 jobs (50 ms) over three nodes: first to last start {whole} ms, on {nodes} nodes"
    );
}

/// Sequences over three nodes, one of which is SIGKILLed while it runs sequence heads: the
/// killed node's job holds its sequence until it is rescued and run again, and nothing after it
/// starts before it finished. Checked from SQL: every job completed, each job's runs start after
/// the previous job of its tenant completed, the rescued jobs ran again on a live node, and no job
/// ran twice on a live node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_stays_in_order_when_the_node_running_its_head_is_killed() {
    let (pool, url) = setup().await;
    let env = [("SEQUENCE", "wait"), ("CONCURRENCY", "2")];
    let mut nodes: Vec<Node> = ["k1", "k2", "k3"].iter().map(|n| Node::start(&url, n, &env)).collect();
    let jobs = (0..40)
        .map(|i| ClusterTenantWork { tenant: format!("t{}", i % 4), n: i, sleep_ms: 200 }.build().unwrap())
        .collect();
    jobsmith::insert_all(&pool, jobs).await.unwrap();
    wait_for("k2 to run sequence heads", MINUTES, || async {
        (count(&pool, "SELECT count(*) FROM cluster_runs WHERE node = 'k2'").await >= 2).then_some(())
    })
    .await;
    // k2 runs 200 ms jobs in its two slots back to back: the kill cuts one or two heads short.
    nodes.remove(1).kill();
    let killed = Instant::now();
    stop_when_completed(&pool, nodes, 40).await;

    let rescued =
        count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE errors::text LIKE '%rescued: node `k2`%'")
            .await;
    assert!(rescued >= 1, "the killed node held a sequence's head");
    let early = count(
        &pool,
        "SELECT count(*) FROM cluster_runs r JOIN jobsmith.jobs j ON j.id = r.job_id
         JOIN LATERAL (SELECT p.completed_at FROM jobsmith.jobs p
                       WHERE p.partition_key = j.partition_key AND p.id < j.id ORDER BY p.id DESC LIMIT 1) prev ON true
         WHERE r.started_at < prev.completed_at",
    )
    .await;
    assert_eq!(early, 0, "a job started before the one before it in its sequence completed");
    assert_eq!(count(&pool, "SELECT count(DISTINCT job_id) FROM cluster_runs").await, 40, "every job ran");
    let twice_on_live = count(
        &pool,
        "SELECT count(*) FROM (SELECT job_id FROM cluster_runs WHERE node <> 'k2' GROUP BY job_id HAVING count(*) > 1) t",
    )
    .await;
    assert_eq!(twice_on_live, 0, "a job of a live node ran twice");
    let rerun = count(
        &pool,
        "SELECT count(*) FROM jobsmith.jobs j WHERE errors::text LIKE '%rescued%'
           AND NOT EXISTS (SELECT 1 FROM cluster_runs r WHERE r.job_id = j.id AND r.node <> 'k2')",
    )
    .await;
    assert_eq!(rerun, 0, "every rescued job ran again on a live node");
    eprintln!(
        "figure: 4 sequences over three nodes, one SIGKILLed: {rescued} heads rescued, all 40 jobs done {:?} after the kill",
        killed.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_default_timings_a_leader_kill_loses_no_cron_slot() {
    // The library's own lease (5 s) and heartbeat (1 s), the default missed-slot policy: the
    // slots of the seconds before takeover are late, not missed, and must each fire once.
    let env = [("CRON", "1"), ("CRON_POLICY", "default"), ("TIMINGS", "default")];
    // Documented bound: lease + heartbeat interval (6 s); allow scheduling slack.
    let takeover = kill_the_leader_under_cron(["d1", "d2", "d3"], &env, Duration::from_secs(10)).await;
    eprintln!("figure: takeover after SIGKILL of the leader with default timings: {takeover:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_node_ttl_runs_nothing_twice_and_still_rescues_the_dead() {
    // A cluster of the test's own, so it can be stopped. Node TTL 2 s (cluster_node's short
    // timings); the database is away for 5 s, and one node is killed while it is away.
    let cluster = faults::TempCluster::start().await;
    cluster.create_database("jobs").await;
    let url = cluster.url_for("jobs");
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&url).await.unwrap();
    prepare(&pool).await;
    // Jobs of 8 s that record their run last: those running when the database goes away finish
    // after it is back, so a node rescued by mistake would see its jobs run twice.
    insert_work(&pool, 0, 80, 8_000).await;
    let env = [("RECORD_LAST", "1")];
    let n1 = Node::start(&url, "o1", &env);
    let n2 = Node::start(&url, "o2", &env);
    let n3 = Node::start(&url, "o3", &env);
    wait_for("every node busy", MINUTES, || async {
        let busy =
            count(&pool, "SELECT count(DISTINCT attempted_by) FROM jobsmith.jobs WHERE state = 'executing'")
                .await;
        (busy == 3
            && count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE state = 'executing'").await == 60)
            .then_some(())
    })
    .await;
    drop(pool);

    cluster.stop().await;
    let down = Instant::now();
    n3.kill(); // dies while the database is away: its jobs must still be rescued
    // The outage itself (a fault of fixed length, not a wait for a condition): 2.5 x the TTL.
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.start_again().await;
    let back = Instant::now();
    eprintln!("figure: database away for {:?}", back - down);
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&url).await.unwrap();
    let rescued_at = wait_for("the dead node's jobs to be rescued", MINUTES, || async {
        (count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE errors::text LIKE '%rescued: node `o3`%'")
            .await
            > 0)
        .then(Instant::now)
    })
    .await;
    eprintln!(
        "figure: jobs of a node killed during the outage rescued {:?} after the database came back",
        rescued_at - back
    );
    wait_for("all 80 jobs to complete", MINUTES, || async {
        (count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE state = 'completed'").await == 80)
            .then_some(())
    })
    .await;
    n1.terminate();
    n2.terminate();

    assert_eq!(count(&pool, "SELECT count(*) FROM jobsmith.jobs WHERE state <> 'completed'").await, 0);
    assert_eq!(count(&pool, "SELECT count(DISTINCT n) FROM cluster_runs").await, 80, "every job ran");
    let twice = count(
        &pool,
        "SELECT count(*) FROM (SELECT job_id FROM cluster_runs GROUP BY job_id HAVING count(*) > 1) t",
    )
    .await;
    eprintln!("figure: jobs run twice after the outage: {twice}");
    let false_rescues = count(
        &pool,
        "SELECT count(*) FROM jobsmith.jobs WHERE errors::text LIKE '%rescued: node `o1`%' OR errors::text LIKE '%rescued: node `o2`%'",
    )
    .await;
    eprintln!("figure: jobs of live nodes rescued after the outage: {false_rescues}");
    assert_eq!(false_rescues, 0, "a live node's jobs were rescued after the outage");
    let twice_without_a_true_rescue = count(
        &pool,
        "SELECT count(*) FROM jobsmith.jobs j WHERE (SELECT count(*) FROM cluster_runs r WHERE r.job_id = j.id) > 1
           AND errors::text NOT LIKE '%rescued: node `o3`%'",
    )
    .await;
    assert_eq!(twice_without_a_true_rescue, 0, "a job ran twice without a true rescue");
    assert_eq!(twice, 0, "the dead node recorded nothing it had not finished, so nothing ran twice");
}

/// A process that runs no runtime awaits jobs a node process runs: each wait returns its typed
/// result, woken by the database's announcement (the waiters' own re-read is set to an hour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_without_a_runtime_awaits_results_of_jobs_run_by_a_node() {
    let (pool, url) = setup().await;
    let node = Node::start(&url, "squarer", &[]);
    let db = jobsmith::Db::postgres(pool.clone(), "jobsmith")
        .unwrap()
        .with_wait_recheck(Duration::from_secs(3600));
    let mut handles = Vec::new();
    for n in 1..=20 {
        handles.push((n, db.enqueue(ClusterSquare { n }).await.unwrap()));
    }
    for (n, handle) in handles {
        assert_eq!(handle.wait(Duration::from_secs(60)).await.unwrap(), Some(n * n));
    }
    node.terminate();
}
