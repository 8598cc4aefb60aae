//! The README's main command works: the quickstart runs to completion on the embedded default
//! (SQLite in memory) and, with `DATABASE_URL`, on PostgreSQL.

#![allow(unreachable_pub, dead_code, unused_macros)]

#[path = "conformance/harness.rs"]
#[macro_use]
mod harness;

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("examples").join(name);
    assert!(bin.exists(), "{} is missing: `cargo test` builds the examples", bin.display());
    bin
}

fn run(name: &str, url: Option<&str>) -> String {
    let mut cmd = Command::new(example(name));
    cmd.env_remove("DATABASE_URL");
    if let Some(url) = url {
        cmd.env("DATABASE_URL", url);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{name} failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn the_quickstart_runs_on_embedded_sqlite_with_nothing_installed() {
    let out = run("quickstart", None);
    assert!(out.contains("started on sqlite"), "{out}");
    assert!(out.contains("all jobs completed; node stopped cleanly"), "{out}");
    assert!(out.contains("done on attempt 2"), "the retry ran: {out}");
}

#[tokio::test]
async fn the_same_quickstart_runs_on_postgres_from_the_url() {
    let pool = harness::new_pg_database().await;
    let db: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&pool).await.unwrap();
    let mut url = harness::base_url();
    url.truncate(url.rfind('/').unwrap() + 1);
    url.push_str(&db);
    let out = tokio::task::spawn_blocking(move || run("quickstart", Some(&url))).await.unwrap();
    assert!(out.contains("started on postgres"), "{out}");
    assert!(out.contains("all jobs completed"), "{out}");
}
