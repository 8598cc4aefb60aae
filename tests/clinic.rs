//! The flagship example works end to end: `examples/clinic` on its default (SQLite in a temp
//! file) and on a fresh PostgreSQL database books, moves and cancels appointments with their
//! reminder jobs, sends the reminder emails, fires the no-show risk cron, and syncs benefits
//! through a retry (500), a snooze (429) and a discard (404). Its `--serve` mode stops cleanly on
//! SIGTERM.

#![allow(unreachable_pub, dead_code, unused_macros)]

#[path = "conformance/harness.rs"]
#[macro_use]
mod harness;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The example's binary. `cargo test` builds it; `cargo test --test clinic` alone does not, so
/// a binary older than the example's sources fails here rather than testing old code.
fn clinic() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("examples").join("clinic");
    let hint = "run `cargo test` (which builds examples) or `cargo build --example clinic`";
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {hint}", bin.display()));
    let sources = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/clinic");
    let mut dirs = vec![sources];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                let path = entry.path();
                assert!(
                    meta.modified().unwrap() <= built,
                    "{} is older than {}: {hint}",
                    bin.display(),
                    path.display()
                );
            }
        }
    }
    bin
}

/// Runs the demo and returns its stdout; panics unless it exits 0.
fn run_demo(url: Option<&str>) -> String {
    let mut cmd = Command::new(clinic());
    cmd.arg("--demo").env_remove("DATABASE_URL").env_remove("RUST_LOG");
    if let Some(url) = url {
        cmd.env("DATABASE_URL", url);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the clinic demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The one line that starts with `prefix` (after indentation).
fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    let found: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with(prefix)).collect();
    assert_eq!(found.len(), 1, "expected one line starting with {prefix:?}:\n{out}");
    found[0]
}

/// The reminder job ids a booking or reschedule line lists (`day_before job 3 due ...`).
fn job_ids(line: &str) -> Vec<i64> {
    line.split(" job ")
        .skip(1)
        .map(|rest| rest.split(' ').next().unwrap().parse().expect("a job id"))
        .collect()
}

/// The summary lines about appointment `id`'s reminders.
fn reminder_lines(out: &str, id: i64) -> Vec<&str> {
    let prefix = format!("reminder of appointment {id} (");
    out.lines().filter(|l| l.trim_start().starts_with(&prefix)).collect()
}

/// Checks everything the demo is meant to show.
fn check_demo(out: &str, engine: &str) {
    assert!(out.contains(&format!("clinic demo on {engine}")), "{out}");
    assert!(!out.contains("UNEXPECTED"), "{out}");

    // Booking: two reminders per appointment, in the booking's transaction.
    for (id, name) in [(1, "Ada Lovelace"), (2, "Grace Hopper"), (3, "Linus Pauling")] {
        let booked = line(out, &format!("booked appointment {id} for {name} at "));
        assert!(booked.contains(": 2 reminders (day_before job "), "{booked}");
        assert!(booked.contains(", two_hours_before job "), "{booked}");
    }

    // Rescheduling moves the booked reminders (the same jobs, found by their args, in the move's
    // transaction), which are sent for the new time.
    let booked_2 = job_ids(line(out, "booked appointment 2 for "));
    let moved = line(out, "rescheduled appointment 2 to ");
    assert!(moved.contains(": moved 2 reminders (day_before job "), "{moved}");
    assert_eq!(job_ids(moved), booked_2, "the same jobs, moved: {moved}");
    assert!(!moved.contains("booked"), "nothing booked anew: {moved}");
    let appointment_2 = reminder_lines(out, 2);
    assert_eq!(appointment_2.len(), 2, "{out}");
    let sent: Vec<&str> =
        appointment_2.iter().copied().filter(|l| l.contains(" completed, email job ")).collect();
    assert_eq!(sent.len(), 2, "{out}");
    let new_time =
        moved["rescheduled appointment 2 to ".len()..].split(": moved").next().unwrap().to_string();
    let grace_emails: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("[mailers]") && l.contains("email to grace@example.com: "))
        .collect();
    assert!(
        grace_emails.iter().all(|l| l.contains(&format!("see you on {new_time}"))),
        "{grace_emails:?} {new_time}"
    );

    // Cancelling cancels both reminders in the cancellation's transaction.
    assert!(out.contains("cancelled appointment 3 and its 2 reminder jobs"), "{out}");
    let booked_3 = job_ids(line(out, "booked appointment 3 for "));
    let appointment_3 = reminder_lines(out, 3);
    assert_eq!(appointment_3.len(), 2, "{out}");
    for reminder in appointment_3 {
        assert!(reminder.ends_with(" cancelled"), "{reminder}");
        assert!(booked_3.iter().any(|id| reminder.contains(&format!(": job {id} cancelled"))), "{reminder}");
    }

    // Reminders that are sent completed and queued an email that completed on `mailers`.
    let appointment_1 = reminder_lines(out, 1);
    assert_eq!(appointment_1.len(), 2, "{out}");
    for reminder in appointment_1.iter().chain(&sent) {
        assert!(reminder.contains("completed, email job ") && reminder.ends_with(" completed"), "{reminder}");
    }
    let emails = |to: &str| {
        out.lines().filter(|l| l.contains("[mailers]") && l.contains(&format!("email to {to}: "))).count()
    };
    assert_eq!(emails("ada@example.com"), 2, "{out}");
    assert_eq!(emails("grace@example.com"), 2, "{out}");
    assert_eq!(emails("linus@example.com"), 0, "{out}");

    // The no-show report was awaited as a job's typed result.
    let report = line(out, "no-show report (an awaited job result): ");
    assert!(report.ends_with("2 booked, 1 cancelled, riskiest appointment 2 at 47"), "{report}");

    // The no-show risk cron fired and scored the two appointments still booked.
    assert!(out.contains("[maintenance] no-show risk (cron slot "), "{out}");
    assert!(line(out, "no-show risk of appointment 1: ").contains(": 12 (cron job "), "{out}");
    assert!(line(out, "no-show risk of appointment 2: ").contains(": 47 (cron job "), "{out}");
    assert!(!out.contains("no-show risk of appointment 3"), "{out}");

    // Benefits: the 500 was retried, then completed; the 429 snoozed, then completed; the 404
    // was discarded.
    assert!(
        out.contains("benefits of patient 1: insurer answered 500 on attempt 1 of 5, will retry"),
        "{out}"
    );
    assert!(out.contains("benefits of patient 1: Gold PPO synced on attempt 2"), "{out}");
    let retried = line(out, "benefits sync of patient 1: ");
    assert!(retried.contains("retried after a 500, then completed (job "), "{retried}");
    assert!(retried.contains("attempts 2, errors 1, requests 2)"), "{retried}");
    assert!(out.contains("benefits of patient 2: insurer answered 429, snoozing 1s"), "{out}");
    let snoozed = line(out, "benefits sync of patient 2: ");
    assert!(snoozed.contains("snoozed after a 429, then completed (job "), "{snoozed}");
    assert!(snoozed.contains("attempts 1, errors 0, requests 2)"), "{snoozed}");
    assert!(out.contains("benefits of patient 3: insurer answered 404, discarding"), "{out}");
    let discarded = line(out, "benefits sync of patient 3: ");
    assert!(discarded.contains("answered 404, so discarded (job "), "{discarded}");

    assert!(out.contains("summary after "), "{out}");
    assert!(out.trim_end().ends_with("node stopped cleanly"), "{out}");
}

