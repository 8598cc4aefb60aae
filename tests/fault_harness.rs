//! Tests of the fault-injection support in tests/support/faults.rs, so that fault tests built on
//! it can trust it: a throwaway cluster really stops and comes back with its data, and the proxy
//! really passes traffic, breaks connections, and swallows exactly the committed reply it was
//! armed for. Each test starts PostgreSQL clusters of its own (it needs the server binaries, not
//! the shared test server).

#![allow(unreachable_pub, dead_code, unused_macros)]

#[path = "conformance/harness.rs"]
mod harness;

#[path = "support/faults.rs"]
mod faults;

use std::future::Future;
use std::time::{Duration, Instant};

use faults::{FaultProxy, Seen, TempCluster};
use harness::{LONG, wait_for};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

/// The statement the commit-cut tests break; the marker is its start.
const BUMP: &str = "UPDATE marker_table SET n = n + 1 RETURNING n";
const MARKER: &str = "UPDATE marker_table";

async fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(20))
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_string())).fetch_one(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temp_cluster_stops_and_starts_again_with_its_data() {
    let cluster = TempCluster::start().await;
    assert!(cluster.is_running());
    cluster.create_database("kept").await;
    let url = cluster.url_for("kept");
    let mut conn = connect(&url).await;
    sqlx::raw_sql("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        .execute(&mut conn)
        .await
        .unwrap();
    let port: i32 = sqlx::query_scalar("SELECT inet_server_port()").fetch_one(&mut conn).await.unwrap();
    assert_eq!(port, i32::from(cluster.port()), "the URL reaches another server");

    cluster.stop().await;
    assert!(!cluster.is_running(), "pg_ctl status still sees the server after stop()");
    let open = sqlx::query("SELECT 1").execute(&mut conn).await;
    assert!(open.is_err(), "a connection opened before stop() still answers");
    assert!(PgConnection::connect(&url).await.is_err(), "a new connection succeeds after stop()");

    cluster.start_again().await;
    assert!(cluster.is_running());
    let mut conn = connect(&url).await;
    let v: i32 = sqlx::query_scalar("SELECT v FROM kept").fetch_one(&mut conn).await.unwrap();
    assert_eq!(v, 42, "the data did not survive the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_again_fails_loudly_when_the_port_was_taken() {
    let cluster = TempCluster::start().await;
    cluster.stop().await;
    let _squatter = std::net::TcpListener::bind(cluster.addr()).expect("take the stopped cluster's port");
    let restart = tokio::spawn(async move { cluster.start_again().await });
    let err = restart.await.expect_err("start_again succeeded on a taken port");
    let message = err.into_panic();
    let message = message.downcast_ref::<String>().map(String::as_str).unwrap_or("(not a string)");
    assert!(message.contains("was taken"), "unclear failure: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_temp_clusters_run_side_by_side_and_drop_removes_one() {
    let (a, b) = tokio::join!(TempCluster::start(), TempCluster::start());
    assert_ne!(a.port(), b.port());
    let (pa, pb) = (pool(&a.url()).await, pool(&b.url()).await);
    sqlx::raw_sql("CREATE TABLE only_in_a (v int)").execute(&pa).await.unwrap();
    let table = "SELECT count(*) FROM pg_class WHERE relname = 'only_in_a'";
    assert_eq!(scalar(&pa, table).await, 1);
    assert_eq!(scalar(&pb, table).await, 0, "the two clusters are one server");
    let dir = |p: &PgPool| {
        let p = p.clone();
        async move { sqlx::query_scalar::<_, String>("SHOW data_directory").fetch_one(&p).await.unwrap() }
    };
    assert_ne!(dir(&pa).await, dir(&pb).await);

    // Dropping one stops its server and removes its directory; the other runs on.
    let (a_dir, a_url) = (a.data_dir().to_path_buf(), a.url());
    pa.close().await;
    drop(a);
    assert!(!a_dir.exists(), "{} is still there after drop", a_dir.display());
    assert!(PgConnection::connect(&a_url).await.is_err(), "the dropped cluster still answers");
    assert_eq!(scalar(&pb, "SELECT 1::bigint").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_passes_queries_cuts_all_connections_and_refuses_on_demand() {
    let cluster = TempCluster::start().await;
    let proxy = FaultProxy::start(cluster.addr()).await;
    let url = proxy.url_for("postgres");
    let through = pool(&url).await;
    let port: i32 = sqlx::query_scalar("SELECT inet_server_port()").fetch_one(&through).await.unwrap();
    assert_eq!(port, i32::from(cluster.port()));
    assert!(proxy.connections() >= 1 && proxy.bytes_to_server() > 0 && proxy.bytes_to_client() > 0);

    // One connection idle in the pool's hands, one in the middle of a query.
    let mut idle = through.acquire().await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *idle).await.unwrap();
    let mut busy = connect(&url).await;
    // So that the server notices the closed socket during the sleep, and the test can see the
    // server side of the cut as well.
    sqlx::raw_sql("SET client_connection_check_interval = '100ms'").execute(&mut busy).await.unwrap();
    let busy_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut busy).await.unwrap();
    let sleeper =
        tokio::spawn(async move { sqlx::query("SELECT pg_sleep(30)").execute(&mut busy).await.map(|_| ()) });
    let direct = pool(&cluster.url()).await;
    let backend =
        format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {busy_pid} AND state = 'active'");
    wait_for("the sleep to run", LONG, || async { (scalar(&direct, &backend).await == 1).then_some(()) })
        .await;

    let before = proxy.connections();
    let cut_at = Instant::now();
    proxy.cut_all().await;
    assert_eq!(proxy.open_connections(), 0, "cut_all returned with connections open");
    let slept = tokio::time::timeout(Duration::from_secs(20), sleeper)
        .await
        .expect("the in-flight query still runs 20 s after cut_all")
        .unwrap();
    assert!(slept.is_err(), "the in-flight query succeeded across cut_all");
    assert!(cut_at.elapsed() < Duration::from_secs(20));
    assert!(
        sqlx::query("SELECT 1").execute(&mut *idle).await.is_err(),
        "the idle connection survived cut_all"
    );
    drop(idle);
    let gone = format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {busy_pid}");
    wait_for("the server to end the cut backend", LONG, || async {
        (scalar(&direct, &gone).await == 0).then_some(())
    })
    .await;

    // The pool recovers with new connections through the proxy.
    assert_eq!(sqlx::query_scalar::<_, i32>("SELECT 7").fetch_one(&through).await.unwrap(), 7);
    assert!(proxy.connections() > before, "the pool answered without a new connection");

    proxy.set_refusing(true);
    assert!(PgConnection::connect(&url).await.is_err(), "connected while the proxy refuses");
    assert!(proxy.refused() >= 1);
    proxy.set_refusing(false);
    connect(&url).await.close().await.unwrap();
}

/// A cluster with `marker_table (n = 0)`, a proxy in front of it, and a direct pool.
async fn marker_setup() -> (TempCluster, FaultProxy, PgPool) {
    let cluster = TempCluster::start().await;
    let direct = pool(&cluster.url()).await;
    sqlx::raw_sql("CREATE TABLE marker_table (n int NOT NULL); INSERT INTO marker_table VALUES (0)")
        .execute(&direct)
        .await
        .unwrap();
    let proxy = FaultProxy::start(cluster.addr()).await;
    (cluster, proxy, direct)
}

/// `n` as committed, read directly (not through the proxy).
async fn committed(direct: &PgPool) -> i32 {
    sqlx::query_scalar("SELECT n FROM marker_table").fetch_one(direct).await.unwrap()
}

/// Awaits a client operation through the proxy. A broken proxy may hold a reply without cutting,
/// and sqlx waits for it forever: this turns that into a failure.
async fn within<F: Future>(what: &str, op: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), op)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 30 s (a reply held back without a cut?)"))
}

/// The error of a cut statement: the connection ended, the statement itself did not fail.
async fn assert_cut(op: impl Future<Output = Result<i32, sqlx::Error>>) {
    match within("the cut statement", op).await {
        Ok(n) => panic!("the reply of the cut statement reached the client (n = {n})"),
        Err(sqlx::Error::Database(e)) => {
            panic!("the statement failed in the database instead of being cut: {e}")
        }
        Err(_) => {}
    }
}

/// What connection `conn` sent from message `from` of the log on.
fn sent(proxy: &FaultProxy, conn: u64, from: usize) -> Vec<Seen> {
    proxy.seen()[from..].iter().filter(|s| s.from_client && s.conn == conn).cloned().collect()
}

fn kinds(seen: &[Seen]) -> String {
    seen.iter().map(|s| s.kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_statement_run_again_is_cut_after_its_commit() {
    let (_cluster, proxy, direct) = marker_setup().await;
    let mut conn = connect(&proxy.url_for("postgres")).await;
    let conn_id = proxy.connections() as u64;
    let bump = || sqlx::query_scalar::<_, i32>(BUMP);
    assert_eq!(within("bump", bump().fetch_one(&mut conn)).await.unwrap(), 1, "not armed yet");

    proxy.cut_after_commit_of(MARKER, 1);
    let n: i32 = within("select", sqlx::query_scalar("SELECT n FROM marker_table").fetch_one(&mut conn))
        .await
        .unwrap();
    assert_eq!(n, 1, "a statement without the marker passes while armed");
    let mark = proxy.seen().len();
    assert_cut(bump().fetch_one(&mut conn)).await;
    proxy.wait_for_cuts(1).await;
    assert_eq!(committed(&direct).await, 2, "the cut statement did not commit");

    // The second execution carried no Parse, only a Bind naming the statement prepared by the
    // first, and it was that Bind that armed the connection.
    let second = sent(&proxy, conn_id, mark);
    assert!(!kinds(&second).contains('P'), "parsed again: {}", kinds(&second));
    let bound = second.iter().find(|s| s.kind == 'B').and_then(|s| s.statement.clone()).expect("a Bind");
    assert!(!bound.is_empty(), "executed as the unnamed statement, not a prepared one");
    let parsed = sent(&proxy, conn_id, 0);
    assert!(
        parsed
            .iter()
            .any(|s| s.kind == 'P' && s.statement.as_ref() == Some(&bound) && s.sql.as_deref() == Some(BUMP)),
        "{bound} was not prepared with the marker earlier on this connection"
    );
    let swallowed: Vec<char> =
        proxy.seen()[mark..].iter().filter(|s| s.conn == conn_id && !s.forwarded).map(|s| s.kind).collect();
    assert_eq!(
        swallowed.last(),
        Some(&'Z'),
        "the swallowed reply does not end with ReadyForQuery: {swallowed:?}"
    );

    // times = 1: the next identical statement passes, on a fresh connection, twice.
    let mut fresh = connect(&proxy.url_for("postgres")).await;
    assert_eq!(within("bump", bump().fetch_one(&mut fresh)).await.unwrap(), 3);
    assert_eq!(within("bump", bump().fetch_one(&mut fresh)).await.unwrap(), 4);
    assert_eq!(proxy.cuts(), 1);
    assert_eq!(committed(&direct).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_statement_through_a_pool_is_cut_after_its_commit_and_the_pool_recovers() {
    let (_cluster, proxy, direct) = marker_setup().await;
    proxy.cut_after_commit_of(MARKER, 1);
    let through = pool(&proxy.url_for("postgres")).await;
    let mark = proxy.seen().len();
    assert_cut(sqlx::query_scalar::<_, i32>(BUMP).fetch_one(&through)).await;
    proxy.wait_for_cuts(1).await;
    assert_eq!(committed(&direct).await, 1, "the cut statement did not commit");
    assert_eq!(proxy.pending_cuts(), 0);

    // The statement was new to its connection: Parse with the marker, then the Bind that armed.
    let cut_conn = proxy.seen()[mark..].iter().find(|s| !s.forwarded).expect("a swallowed message").conn;
    let sent = sent(&proxy, cut_conn, mark);
    let parse = sent.iter().position(|s| s.kind == 'P' && s.sql.as_deref() == Some(BUMP));
    let bind = sent.iter().position(|s| s.kind == 'B');
    assert!(
        matches!((parse, bind), (Some(p), Some(b)) if p < b),
        "expected Parse then Bind: {}",
        kinds(&sent)
    );

    // The next identical statement passes: the pool replaces the cut connection.
    assert_eq!(within("bump", sqlx::query_scalar::<_, i32>(BUMP).fetch_one(&through)).await.unwrap(), 2);
    assert_eq!(proxy.cuts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_queries_and_transactions_are_cut_at_the_first_idle_ready_for_query() {
    let (_cluster, proxy, direct) = marker_setup().await;
    let url = proxy.url_for("postgres");

    // Simple query protocol (`raw_sql` sends a Query message), armed for two turns.
    proxy.cut_after_commit_of(MARKER, 2);
    for turn in 1..=2 {
        let mut conn = connect(&url).await;
        let result = within("bump", sqlx::raw_sql(BUMP).execute(&mut conn)).await;
        assert!(
            matches!(&result, Err(e) if !matches!(e, sqlx::Error::Database(_))),
            "turn {turn} was not cut: {result:?}"
        );
        proxy.wait_for_cuts(turn).await;
        assert_eq!(committed(&direct).await, turn as i32, "turn {turn} did not commit");
    }
    let mut conn = connect(&url).await;
    within("bump", sqlx::raw_sql(BUMP).execute(&mut conn)).await.expect("both turns are used up");
    assert_eq!((committed(&direct).await, proxy.cuts()), (3, 2));

    // In a transaction block the UPDATE's reply comes through (ReadyForQuery 'T': nothing
    // committed yet); the COMMIT's reply is the one swallowed.
    proxy.cut_after_commit_of(MARKER, 1);
    let mut tx = within("begin", conn.begin()).await.unwrap();
    let n: i32 = within("bump", sqlx::query_scalar(BUMP).fetch_one(&mut *tx))
        .await
        .expect("the reply inside a transaction was held");
    assert_eq!(n, 4);
    assert_eq!(committed(&direct).await, 3, "committed before COMMIT");
    assert!(within("commit", tx.commit()).await.is_err(), "the COMMIT's reply reached the client");
    proxy.wait_for_cuts(3).await;
    assert_eq!(committed(&direct).await, 4, "the transaction did not commit");

    // Documented: a marked statement that fails is cut too, at its (idle) ReadyForQuery, though
    // nothing committed; the client sees the connection end, not the error.
    proxy.cut_after_commit_of(MARKER, 1);
    let mut conn = connect(&url).await;
    assert_cut(
        sqlx::query_scalar::<_, i32>("UPDATE marker_table SET n = n / 0 RETURNING n").fetch_one(&mut conn),
    )
    .await;
    proxy.wait_for_cuts(4).await;
    assert_eq!(committed(&direct).await, 4);
}
