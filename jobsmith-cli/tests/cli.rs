//! End-to-end tests of the `jobsmith` binary: each runs the real executable against a fresh
//! SQLite file and a fresh PostgreSQL database, and checks its output, exit status and effects.
//!
//! PostgreSQL comes from `DATABASE_URL` or `postgres://postgres@127.0.0.1:5432/test`; each test
//! creates its own database there. Start a server with `bash scripts/ensure-postgres.sh`.

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use jobsmith::engine::FetchRequest;
use jobsmith::{Db, InsertBuilder, Job, JobExt, JobState, Pool};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection};

/// Sends a mail; always succeeds.
#[jobsmith::job(queue = "mail", max_attempts = 3)]
async fn send_mail(to: String) -> Result<(), String> {
    let _ = to;
    Ok(())
}

/// Charges an invoice; always declined, with one attempt, so it is discarded after one run.
/// Totals an invoice; its result is what `jobs show` prints.
#[jobsmith::job(queue = "totals")]
async fn total(invoice: i64) -> Result<String, String> {
    Ok(format!("invoice {invoice}: 12.50 EUR"))
}

#[jobsmith::job(queue = "billing", max_attempts = 1, tags = ["money"])]
async fn charge(invoice: i64) -> Result<(), String> {
    Err(format!("card declined for invoice {invoice}"))
}

/// How long a condition may take before a test gives up on it.
const PATIENCE: Duration = Duration::from_secs(30);

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Stdout of a successful run.
    fn ok(self) -> String {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        self.stdout
    }

    /// Stdout of a successful run, parsed as one JSON document.
    fn json(self) -> Value {
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{out}"))
    }

    /// Stderr of a run that failed with `code`.
    fn fails(self, code: i32) -> String {
        assert_eq!(self.code, code, "expected exit status {code}, got {self:#?}");
        assert!(self.stdout.is_empty(), "a failed command printed on stdout: {self:#?}");
        self.stderr
    }
}

/// Runs the binary with `DATABASE_URL` set to `url` (or unset when `None`).
fn jobsmith(url: Option<&str>, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jobsmith"));
    command.args(args);
    match url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    let out = command.output().expect("the jobsmith binary runs");
    Run {
        code: out.status.code().expect("jobsmith exited by itself, not by a signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Polls `check` every 20 ms until it returns `Some`, panicking with `what` after [`PATIENCE`].
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < PATIENCE, "timed out after {PATIENCE:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The PostgreSQL server the tests use.
fn postgres_base_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `base` with its database name replaced by `name`, keeping any query string.
fn with_database(base: &str, name: &str) -> String {
    let (main, query) = base.split_once('?').map_or((base, None), |(m, q)| (m, Some(q)));
    let authority = main.find("://").expect("the URL has a scheme") + 3;
    let path = main[authority..].find('/').map_or(main.len(), |i| authority + i);
    match query {
        Some(q) => format!("{}/{name}?{q}", &main[..path]),
        None => format!("{}/{name}", &main[..path]),
    }
}

/// A name no other test of any run in progress uses.
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("jobsmith_cli_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A new, empty (unmigrated) database of one kind, removed again by [`Fresh::remove`].
#[derive(Debug)]
struct Fresh {
    kind: Kind,
    url: String,
    /// The PostgreSQL database name, or the SQLite file.
    name: String,
}

impl Fresh {
    /// A database nobody has touched.
    async fn new(kind: Kind) -> Fresh {
        let name = unique_name();
        match kind {
            Kind::Sqlite => {
                let file: PathBuf = std::env::temp_dir().join(format!("{name}.db"));
                remove_sqlite_files(&file.display().to_string());
                Fresh { kind, url: format!("sqlite:{}", file.display()), name: file.display().to_string() }
            }
            Kind::Postgres => {
                let base = postgres_base_url();
                let mut admin = admin_connection(&base).await;
                // A database left by an earlier run with the same pid would make CREATE fail.
                for sql in [format!("DROP DATABASE IF EXISTS {name}"), format!("CREATE DATABASE {name}")] {
                    sqlx::query(AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await
                        .expect("create the test database");
                }
                admin.close().await.ok();
                Fresh { kind, url: with_database(&base, &name), name }
            }
        }
    }

    /// A database migrated by `jobsmith migrate`, and a handle on it.
    async fn migrated(kind: Kind) -> (Fresh, Db) {
        let fresh = Fresh::new(kind).await;
        fresh.cli(&["migrate"]).ok();
        let db = Db::connect(&fresh.url).await.expect("connect to the test database");
        (fresh, db)
    }

    /// Runs the binary against this database.
    fn cli(&self, args: &[&str]) -> Run {
        jobsmith(Some(&self.url), args)
    }

    /// Runs the binary with `--json` and parses its output.
    fn json(&self, args: &[&str]) -> Value {
        self.cli(&[args, &["--json"]].concat()).json()
    }

    /// Runs a statement written for this engine.
    async fn sql(&self, db: &Db, sql: String) {
        match db.pool() {
            Pool::Postgres(pool) => sqlx::query(AssertSqlSafe(sql)).execute(pool).await.map(drop),
            Pool::Sqlite(pool) => sqlx::query(AssertSqlSafe(sql)).execute(pool).await.map(drop),
        }
        .expect("test SQL runs");
    }

    /// Marks job `id` finished in `state` at `age` ago, the way the runtime would have.
    async fn finish_at(&self, db: &Db, id: i64, state: JobState, age: Duration) {
        let column = format!("{state}_at");
        let sql = match self.kind {
            Kind::Postgres => format!(
                "UPDATE jobsmith.jobs SET state = '{state}', {column} = now() - interval '{} seconds' WHERE id = {id}",
                age.as_secs()
            ),
            Kind::Sqlite => {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("the clock is after 1970")
                    .as_millis();
                let at = now_ms - age.as_millis();
                format!("UPDATE jobsmith_jobs SET state = '{state}', {column} = {at} WHERE id = {id}")
            }
        };
        self.sql(db, sql).await;
    }

    /// Drops the database (or deletes the file). Skipped when a test fails, to leave evidence.
    async fn remove(self, db: Option<Db>) {
        match db.as_ref().map(Db::pool) {
            Some(Pool::Postgres(pool)) => pool.close().await,
            Some(Pool::Sqlite(pool)) => pool.close().await,
            None => {}
        }
        match self.kind {
            Kind::Sqlite => remove_sqlite_files(&self.name),
            Kind::Postgres => {
                let mut admin = admin_connection(&postgres_base_url()).await;
                sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
                    .execute(&mut admin)
                    .await
                    .expect("drop the test database");
                admin.close().await.ok();
            }
        }
    }
}

/// A connection to the PostgreSQL server's base database; panics with how to start one.
async fn admin_connection(base: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(base).await.unwrap_or_else(|e| {
        panic!(
            "these tests need PostgreSQL at {base} ({e}): start one with `bash scripts/ensure-postgres.sh` \
             or point DATABASE_URL at a server"
        )
    })
}

/// Deletes a SQLite file and its WAL companions, if present.
fn remove_sqlite_files(file: &str) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{file}{suffix}"));
    }
}

/// Inserts a mail job and returns its id.
async fn mail(db: &Db, to: &str) -> i64 {
    db.insert(SendMail { to: to.into() }).await.expect("insert a mail job").job.id
}

/// Inserts a charge job and returns its id.
async fn charge_job(db: &Db, invoice: i64) -> i64 {
    db.insert(Charge { invoice }).await.expect("insert a charge job").job.id
}

/// The state of job `id`, which must exist.
async fn state(db: &Db, id: i64) -> JobState {
    db.engine().get_job(id).await.expect("get_job").expect("the job exists").state
}

/// The ids in a `jobs list --json` document, in order.
fn ids(list: &Value) -> Vec<i64> {
    list["jobs"].as_array().expect("a jobs array").iter().map(|j| j["id"].as_i64().expect("an id")).collect()
}

/// The `status --json` entry of `queue`.
fn queue_status<'a>(status: &'a Value, queue: &str) -> &'a Value {
    status["queues"]
        .as_array()
        .expect("a queues array")
        .iter()
        .find(|q| q["name"] == queue)
        .unwrap_or_else(|| panic!("queue {queue} missing from {status:#}"))
}

/// Declares a test once per engine: `mod name { fn sqlite; fn postgres }`.
macro_rules! on_both {
    ($(#[doc = $doc:literal])* async fn $name:ident($kind:ident: Kind) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            use super::*;

            async fn run($kind: Kind) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Kind::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(Kind::Postgres).await
            }
        }
    };
}