#[test]
fn the_clinic_demo_runs_on_embedded_sqlite() {
    let out = run_demo(None);
    check_demo(&out, "sqlite");
}

#[tokio::test]
async fn the_clinic_demo_runs_on_a_fresh_postgres_database() {
    // Panics with instructions when no server is reachable: this test never skips.
    let pool = harness::new_pg_database().await;
    let db: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&pool).await.unwrap();
    pool.close().await;
    let mut url = harness::base_url();
    url.truncate(url.rfind('/').unwrap() + 1);
    url.push_str(&db);
    let demo_url = url.clone();
    let out = tokio::task::spawn_blocking(move || run_demo(Some(&demo_url))).await.unwrap();
    check_demo(&out, "postgres");

    // Flow control as stored: every reminder in its clinic's partition, every benefit sync in its
    // insurer's, and the queues' settings as the node set them.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let partitions: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT queue, partition_key, count(*) FROM jobsmith.jobs WHERE queue IN ('events', 'benefits')
         GROUP BY queue, partition_key ORDER BY queue",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(partitions.len(), 2, "one partition each: {partitions:?}");
    assert_eq!((partitions[0].0.as_str(), partitions[0].2), ("benefits", 3), "{partitions:?}");
    assert!(partitions[0].1.is_some(), "benefit syncs are partitioned by insurer: {partitions:?}");
    assert_eq!(
        (partitions[1].0.as_str(), partitions[1].1.as_deref()),
        ("events", Some("downtown")),
        "{partitions:?}"
    );
    let (limit, per_partition): (Option<i32>, bool) =
        sqlx::query_as("SELECT rate_limit, rate_per_partition FROM jobsmith.queues WHERE name = 'benefits'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((limit, per_partition), (Some(10), true), "10 a second for each insurer");
    pool.close().await;
}

#[test]
fn the_clinic_serves_until_sigterm_and_stops_cleanly() {
    let mut child = Command::new(clinic())
        .arg("--serve")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.starts_with("serving;") => break,
            Ok(line) => seen.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no `serving` line ({e}); output: {seen:?}");
            }
        }
    }
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill failed");
    let status = child.wait().unwrap();
    let rest: Vec<String> = rx.iter().collect();
    assert!(status.success(), "clinic --serve exited with {status}: {seen:?} {rest:?}");
    assert_eq!(rest.last().map(String::as_str), Some("node stopped cleanly"), "{rest:?}");
}
