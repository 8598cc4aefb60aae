//! The optional features, exercised through a running node: the dashboard (`dashboard`) and the
//! Prometheus endpoint (`prometheus`). `scripts/test.sh` runs with `--all-features`.

#![allow(unreachable_pub, dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A plain HTTP/1.0 GET, returning the whole response.
fn get(addr: SocketAddr, path: &str, headers: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{headers}\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[cfg(feature = "dashboard")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_serves_the_dashboard_behind_its_token() {
    use jobsmith::dashboard::{Auth, DashboardExt};
    let db = jobsmith::Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let runtime = db.runtime().queue("default", 1).start().await.unwrap();
    let server = runtime.dashboard("127.0.0.1:0".parse().unwrap(), Auth::token("t0ken")).await.unwrap();
    let addr = server.local_addr();
    let anonymous = tokio::task::spawn_blocking(move || get(addr, "/", "")).await.unwrap();
    assert!(!anonymous.starts_with("HTTP/1.0 200") && !anonymous.starts_with("HTTP/1.1 200"), "{anonymous}");
    let with_token =
        tokio::task::spawn_blocking(move || get(addr, "/", "Authorization: Bearer t0ken\r\n")).await.unwrap();
    assert!(with_token.contains(" 200 "), "{with_token}");
    assert!(with_token.contains("default"), "the queue is listed");
    server.shutdown().await;
    runtime.shutdown().await.unwrap();
}

#[cfg(feature = "prometheus")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_builder_call_serves_prometheus_metrics() {
    #[jobsmith::job(queue = "prom")]
    async fn scraped(n: i64) -> Result<(), String> {
        let _ = n;
        Ok(())
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let db = jobsmith::Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let runtime = db.runtime().queue("prom", 1).prometheus(addr).start().await.unwrap();
    let id = db.insert(Scraped { n: 1 }).await.unwrap().job.id;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = db.engine().get_job(id).await.unwrap().unwrap().state;
        let body = tokio::task::spawn_blocking(move || get(addr, "/metrics", "")).await.unwrap();
        if state == jobsmith::JobState::Completed && body.contains("jobsmith_jobs_completed_total{") {
            assert!(body.contains("queue=\"prom\""), "{body}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no completed counter in /metrics: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    runtime.shutdown().await.unwrap();
}