on_both! {
    /// Migrating twice succeeds and leaves a usable database.
    async fn migrate_twice(kind: Kind) {
        let fresh = Fresh::new(kind).await;
        let first = fresh.cli(&["migrate"]).ok();
        assert!(first.contains("migrated"), "{first}");
        let again = fresh.json(&["migrate"]);
        assert_eq!(again["migrated"], true);
        assert_eq!(again["engine"], if kind == Kind::Sqlite { "sqlite" } else { "postgres" });
        fresh.json(&["status"]);
        fresh.remove(None).await;
    }
}

on_both! {
    /// An empty database has no queues, nodes or leader, in text and JSON.
    async fn status_of_an_empty_database(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let text = fresh.cli(&["status"]).ok();
        assert!(text.contains("no queues"), "{text}");
        assert!(text.contains("no live nodes"), "{text}");
        assert!(text.contains("leader: none"), "{text}");
        let status = fresh.json(&["status"]);
        assert_eq!(status["queues"], Value::Array(vec![]));
        assert_eq!(status["nodes"], Value::Array(vec![]));
        assert_eq!(status["leader"], Value::Null);
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// With a runtime working the jobs: counts per state, the live node, the leader; and the
    /// discarded job's error in `jobs show`.
    async fn status_of_a_working_cluster(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let mails = [mail(&db, "a@example.com").await, mail(&db, "b@example.com").await];
        let charge = charge_job(&db, 42).await;
        let waiting = db
            .insert(SendMail { to: "later@example.com".into() }.schedule_in(Duration::from_secs(3600)))
            .await
            .expect("insert a scheduled job")
            .job
            .id;
        let runtime = db
            .runtime()
            .node_name("cli-test-node")
            .queue("mail", 2)
            .queue("billing", 1)
            .start()
            .await
            .expect("start a runtime");
        for id in mails.into_iter().chain([charge]) {
            wait_for(&format!("job {id} to finish"), || async {
                state(&db, id).await.is_final().then_some(())
            })
            .await;
        }
        let engine = db.engine();
        wait_for("the node to lead", || async {
            (engine.leader().await.expect("leader").as_deref() == Some("cli-test-node")).then_some(())
        })
        .await;

        let status = fresh.json(&["status"]);
        let mail_queue = queue_status(&status, "mail");
        assert_eq!(mail_queue["counts"]["completed"], 2, "{status:#}");
        assert_eq!(mail_queue["counts"]["scheduled"], 1, "{status:#}");
        assert_eq!(mail_queue["total"], 3);
        assert_eq!(mail_queue["paused"], false);
        assert_eq!(mail_queue["concurrency"], Value::Null);
        assert_eq!(queue_status(&status, "billing")["counts"]["discarded"], 1, "{status:#}");
        let nodes = status["nodes"].as_array().expect("a nodes array");
        assert_eq!(nodes.len(), 1, "{status:#}");
        assert_eq!(nodes[0]["name"], "cli-test-node");
        assert!(nodes[0]["heartbeat_age_seconds"].as_i64().expect("an age") < 30);
        assert_eq!(status["leader"], "cli-test-node");

        let text = fresh.cli(&["status"]).ok();
        assert!(text.contains("leader: cli-test-node"), "{text}");
        let node_line = text.lines().find(|l| l.starts_with("cli-test-node")).expect("a line for the node");
        assert!(node_line.contains("billing,mail") || node_line.contains("mail,billing"), "{node_line}");
        assert!(node_line.ends_with("s ago"), "{node_line}");

        let shown = fresh.json(&["jobs", "show", &charge.to_string()]);
        assert_eq!(shown["state"], "discarded");
        let errors = shown["errors"].as_array().expect("an errors array");
        assert_eq!(errors.len(), 1, "{shown:#}");
        assert_eq!(errors[0]["attempt"], 1);
        assert_eq!(errors[0]["error"], "card declined for invoice 42");
        assert!(shown["discarded_at"].is_string());
        let text = fresh.cli(&["jobs", "show", &charge.to_string()]).ok();
        assert!(text.contains("attempt 1 at "), "{text}");
        assert!(text.contains(": card declined for invoice 42"), "{text}");

        runtime.shutdown().await.expect("shut the runtime down");
        let status = fresh.json(&["status"]);
        assert_eq!(status["nodes"], Value::Array(vec![]), "a cleanly stopped node is gone: {status:#}");
        assert_eq!(status["leader"], Value::Null);
        assert_eq!(state(&db, waiting).await, JobState::Scheduled);
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// Every filter of `jobs list`, newest first, and paging with `--limit` and `--before`.
    async fn list_filters_and_pages(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let mut mails = Vec::new();
        for to in ["alice@example.com", "bob@example.com", "alice@example.org", "carol@example.com"] {
            mails.push(mail(&db, to).await);
        }
        let charges = [charge_job(&db, 1).await, charge_job(&db, 2).await, charge_job(&db, 3).await];
        db.engine().cancel_job(mails[1]).await.expect("cancel");
        let all: Vec<i64> = mails.iter().chain(&charges).copied().rev().collect();

        let list = fresh.json(&["jobs", "list"]);
        assert_eq!(ids(&list), all, "newest first");
        assert_eq!(list["next_before"], Value::Null);
        assert_eq!(list["jobs"][0]["worker"], <Charge as Job>::NAME);

        let only = |args: &[&str]| ids(&fresh.json(&[&["jobs", "list"], args].concat()));
        assert_eq!(only(&["--state", "cancelled"]), vec![mails[1]]);
        assert_eq!(only(&["--state", "cancelled", "--state", "available"]), all);
        assert_eq!(only(&["--state", "completed,discarded"]), Vec::<i64>::new());
        assert_eq!(only(&["--queue", "billing"]), charges.iter().copied().rev().collect::<Vec<_>>());
        assert_eq!(only(&["--worker", <SendMail as Job>::NAME]), mails.iter().copied().rev().collect::<Vec<_>>());
        assert_eq!(only(&["--tag", "money"]).len(), 3);
        assert_eq!(only(&["--search", "alice"]), vec![mails[2], mails[0]]);
        assert_eq!(only(&["--search", &charges[1].to_string()]), vec![charges[1]]);
        assert_eq!(only(&["--queue", "mail", "--state", "available", "--search", "example.com"]), vec![mails[3], mails[0]]);

        // Pages of three: 7 jobs make 3 + 3 + 1, with no overlap and nothing lost.
        let first = fresh.json(&["jobs", "list", "--limit", "3"]);
        assert_eq!(ids(&first), all[..3]);
        let before = first["next_before"].as_i64().expect("a full page points at the next");
        assert_eq!(before, all[2]);
        let second = fresh.json(&["jobs", "list", "--limit", "3", "--before", &before.to_string()]);
        assert_eq!(ids(&second), all[3..6]);
        let before = second["next_before"].as_i64().expect("a full page points at the next").to_string();
        let last = fresh.json(&["jobs", "list", "--limit", "3", "--before", &before]);
        assert_eq!(ids(&last), all[6..]);
        assert_eq!(last["next_before"], Value::Null);

        let text = fresh.cli(&["jobs", "list", "--limit", "2"]).ok();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID") && lines[0].contains("STATE") && lines[0].contains("ARGS"), "{text}");
        assert!(lines[1].starts_with(&all[0].to_string()) && lines[1].contains("available"), "{text}");
        assert!(text.contains(&format!("--before {}", all[1])), "{text}");
        assert_eq!(fresh.cli(&["jobs", "list", "--queue", "nope"]).ok().trim(), "no jobs match");
        fresh.cli(&["jobs", "list", "--state", "sleeping"]).fails(2);
        fresh.cli(&["jobs", "list", "--limit", "0"]).fails(2);
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// `jobs show`: args, meta, tags, errors and times; a missing id is exit 3.
    async fn show_a_job_and_a_missing_one(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let id = db
            .insert(
                InsertBuilder::from(Charge { invoice: 7 }).tags(["vip"]).meta(serde_json::json!({"tenant": "acme"})).weight(3),
            )
            .await
            .expect("insert")
            .job
            .id;
        db.engine().cancel_job(id).await.expect("cancel");

        let shown = fresh.json(&["jobs", "show", &id.to_string()]);
        assert_eq!(shown["id"], id);
        assert_eq!(shown["state"], "cancelled");
        assert_eq!(shown["queue"], "billing");
        assert_eq!(shown["args"], serde_json::json!({"invoice": 7}));
        assert_eq!(shown["meta"]["tenant"], "acme");
        assert!(shown["tags"].as_array().expect("tags").contains(&"vip".into()), "{shown:#}");
        assert_eq!(shown["errors"].as_array().expect("errors").len(), 1, "{shown:#}");
        assert_eq!(shown["errors"][0]["error"], "cancelled by request");
        assert!(shown["inserted_at"].is_string() && shown["cancelled_at"].is_string());
        assert_eq!(shown["completed_at"], Value::Null);
        assert_eq!(shown["weight"], 3);

        let text = fresh.cli(&["jobs", "show", &id.to_string()]).ok();
        for part in ["state         cancelled", "queue         billing", "weight        3", "\"invoice\": 7", "\"tenant\": \"acme\"", "vip", "cancelled by request"] {
            assert!(text.contains(part), "{part:?} missing from:\n{text}");
        }

        // A recorded result is shown, in text and JSON.
        let totalled = db.insert(Total { invoice: 8 }).await.expect("insert").job.id;
        let drained = jobsmith::testing::drain_queue(&db, "totals", Default::default()).await.expect("drain");
        assert_eq!(drained.completed, 1);
        let shown = fresh.json(&["jobs", "show", &totalled.to_string()]);
        assert_eq!(shown["result"], "invoice 8: 12.50 EUR", "{shown:#}");
        let text = fresh.cli(&["jobs", "show", &totalled.to_string()]).ok();
        assert!(text.contains("result:\n  \"invoice 8: 12.50 EUR\""), "{text}");
        assert_eq!(fresh.json(&["jobs", "show", &id.to_string()])["result"], Value::Null);

        let stderr = fresh.cli(&["jobs", "show", "999999"]).fails(3);
        assert!(stderr.contains("no job with id 999999"), "{stderr}");
        fresh.cli(&["jobs", "show", "--json", "999999"]).fails(3);
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// Retrying one job and in bulk; refusals say why.
    async fn retry_one_and_in_bulk(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let engine = db.engine();
        let mails = [mail(&db, "a").await, mail(&db, "b").await, mail(&db, "c").await];
        let charge = charge_job(&db, 1).await;
        for id in mails.iter().chain([&charge]) {
            engine.cancel_job(*id).await.expect("cancel");
        }
        let live = mail(&db, "d").await;

        let out = fresh.cli(&["jobs", "retry", &mails[0].to_string()]).ok();
        assert!(out.contains("available again"), "{out}");
        assert_eq!(state(&db, mails[0]).await, JobState::Available);

        let stderr = fresh.cli(&["jobs", "retry", &live.to_string()]).fails(1);
        assert!(stderr.contains(&format!("job {live} is available")), "{stderr}");
        assert!(stderr.contains("only discarded or cancelled"), "{stderr}");
        fresh.cli(&["jobs", "retry", "999999"]).fails(3);

        let bulk = fresh.json(&["jobs", "retry", "--state", "cancelled", "--queue", "mail"]);
        assert_eq!(bulk["retried"], 2);
        for id in mails {
            assert_eq!(state(&db, id).await, JobState::Available);
        }
        assert_eq!(state(&db, charge).await, JobState::Cancelled, "other queues are left alone");
        let out = fresh.cli(&["jobs", "retry", "--state", "discarded,cancelled"]).ok();
        assert_eq!(out.trim(), "retried 1 job");
        assert_eq!(state(&db, charge).await, JobState::Available);

        let stderr = fresh.cli(&["jobs", "retry", "--state", "completed"]).fails(2);
        assert!(stderr.contains("only discarded or cancelled"), "{stderr}");
        fresh.cli(&["jobs", "retry"]).fails(2);
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// Cancelling an unfinished job, again, and a missing one.
    async fn cancel(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let id = mail(&db, "a").await;
        let done = fresh.json(&["jobs", "cancel", &id.to_string()]);
        assert_eq!(done["cancelled"], true);
        assert_eq!(done["previous_state"], "available");
        assert_eq!(state(&db, id).await, JobState::Cancelled);

        let stderr = fresh.cli(&["jobs", "cancel", &id.to_string()]).fails(1);
        assert!(stderr.contains(&format!("job {id} is already cancelled")), "{stderr}");
        let stderr = fresh.cli(&["jobs", "cancel", "999999"]).fails(3);
        assert!(stderr.contains("no job with id 999999"), "{stderr}");
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// Deleting a job; an executing one is refused; a missing one is exit 3.
    async fn delete(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let engine = db.engine();
        let id = mail(&db, "a").await;
        let out = fresh.cli(&["jobs", "delete", &id.to_string()]).ok();
        assert!(out.contains("deleted"), "{out}");
        assert!(engine.get_job(id).await.expect("get_job").is_none());

        let running = mail(&db, "b").await;
        let request = FetchRequest { queue: "mail", limit: 1, weight_cap: u32::MAX, node: "test-node", global_limit: None, after: None, relaxed_commit: false };
        assert_eq!(engine.fetch(&request).await.expect("fetch").len(), 1);
        let stderr = fresh.cli(&["jobs", "delete", &running.to_string()]).fails(1);
        assert!(stderr.contains("is executing"), "{stderr}");
        assert_eq!(state(&db, running).await, JobState::Executing);

        let stderr = fresh.cli(&["jobs", "delete", &id.to_string()]).fails(3);
        assert!(stderr.contains(&format!("no job with id {id}")), "{stderr}");
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// Pause, scale and resume persist, each keeping the other settings, and show in `status`.
    async fn pause_scale_resume(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let settings = || async {
            db.engine().queue_settings().await.expect("queue_settings").into_iter().find(|s| s.name == "mail")
        };

        // No job, node or setting names `mail` yet: storing its settings is asked for on purpose.
        let out = fresh.cli(&["queue", "pause", "mail", "--create"]).ok();
        assert!(out.contains("paused"), "{out}");
        let stored = settings().await.expect("settings persisted");
        assert_eq!((stored.paused, stored.concurrency), (Some(true), None));
        let mail_queue = queue_status(&fresh.json(&["status"]), "mail").clone();
        assert_eq!(mail_queue["paused"], true);
        assert_eq!(mail_queue["total"], 0, "a queue with settings but no jobs is listed");
        let text = fresh.cli(&["status"]).ok();
        let line = text.lines().find(|l| l.starts_with("mail ")).expect("a line for the queue");
        assert!(line.split_whitespace().nth(1) == Some("yes"), "{line}");

        let scaled = fresh.json(&["queue", "scale", "mail", "7"]);
        assert_eq!((scaled["paused"].clone(), scaled["concurrency"].clone()), (true.into(), 7.into()));
        let stored = settings().await.expect("settings persisted");
        assert_eq!((stored.paused, stored.concurrency), (Some(true), Some(7)));

        fresh.cli(&["queue", "resume", "mail"]).ok();
        let stored = settings().await.expect("settings persisted");
        assert_eq!((stored.paused, stored.concurrency), (Some(false), Some(7)));
        let mail_queue = queue_status(&fresh.json(&["status"]), "mail").clone();
        assert_eq!((mail_queue["paused"].clone(), mail_queue["concurrency"].clone()), (false.into(), 7.into()));

        fresh.cli(&["queue", "scale", "mail", "0"]).fails(2);
        fresh.cli(&["queue", "scale", "mail", "many"]).fails(2);
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// `queue rate-limit` stores a queue's rate limit for every node, shows it in `status`, clears
    /// it with `off`, and refuses a spelling or a limit it cannot keep, storing nothing.
    async fn rate_limit_sets_shows_and_clears_a_queues_rate_limit(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        mail(&db, "a@example.com").await;
        let settings = || async {
            db.engine().queue_settings().await.expect("queue_settings").into_iter().find(|s| s.name == "mail")
        };
        let set = fresh.json(&["queue", "rate-limit", "mail", "10/1s"]);
        assert_eq!(set["rate_limit"], serde_json::json!({"limit": 10, "window_ms": 1000, "per_partition": false}), "{set}");
        assert_eq!(settings().await.and_then(|s| s.rate_limit), Some(jobsmith::RateLimit::per_second(10)));
        assert_eq!(queue_status(&fresh.json(&["status"]), "mail")["rate_limit"]["limit"], 10);
        let text = fresh.cli(&["status"]).ok();
        assert!(text.lines().any(|l| l.starts_with("mail ") && l.contains("10 per 1s")), "{text}");

        for bad in ["10", "ten/1s", "0/1s", "10/1us", "20000/1s"] {
            let stderr = fresh.cli(&["queue", "rate-limit", "mail", bad]).fails(2);
            assert!(stderr.contains("rate limit"), "{bad}: {stderr}");
        }
        assert_eq!(settings().await.and_then(|s| s.rate_limit), Some(jobsmith::RateLimit::per_second(10)), "kept");

        // For each partition of the queue.
        let set = fresh.json(&["queue", "rate-limit", "mail", "10/1s/partition"]);
        assert_eq!(set["rate_limit"]["per_partition"], true, "{set}");
        let each = jobsmith::RateLimit::per_second(10).for_each_partition();
        assert_eq!(settings().await.and_then(|s| s.rate_limit), Some(each));
        assert_eq!(queue_status(&fresh.json(&["status"]), "mail")["rate_limit"]["per_partition"], true);
        let text = fresh.cli(&["status"]).ok();
        assert!(text.lines().any(|l| l.starts_with("mail ") && l.contains("10 per 1s for each partition")), "{text}");

        let out = fresh.cli(&["queue", "rate-limit", "mail", "off"]).ok();
        assert!(out.contains("has no rate limit"), "{out}");
        assert_eq!(settings().await.and_then(|s| s.rate_limit), None);
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// `queue partition-limit` stores a queue's partition limit for every node, shows it in
    /// `status`, clears it with `off`, and refuses 0 or a word, storing nothing.
    async fn partition_limit_sets_shows_and_clears_a_queues_partition_limit(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        mail(&db, "a@example.com").await;
        let stored = || async {
            db.engine().queue_settings().await.expect("queue_settings").into_iter().find(|s| s.name == "mail")
        };
        let set = fresh.json(&["queue", "partition-limit", "mail", "2"]);
        assert_eq!(set["partition_limit"], 2, "{set}");
        assert_eq!(stored().await.and_then(|s| s.partition_limit), Some(2));
        assert_eq!(queue_status(&fresh.json(&["status"]), "mail")["partition_limit"], 2);
        let text = fresh.cli(&["status"]).ok();
        assert!(text.contains("PARTITION LIMIT"), "{text}");
        for bad in ["0", "two", "3000000000"] {
            let stderr = fresh.cli(&["queue", "partition-limit", "mail", bad]).fails(2);
            assert!(stderr.contains("partition limit"), "{bad}: {stderr}");
        }
        assert_eq!(stored().await.and_then(|s| s.partition_limit), Some(2), "kept");
        let out = fresh.cli(&["queue", "partition-limit", "mail", "off"]).ok();
        assert!(out.contains("has no partition limit"), "{out}");
        assert_eq!(stored().await.and_then(|s| s.partition_limit), None);
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// `queue sequence` stores a queue's sequence policy for every node, shows it in `status`,
    /// clears it with `off`, and refuses another word, storing nothing.
    async fn sequence_sets_shows_and_clears_a_queues_sequence_policy(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        mail(&db, "a@example.com").await;
        let stored = || async {
            db.engine().queue_settings().await.expect("queue_settings").into_iter().find(|s| s.name == "mail").and_then(|s| s.sequence)
        };
        let set = fresh.json(&["queue", "sequence", "mail", "continue"]);
        assert_eq!(set["sequence"], "continue", "{set}");
        assert_eq!(stored().await, Some(jobsmith::SequencePolicy::ContinueAfterDiscard));
        assert_eq!(queue_status(&fresh.json(&["status"]), "mail")["sequence"], "continue");
        let stderr = fresh.cli(&["queue", "sequence", "mail", "later"]).fails(2);
        assert!(stderr.contains("sequence policy"), "{stderr}");
        assert_eq!(stored().await, Some(jobsmith::SequencePolicy::ContinueAfterDiscard), "kept");
        let out = fresh.cli(&["queue", "sequence", "mail", "off"]).ok();
        assert!(out.contains("is not sequenced"), "{out}");
        assert_eq!(stored().await, None);
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// `queue partition-weight` stores one partition's weight, `queue partition-weights` lists
    /// them (text and JSON), `off` clears one, and a weight outside 1 to 100 or an empty key is
    /// refused, storing nothing.
    async fn partition_weight_sets_lists_and_clears_a_partitions_weight(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let set = fresh.json(&["queue", "partition-weight", "reminders", "clinic-7", "3"]);
        assert_eq!(set["weight"], 3, "{set}");
        fresh.cli(&["queue", "partition-weight", "mailers", "a", "2"]).ok();
        let stored = db.engine().partition_weights(Some("reminders")).await.unwrap();
        assert_eq!((stored.len(), stored[0].partition.as_str(), stored[0].weight), (1, "clinic-7", 3));
        let listed = fresh.json(&["queue", "partition-weights", "reminders"]);
        assert_eq!(listed, serde_json::json!([{"queue": "reminders", "partition": "clinic-7", "weight": 3}]));
        let text = fresh.cli(&["queue", "partition-weights"]).ok();
        assert!(text.lines().any(|l| l.starts_with("reminders") && l.contains("clinic-7") && l.ends_with('3')), "{text}");
        assert_eq!(text.lines().count(), 3, "a header and two weights: {text}");

        for bad in ["0", "101", "heavy"] {
            let stderr = fresh.cli(&["queue", "partition-weight", "reminders", "clinic-7", bad]).fails(2);
            assert!(stderr.contains("partition weight"), "{bad}: {stderr}");
        }
        let empty = fresh.cli(&["queue", "partition-weight", "reminders", "", "2"]).fails(1);
        assert!(empty.contains("partition key"), "{empty}");
        assert_eq!(db.engine().partition_weights(None).await.unwrap().len(), 2, "nothing stored");

        let out = fresh.cli(&["queue", "partition-weight", "reminders", "clinic-7", "off"]).ok();
        assert!(out.contains("has no weight"), "{out}");
        assert!(db.engine().partition_weights(Some("reminders")).await.unwrap().is_empty());
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// `queue sequence-policy` chooses one sequence's policy, `queue sequence-policies` lists
    /// them (text and JSON), `off` clears one, and a bad policy or an empty key is refused,
    /// storing nothing.
    async fn sequence_policy_sets_lists_and_clears_one_sequences_policy(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let set = fresh.json(&["queue", "sequence-policy", "ledger", "account-7", "continue"]);
        assert_eq!(set["policy"], "continue", "{set}");
        fresh.cli(&["queue", "sequence-policy", "payouts", "a", "wait"]).ok();
        let stored = db.engine().sequence_policies(Some("ledger")).await.unwrap();
        assert_eq!(stored.len(), 1, "{stored:?}");
        assert_eq!((stored[0].partition.as_str(), stored[0].policy), ("account-7", jobsmith::SequencePolicy::ContinueAfterDiscard));
        let listed = fresh.json(&["queue", "sequence-policies", "ledger"]);
        assert_eq!(listed, serde_json::json!([{"queue": "ledger", "partition": "account-7", "policy": "continue"}]));
        let text = fresh.cli(&["queue", "sequence-policies"]).ok();
        assert!(text.lines().any(|l| l.starts_with("payouts") && l.ends_with("wait")), "{text}");
        assert_eq!(text.lines().count(), 3, "a header and two policies: {text}");

        let stderr = fresh.cli(&["queue", "sequence-policy", "ledger", "account-7", "sometimes"]).fails(2);
        assert!(stderr.contains("sequence policy"), "{stderr}");
        let empty = fresh.cli(&["queue", "sequence-policy", "ledger", "", "wait"]).fails(1);
        assert!(empty.contains("partition key"), "{empty}");
        assert_eq!(db.engine().sequence_policies(None).await.unwrap().len(), 2, "nothing stored");

        let out = fresh.cli(&["queue", "sequence-policy", "ledger", "account-7", "off"]).ok();
        assert!(out.contains("follows the queue's policy"), "{out}");
        assert!(db.engine().sequence_policies(Some("ledger")).await.unwrap().is_empty());
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// A queue no node runs and no job or setting names (a typo) is refused unless `--create`.
    async fn an_unknown_queue_is_refused_unless_created(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        for args in [&["queue", "pause", "nosuch"][..], &["queue", "resume", "nosuch"], &["queue", "scale", "nosuch", "3"]] {
            let stderr = fresh.cli(args).fails(1);
            assert!(stderr.contains("queue `nosuch` is not run by any node") && stderr.contains("--create"), "{args:?}: {stderr}");
        }
        assert!(db.engine().queue_settings().await.expect("queue_settings").is_empty(), "nothing was stored");
        // A queue with jobs is known.
        mail(&db, "a@example.com").await;
        fresh.cli(&["queue", "pause", "mail"]).ok();
        // `--create` stores settings for a queue that nodes will run later.
        let created = fresh.json(&["queue", "scale", "later", "4", "--create"]);
        assert_eq!((created["queue"].clone(), created["concurrency"].clone()), ("later".into(), 4.into()));
        // From then on it is known.
        fresh.cli(&["queue", "pause", "later"]).ok();
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// `jobs show` prints a bounded preview of large args and says how to get all of them.
    async fn show_bounds_large_args_and_full_prints_them(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let big = "x".repeat(10 * 1024 * 1024);
        let id = db.insert(SendMail { to: big.clone() }).await.expect("insert").job.id.to_string();

        let text = fresh.cli(&["jobs", "show", &id]).ok();
        assert!(text.len() < 200_000, "{} bytes printed", text.len());
        for part in ["showing the first 64 KiB of 10.0 MiB", &format!("jobsmith jobs show {id} --full")] {
            assert!(text.contains(part), "{part:?} missing from the end of:\n{}", &text[text.len() - 2000..]);
        }
        assert!(text.contains("state         available"), "the fields are still there");

        let full = fresh.cli(&["jobs", "show", &id, "--full"]).ok();
        assert!(full.contains(&big), "--full prints the whole args ({} bytes printed)", full.len());
        assert!(!full.contains("showing the first"), "no preview note with --full");
        // JSON is for scripts: always whole.
        assert_eq!(fresh.json(&["jobs", "show", &id])["args"]["to"].as_str().map(str::len), Some(big.len()));
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// `prune` deletes only rows older than each state's retention, defaults and flags.
    async fn prune_deletes_only_old_rows(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let day = Duration::from_secs(86_400);
        let hour = Duration::from_secs(3_600);
        let mut old_completed = Vec::new();
        for _ in 0..3 {
            let id = mail(&db, "old").await;
            fresh.finish_at(&db, id, JobState::Completed, 2 * day).await;
            old_completed.push(id);
        }
        let recent_completed = mail(&db, "recent").await;
        fresh.finish_at(&db, recent_completed, JobState::Completed, 2 * hour).await;
        let cancelled_2d = mail(&db, "c2").await;
        fresh.finish_at(&db, cancelled_2d, JobState::Cancelled, 2 * day).await;
        let cancelled_8d = mail(&db, "c8").await;
        fresh.finish_at(&db, cancelled_8d, JobState::Cancelled, 8 * day).await;
        let discarded_8d = mail(&db, "d8").await;
        fresh.finish_at(&db, discarded_8d, JobState::Discarded, 8 * day).await;
        let available = mail(&db, "new").await;
        let exists = |id: i64| {
            let engine = db.engine().clone();
            async move { engine.get_job(id).await.expect("get_job").is_some() }
        };

        let out = fresh.cli(&["prune"]).ok();
        assert!(out.starts_with("deleted 5 jobs"), "{out}");
        for id in old_completed.into_iter().chain([cancelled_8d, discarded_8d]) {
            assert!(!exists(id).await, "job {id} should be pruned");
        }
        for id in [recent_completed, cancelled_2d, available] {
            assert!(exists(id).await, "job {id} should be kept");
        }
        assert_eq!(fresh.json(&["prune"])["deleted"], 0);

        assert_eq!(fresh.json(&["prune", "--completed-older-than", "1h"])["deleted"], 1);
        assert!(!exists(recent_completed).await);
        assert_eq!(fresh.json(&["prune", "--cancelled-older-than", "1d12h"])["deleted"], 1);
        assert!(!exists(cancelled_2d).await);
        assert!(exists(available).await, "unfinished jobs are never pruned");

        let stderr = fresh.cli(&["prune", "--completed-older-than", "7"]).fails(2);
        assert!(stderr.contains("lacks a unit"), "{stderr}");
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// A database without jobsmith's tables: every command but `migrate` says to migrate.
    async fn unmigrated_database(kind: Kind) {
        let fresh = Fresh::new(kind).await;
        if kind == Kind::Sqlite {
            // A missing file is reported, and not created as a side effect.
            let stderr = fresh.cli(&["status"]).fails(1);
            assert!(stderr.contains("the database is not migrated: run `jobsmith migrate`"), "{stderr}");
            assert!(!std::path::Path::new(&fresh.name).exists(), "status created {}", fresh.name);
            // An existing SQLite file without the tables.
            std::fs::write(&fresh.name, b"").expect("create an empty database file");
        }
        for args in [&["status"][..], &["jobs", "list"], &["jobs", "show", "1"], &["queue", "pause", "q"], &["prune"]] {
            let stderr = fresh.cli(args).fails(1);
            assert!(stderr.contains("the database is not migrated: run `jobsmith migrate`"), "{args:?}: {stderr}");
        }
        fresh.cli(&["migrate"]).ok();
        fresh.cli(&["status"]).ok();
        fresh.remove(None).await;
    }
}

/// A URL of an unknown kind is refused by name, with its password hidden.
#[test]
fn unknown_database_kind() {
    let stderr = jobsmith(Some("mysql://root:hunter2@localhost/jobs"), &["status"]).fails(1);
    assert!(stderr.contains("cannot tell the database from `mysql://root:***@localhost/jobs`"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // --database-url wins over the environment.
    let run = jobsmith(Some("sqlite::memory:"), &["--database-url", "redis://x", "status"]);
    assert!(run.fails(1).contains("cannot tell the database from `redis://x`"));
}

/// No URL at all is a usage error.
#[test]
fn missing_database_url() {
    let stderr = jobsmith(None, &["status"]).fails(2);
    assert!(stderr.contains("--database-url") && stderr.contains("DATABASE_URL"), "{stderr}");
}

/// A server that does not answer is named, with the cause, quickly.
#[test]
fn unreachable_postgres() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let stderr = jobsmith(Some("postgres://postgres@127.0.0.1:1/nothing"), &["status"]).fails(1);
    assert!(stderr.contains("cannot reach the database at 127.0.0.1:1/nothing"), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
}

/// A database the server does not have is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_postgres_database() {
    // Reaching the server first makes sure this tests the database name, not the server.
    admin_connection(&postgres_base_url()).await.close().await.ok();
    let url = with_database(&postgres_base_url(), "jobsmith_cli_no_such_database");
    let stderr = jobsmith(Some(&url), &["status"]).fails(1);
    assert!(stderr.contains("refused the connection"), "{stderr}");
    assert!(stderr.contains("jobsmith_cli_no_such_database"), "{stderr}");
}

/// `jobsmith web` needs a token, serves the dashboard to holders of one, and stops on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_serves_the_dashboard() {
    let (fresh, db) = Fresh::migrated(Kind::Sqlite).await;
    let stderr = fresh.cli(&["web"]).fails(2);
    assert!(stderr.contains("--token"), "{stderr}");
    fresh.cli(&["web", "--token", ADMIN_TOKEN, "--addr", "not-an-address"]).fails(2);
    // Tokens too short to be secret are refused, whichever flag brings them.
    for args in [["--token", "admin-token"], ["--read-only-token", "viewer-token-15"]] {
        let stderr = fresh.cli(&["web", args[0], args[1]]).fails(2);
        assert!(stderr.contains("at least 16 characters"), "{stderr}");
    }

    let mut child = Command::new(env!("CARGO_BIN_EXE_jobsmith"))
        .args(["web", "--addr", "127.0.0.1:0", "--token", ADMIN_TOKEN, "--read-only-token", VIEWER_TOKEN])
        .env("DATABASE_URL", &fresh.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start jobsmith web");
    // The first line says where it listens; reading it waits until it does.
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line).expect("read stdout");
    let addr = line
        .strip_prefix("dashboard on http://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();

    assert!(http_get(&addr, Some(&format!("Bearer {ADMIN_TOKEN}"))).starts_with("HTTP/1.1 200"));
    assert!(http_get(&addr, Some(&format!("Bearer {VIEWER_TOKEN}"))).starts_with("HTTP/1.1 200"));
    assert!(!http_get(&addr, None).starts_with("HTTP/1.1 200"), "no token, no dashboard");
    assert!(!http_get(&addr, Some("Bearer wrong")).starts_with("HTTP/1.1 200"), "a wrong token is refused");
    // HTTP basic auth with a token as the password, any user name (`ops:<token>`).
    let basic = format!("Basic {}", base64_of(&format!("ops:{ADMIN_TOKEN}")));
    assert!(http_get(&addr, Some(&basic)).starts_with("HTTP/1.1 200"), "basic auth with the token");
    let wrong = format!("Basic {}", base64_of("ops:not-the-token-at-all"));
    let refused = http_get(&addr, Some(&wrong));
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(refused.contains("Basic realm="), "the 401 offers basic auth: {refused}");

    // SIGTERM, as a service manager would stop it; it exits cleanly.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("run kill").success());
    let status = wait_for("jobsmith web to exit", || {
        let status = child.try_wait().expect("try_wait");
        async move { status }
    })
    .await;
    assert!(status.success(), "jobsmith web exited with {status}");
    fresh.remove(Some(db)).await;
}

const ADMIN_TOKEN: &str = "admin-token-3f9a2c71";
const VIEWER_TOKEN: &str = "viewer-token-8b1e4d06";

/// Standard base64, for a basic-auth header.
fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The response to `GET /` (status line, headers and body), with an `Authorization` header
/// value if given.
fn http_get(addr: &str, authorization: Option<&str>) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the dashboard");
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    write!(stream, "GET / HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
        .expect("send a request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read the response");
    response
}

/// `--help` documents the exit statuses scripts rely on.
#[test]
fn help_documents_exit_status() {
    let out = jobsmith(None, &["--help"]).ok();
    assert!(out.contains("Exit status") && out.contains("3  the job named by ID does not exist"), "{out}");
}

#[test]
fn with_database_replaces_only_the_name() {
    assert_eq!(with_database("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
    assert_eq!(with_database("postgres://u@h/test?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
}

on_both! {
    /// A row whose args nest deeper than JSON decoding allows is listed and shown, with the reason,
    /// instead of failing the whole listing.
    async fn an_unreadable_row_is_listed_and_shown(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let good = charge_job(&db, 1).await;
        let bad = charge_job(&db, 2).await;
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let table = if kind == Kind::Postgres { "jobsmith.jobs" } else { "jobsmith_jobs" };
        fresh.sql(&db, format!("UPDATE {table} SET args = '{deep}' WHERE id = {bad}")).await;

        let list = fresh.json(&["jobs", "list"]);
        assert_eq!(ids(&list), vec![bad, good], "{list:#}");
        let shown = fresh.json(&["jobs", "show", &bad.to_string()]);
        let reason = shown["unreadable"].as_str().expect("a reason");
        assert!(reason.contains("column `args` could not be read"), "{reason}");
        assert_eq!(shown["args"], Value::String(deep.clone()), "the stored text is shown");
        let text = fresh.cli(&["jobs", "show", &bad.to_string()]).ok();
        assert!(text.contains("unreadable") && text.contains("nested deeper than the 128 levels"), "{text}");
        fresh.cli(&["jobs", "list"]).ok();
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// `cron` manages entries at run time: `add` names a job type the leader published and takes
    /// its declared options, `list` shows the entry with its schedule in words, `edit` changes
    /// only what it is given, `pause`/`resume`, `run` inserts one job now, `remove` deletes it;
    /// a malformed entry, a duplicate name and an unknown name are refused, storing nothing.
    async fn cron_adds_lists_edits_pauses_runs_and_removes_entries(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let add = ["cron", "add", "nightly", "--expr", "0 2 * * *", "--timezone", "Europe/Paris", "--worker", SendMail::NAME,
            "--args", r#"{"to":"ops@example.com"}"#];
        let stderr = fresh.cli(&add).fails(1);
        assert!(stderr.contains("no leader has published"), "{stderr}");

        // A leader publishes the job types it runs.
        let rt = db.runtime().queue("mail", 1).start().await.expect("a node");
        wait_for("the leader's job types", || async {
            (!db.engine().workers().await.expect("workers").is_empty()).then_some(())
        })
        .await;
        let workers = fresh.cli(&["cron", "workers"]).ok();
        assert!(workers.lines().any(|l| l.starts_with(SendMail::NAME) && l.contains("mail")), "{workers}");

        assert!(fresh.cli(&add).ok().contains("cron entry `nightly` added"));
        let listed = fresh.json(&["cron", "list"]);
        let entry = &listed[0];
        assert_eq!((entry["name"].as_str(), entry["source"].as_str()), (Some("nightly"), Some("database")), "{listed}");
        assert_eq!(entry["description"], "At 02:00 AM");
        assert_eq!((entry["timezone"].as_str(), entry["queue"].as_str()), (Some("Europe/Paris"), Some("mail")), "declared queue");
        assert_eq!(entry["args"]["to"], "ops@example.com");
        assert!(entry["next_slot"].is_string() && entry["paused"] == false, "{entry}");
        let text = fresh.cli(&["cron", "list"]).ok();
        assert!(text.contains("0 2 * * * (At 02:00 AM)") && text.contains("enabled"), "{text}");

        // Refusals store nothing.
        assert!(fresh.cli(&add).fails(1).contains("exists already"));
        let bad_json = fresh.cli(&["cron", "add", "x", "--expr", "* * * * *", "--worker", SendMail::NAME, "--args", "{to:"]).fails(1);
        assert!(bad_json.contains("--args is not JSON"), "{bad_json}");
        let bad_expr = fresh.cli(&["cron", "add", "x", "--expr", "0 25 * * *", "--worker", SendMail::NAME]).fails(1);
        assert!(bad_expr.contains("hours must be 0-23"), "{bad_expr}");
        let bad_missed = fresh.cli(&["cron", "add", "x", "--expr", "* * * * *", "--worker", SendMail::NAME, "--missed", "often"]).fails(2);
        assert!(bad_missed.contains("missed-slot policy"), "{bad_missed}");
        assert_eq!(fresh.json(&["cron", "list"]).as_array().map(Vec::len), Some(1), "nothing stored by a refusal");

        // Edit changes what it is given and keeps the rest.
        fresh.cli(&["cron", "edit", "nightly", "--expr", "30 3 * * *", "--priority", "2"]).ok();
        let entry = &fresh.json(&["cron", "list"])[0];
        assert_eq!((entry["expr"].as_str(), entry["timezone"].as_str()), (Some("30 3 * * *"), Some("Europe/Paris")), "{entry}");
        assert_eq!(entry["args"]["to"], "ops@example.com");
        let stored = &db.engine().cron_entries().await.expect("entries")[0];
        assert_eq!((stored.job.priority, stored.job.max_attempts), (2, 3), "the given priority, the declared attempts");

        assert!(fresh.cli(&["cron", "pause", "nightly"]).ok().contains("paused"));
        let entry = &fresh.json(&["cron", "list"])[0];
        assert!(entry["paused"] == true && entry["next_slot"].is_null(), "{entry}");
        assert!(fresh.cli(&["cron", "list"]).ok().contains("paused"));
        fresh.cli(&["cron", "resume", "nightly"]).ok();
        assert_eq!(fresh.json(&["cron", "list"])[0]["paused"], false);

        let job = fresh.json(&["cron", "run", "nightly"]);
        let id = job["id"].as_i64().expect("the job's id");
        let row = db.engine().get_job(id).await.expect("get").expect("the job");
        assert_eq!((row.worker.as_str(), row.args["to"].as_str()), (SendMail::NAME, Some("ops@example.com")));
        assert_eq!(row.meta["cron_run_now"], true);

        assert!(fresh.cli(&["cron", "remove", "nightly"]).ok().contains("removed"));
        assert_eq!(fresh.json(&["cron", "list"]), serde_json::json!([]));
        for verb in ["remove", "pause", "resume", "edit"] {
            let stderr = fresh.cli(&["cron", verb, "nightly"]).fails(1);
            assert!(stderr.contains("there is no cron entry named `nightly`"), "{verb}: {stderr}");
        }
        assert!(fresh.cli(&["cron", "run", "nightly"]).fails(1).contains("no cron entry named"));
        rt.shutdown().await.expect("shutdown");
        fresh.remove(Some(db)).await;
    }
}

on_both! {
    /// `jobs cancel|delete` with filters count first and act with `--yes`, only on the jobs the
    /// filters select and the states the operation changes; an args field selects too.
    async fn cancel_and_delete_by_filter_count_first_then_act(kind: Kind) {
        let (fresh, db) = Fresh::migrated(kind).await;
        let mails = [mail(&db, "a@example.com").await, mail(&db, "b@example.com").await, mail(&db, "c@example.com").await];
        let seven = charge_job(&db, 7).await;
        let eight = charge_job(&db, 8).await;

        let dry = fresh.cli(&["jobs", "cancel", "--queue", "mail"]).ok();
        assert!(dry.contains("would cancel 3 jobs; add --yes"), "{dry}");
        assert_eq!(state(&db, mails[0]).await, JobState::Available, "a count changes nothing");
        let done = fresh.json(&["jobs", "cancel", "--queue", "mail", "--yes"]);
        assert_eq!(done["cancelled"], 3, "{done}");
        for id in mails {
            assert_eq!(state(&db, id).await, JobState::Cancelled);
        }
        assert_eq!(state(&db, seven).await, JobState::Available, "another queue is untouched");

        let done = fresh.cli(&["jobs", "delete", "--queue", "mail", "--state", "cancelled", "--yes"]).ok();
        assert!(done.contains("deleted 3 jobs"), "{done}");
        assert!(db.engine().get_job(mails[1]).await.expect("get").is_none());

        // An args field: invoice 7 only.
        assert_eq!(fresh.json(&["jobs", "delete", "--arg", "invoice=7"])["jobs"], 1);
        fresh.cli(&["jobs", "delete", "--arg", "invoice=7", "--yes"]).ok();
        assert!(db.engine().get_job(seven).await.expect("get").is_none());
        assert_eq!(state(&db, eight).await, JobState::Available);

        // Only executing jobs named: a delete can change none of them, and changes nothing.
        assert_eq!(fresh.json(&["jobs", "delete", "--state", "executing", "--yes"])["deleted"], 0);
        assert_eq!(state(&db, eight).await, JobState::Available);

        // Neither an id nor a filter, or both: usage errors.
        fresh.cli(&["jobs", "cancel"]).fails(2);
        fresh.cli(&["jobs", "delete", &eight.to_string(), "--queue", "billing"]).fails(2);
        assert!(fresh.cli(&["jobs", "delete", "--arg", "invoice"]).fails(2).contains("field = value"));
        assert_eq!(state(&db, eight).await, JobState::Available);
        fresh.remove(Some(db)).await;
    }
}
