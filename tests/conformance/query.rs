//! Acting on many jobs by a typed query (`Remind::query().appointment_id(7)...`): count, list,
//! cancel, retry, delete and update, through the `Db`, a jobsmith `Transaction` and the
//! application's own sqlx transaction, committed or rolled back.
//!
//! The jobs here run on queues of their own (`query-*`): they take state, which the other tests'
//! runtimes do not give.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use jobsmith::prelude::*;
use jobsmith::{Change, Error, JobState, Page, Pool, Registry, WorkerEntry};
use serde::{Deserialize, Serialize};

use super::harness::{LONG, wait_for};
use super::state::Seen;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Kind {
    DayBefore,
    TwoHours,
}

#[jobsmith::job(queue = "query-reminders")]
pub async fn remind(State(seen): State<Seen>, appointment_id: i64, kind: Kind) -> Result<(), String> {
    seen.push(format!("{appointment_id} {kind:?}"));
    Ok(())
}

/// Runs until its token fires, then says so.
#[jobsmith::job(queue = "query-long")]
pub async fn remind_slowly(
    ctx: JobContext,
    State(seen): State<Seen>,
    appointment_id: i64,
) -> Result<(), String> {
    seen.push(format!("started {appointment_id}"));
    ctx.cancelled().await;
    seen.push(format!("stopped {appointment_id}"));
    Err("stopped".into())
}

/// An arg named like a filter of the query (`queue`): the field wins, the filter stays reachable
/// through `into_query()`.
#[jobsmith::job(queue = "query-named")]
pub async fn route(queue: String, id: i64) -> Result<(), String> {
    let _ = (queue, id);
    Ok(())
}

/// Records the args it ran with.
#[jobsmith::job(queue = "query-race")]
pub async fn versioned(State(seen): State<Seen>, n: i64, version: i64) -> Result<(), String> {
    seen.push(format!("{n} {version}"));
    Ok(())
}

fn in_an_hour() -> Duration {
    Duration::from_secs(3600)
}

/// Runs `$body` with `$tx` an open sqlx transaction of the application's own on `$db`'s pool,
/// whatever the engine; `$end` is `commit` or `rollback`.
macro_rules! in_app_transaction {
    ($db:expr, $end:ident, |$tx:ident| $body:expr) => {
        match $db.pool() {
            Pool::Postgres(pool) => {
                let mut $tx = pool.begin().await.unwrap();
                let out = $body;
                $tx.$end().await.unwrap();
                out
            }
            Pool::Sqlite(pool) => {
                let mut $tx = pool.begin().await.unwrap();
                let out = $body;
                $tx.$end().await.unwrap();
                out
            }
        }
    };
}

conformance! {
    /// Each filter narrows: args (typed), id, state, queue, tags, meta, schedule window; a job of
    /// another type with equal args never matches.
    async fn a_typed_query_matches_by_args_queue_state_tags_meta_and_schedule(db) {
        let a = db.insert(Remind { appointment_id: 7, kind: Kind::DayBefore }.schedule_in(in_an_hour()).tags(["vip"])).await.unwrap().job;
        let b = db.insert(Remind { appointment_id: 7, kind: Kind::TwoHours }.build_insert().meta(serde_json::json!({"clinic": "north", "n": 2}))).await.unwrap().job;
        db.insert(Remind { appointment_id: 8, kind: Kind::DayBefore }.on_queue("query-other")).await.unwrap();
        db.insert(Versioned { n: 7, version: 1 }).await.unwrap();

        assert_eq!(Remind::query().count(&*db).await.unwrap(), 3);
        assert_eq!(Remind::query().appointment_id(7).count(&*db).await.unwrap(), 2);
        assert_eq!(Remind::query().appointment_id(7).kind(Kind::TwoHours).count(&*db).await.unwrap(), 1);
        assert_eq!(Remind::query().kind(Kind::DayBefore).count(&*db).await.unwrap(), 2);
        assert_eq!(Remind::query().id(a.id).count(&*db).await.unwrap(), 1);
        assert_eq!(Remind::query().ids([a.id, b.id]).appointment_id(8).count(&*db).await.unwrap(), 0);
        assert_eq!(Remind::query().states([JobState::Scheduled]).count(&*db).await.unwrap(), 1);
        assert_eq!(Remind::query().states([JobState::Available]).count(&*db).await.unwrap(), 2);
        assert_eq!(Remind::query().queue("query-other").count(&*db).await.unwrap(), 1);
        assert_eq!(Remind::query().queue("query-other").queue("query-reminders").count(&*db).await.unwrap(), 3);
        assert_eq!(Remind::query().tag("vip").count(&*db).await.unwrap(), 1);
        assert_eq!(Remind::query().tag("vip").tag("other").count(&*db).await.unwrap(), 0);
        assert_eq!(Remind::query().meta("clinic", "north").count(&*db).await.unwrap(), 1);
        assert_eq!(Remind::query().meta("n", 2).count(&*db).await.unwrap(), 1);
        assert_eq!(Remind::query().meta("n", "2").count(&*db).await.unwrap(), 0, "a string is not the number");
        assert_eq!(Remind::query().meta_key("clinic").count(&*db).await.unwrap(), 1);
        assert_eq!(Remind::query().meta_key("missing").count(&*db).await.unwrap(), 0);
        let soon = Utc::now() + chrono::Duration::minutes(30);
        assert_eq!(Remind::query().scheduled_from(soon).count(&*db).await.unwrap(), 1);
        assert_eq!(Remind::query().scheduled_before(soon).count(&*db).await.unwrap(), 2);
        // The other job type with `n: 7` is not a `Remind`.
        assert_eq!(Versioned::query().n(7).count(&*db).await.unwrap(), 1);
        assert_eq!(Versioned::query().n(8).count(&*db).await.unwrap(), 0);
    }
}

conformance! {
    /// An arg named like a filter takes the name; the filter is still there through
    /// `into_query()`.
    async fn an_arg_named_like_a_filter_is_the_arg(db) {
        db.insert(Route { queue: "north".into(), id: 1 }).await.unwrap();
        db.insert(Route { queue: "south".into(), id: 2 }.on_queue("query-named-2")).await.unwrap();
        assert_eq!(Route::query().queue("north").count(&*db).await.unwrap(), 1, "the arg");
        assert_eq!(Route::query().id(2).count(&*db).await.unwrap(), 1, "the arg `id`");
        assert_eq!(Route::query().into_query().queue("query-named-2").count(&*db).await.unwrap(), 1, "the job's queue");
    }
}

conformance! {
    /// Cancel in the application's own transaction: rolled back, nothing changed; committed, the
    /// waiting jobs of the appointment are cancelled and a finished one is left as it was.
    async fn cancel_by_query_commits_or_rolls_back_with_the_callers_transaction(db) {
        let waiting = db.insert(Remind { appointment_id: 7, kind: Kind::DayBefore }.schedule_in(in_an_hour())).await.unwrap().job.id;
        let due = db.insert(Remind { appointment_id: 7, kind: Kind::TwoHours }).await.unwrap().job.id;
        let done = db.insert(Remind { appointment_id: 7, kind: Kind::TwoHours }.schedule_in(in_an_hour())).await.unwrap().job.id;
        db.exec(&format!("UPDATE {{jobs}} SET state = 'completed', completed_at = {{now}} WHERE id = {done}")).await;
        let other = db.insert(Remind { appointment_id: 8, kind: Kind::DayBefore }).await.unwrap().job.id;

        let n = in_app_transaction!(db, rollback, |tx| Remind::query().appointment_id(7).cancel(&mut *tx).await.unwrap());
        assert_eq!(n, 2, "counted inside the transaction");
        assert_eq!(db.job(waiting).await.state, JobState::Scheduled, "rolled back");
        assert_eq!(db.job(due).await.state, JobState::Available, "rolled back");

        let n = in_app_transaction!(db, commit, |tx| Remind::query().appointment_id(7).cancel(&mut *tx).await.unwrap());
        assert_eq!(n, 2);
        for id in [waiting, due] {
            let job = db.job(id).await;
            assert_eq!(job.state, JobState::Cancelled);
            assert!(job.cancelled_at.is_some());
            assert_eq!(job.errors.last().unwrap()["error"], "cancelled by request");
        }
        assert_eq!(db.job(done).await.state, JobState::Completed, "finished rows are not touched");
        assert_eq!(db.job(other).await.state, JobState::Available, "another appointment's job");
        assert_eq!(Remind::query().appointment_id(7).cancel(&*db).await.unwrap(), 0, "nothing left to cancel");
    }
}

conformance! {
    /// The same through a jobsmith `Transaction`, beside the application's own write in it.
    async fn cancel_by_query_in_a_jobsmith_transaction(db) {
        let id = db.insert(Remind { appointment_id: 9, kind: Kind::DayBefore }.schedule_in(in_an_hour())).await.unwrap().job.id;
        let mut tx = db.begin().await.unwrap();
        assert_eq!(Remind::query().appointment_id(9).cancel(&mut tx).await.unwrap(), 1);
        tx.rollback().await.unwrap();
        assert_eq!(db.job(id).await.state, JobState::Scheduled);
        let mut tx = db.begin().await.unwrap();
        assert_eq!(Remind::query().appointment_id(9).cancel(&mut tx).await.unwrap(), 1);
        tx.commit().await.unwrap();
        assert_eq!(db.job(id).await.state, JobState::Cancelled);
    }
}

conformance! {
    /// Retry touches only discarded and cancelled jobs, each given one more attempt.
    async fn retry_by_query_runs_discarded_and_cancelled_jobs_again(db) {
        let mut ids = Vec::new();
        for (state, stamp) in [("discarded", "discarded_at"), ("cancelled", "cancelled_at"), ("completed", "completed_at")] {
            let id = db.insert(Remind { appointment_id: 3, kind: Kind::DayBefore }).await.unwrap().job.id;
            db.exec(&format!("UPDATE {{jobs}} SET state = '{state}', {stamp} = {{now}}, attempt = max_attempts WHERE id = {id}")).await;
            ids.push(id);
        }
        let waiting = db.insert(Remind { appointment_id: 3, kind: Kind::TwoHours }.schedule_in(in_an_hour())).await.unwrap().job.id;
        assert_eq!(Remind::query().appointment_id(3).states([JobState::Cancelled]).retry(&*db).await.unwrap(), 1);
        assert_eq!(db.job(ids[1]).await.state, JobState::Available);
        assert_eq!(db.job(ids[0]).await.state, JobState::Discarded, "not named by the query");
        assert_eq!(Remind::query().appointment_id(3).retry(&*db).await.unwrap(), 1, "the discarded one");
        let retried = db.job(ids[0]).await;
        assert_eq!(retried.state, JobState::Available);
        assert!(retried.max_attempts > retried.attempt, "one more attempt");
        assert!(retried.discarded_at.is_none());
        assert_eq!(db.job(ids[2]).await.state, JobState::Completed, "a completed job is not retried");
        assert_eq!(db.job(waiting).await.state, JobState::Scheduled, "a waiting job is not touched");
    }
}

conformance! {
    /// Delete takes waiting jobs; finished ones only when the query names their state; never a
    /// running one.
    async fn delete_by_query_keeps_running_and_finished_jobs_unless_named(db) {
        let waiting = db.insert(Remind { appointment_id: 4, kind: Kind::DayBefore }.schedule_in(in_an_hour())).await.unwrap().job.id;
        let running = db.insert(Remind { appointment_id: 4, kind: Kind::DayBefore }).await.unwrap().job.id;
        db.exec(&format!("UPDATE {{jobs}} SET state = 'executing', attempt = 1, attempted_by = 'elsewhere', attempted_at = {{now}} WHERE id = {running}")).await;
        let done = db.insert(Remind { appointment_id: 4, kind: Kind::DayBefore }).await.unwrap().job.id;
        db.exec(&format!("UPDATE {{jobs}} SET state = 'completed', completed_at = {{now}} WHERE id = {done}")).await;

        assert_eq!(Remind::query().appointment_id(4).delete(&*db).await.unwrap(), 1);
        assert!(db.engine().get_job(waiting).await.unwrap().is_none());
        assert_eq!(db.job(done).await.state, JobState::Completed);
        let named = Remind::query().appointment_id(4).states([JobState::Completed, JobState::Executing]);
        assert_eq!(named.delete(&*db).await.unwrap(), 1, "the completed one, not the running one");
        assert!(db.engine().get_job(done).await.unwrap().is_none());
        assert_eq!(db.job(running).await.state, JobState::Executing);
    }
}

conformance! {
    /// Listing is typed and paginated newest first; a row whose args no longer decode is listed
    /// with the reason, beside the others.
    async fn listing_by_query_is_typed_and_paginated(db) {
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(db.insert(Remind { appointment_id: 5, kind: if n % 2 == 0 { Kind::DayBefore } else { Kind::TwoHours } }).await.unwrap().job.id);
        }
        db.exec(&format!("UPDATE {{jobs}} SET args = '{{\"appointment_id\": 5, \"kind\": \"Never\"}}' WHERE id = {}", ids[1])).await;
        let query = Remind::query().appointment_id(5);
        let first = query.list(&*db, Page { limit: 3, before_id: None }).await.unwrap();
        let first_ids: Vec<i64> = first.iter().map(|j| j.row.id).collect();
        assert_eq!(first_ids, vec![ids[4], ids[3], ids[2]]);
        let newest = first[0].args.as_ref().unwrap();
        assert_eq!((newest.appointment_id, &newest.kind), (5, &Kind::DayBefore));
        let next = query.list(&*db, Page { limit: 3, before_id: Some(ids[2]) }).await.unwrap();
        let next_ids: Vec<i64> = next.iter().map(|j| j.row.id).collect();
        assert_eq!(next_ids, vec![ids[1], ids[0]]);
        assert!(next[0].args.as_ref().unwrap_err().contains("Never"), "{:?}", next[0].args);
        assert_eq!(next[1].args.as_ref().unwrap().kind, Kind::DayBefore);
    }
}

conformance! {
    /// Update changes what it is given on jobs that wait, in the caller's transaction; a running
    /// job is not changed and is reported.
    async fn update_by_query_changes_waiting_jobs_and_reports_started_ones(db) {
        let waiting = db.insert(Remind { appointment_id: 6, kind: Kind::DayBefore }.schedule_in(in_an_hour())).await.unwrap().job;
        let running = db.insert(Remind { appointment_id: 6, kind: Kind::TwoHours }).await.unwrap().job.id;
        db.exec(&format!("UPDATE {{jobs}} SET state = 'executing', attempt = 1, attempted_by = 'elsewhere', attempted_at = {{now}} WHERE id = {running}")).await;
        let at = Utc::now() + chrono::Duration::hours(5);
        let change = || Change::new().schedule_at(at).priority(3).tags(["moved"]).meta(serde_json::json!({"by": "reschedule"}));

        let report = in_app_transaction!(db, rollback, |tx| Remind::query().appointment_id(6).update(&mut *tx, change()).await.unwrap());
        assert_eq!((report.changed, report.started.clone()), (1, vec![running]));
        assert_eq!(db.job(waiting.id).await.scheduled_at, waiting.scheduled_at, "rolled back");

        let report = in_app_transaction!(db, commit, |tx| Remind::query().appointment_id(6).update(&mut *tx, change()).await.unwrap());
        assert_eq!((report.changed, report.started), (1, vec![running]));
        let moved = db.job(waiting.id).await;
        assert_eq!(moved.state, JobState::Scheduled);
        assert_eq!(moved.scheduled_at.timestamp_millis() / 1000, at.timestamp_millis() / 1000);
        assert_eq!((moved.priority, moved.tags.clone(), moved.meta["by"].clone()), (3, vec!["moved".to_string()], serde_json::json!("reschedule")));
        let untouched = db.job(running).await;
        assert_eq!((untouched.priority, untouched.tags.len()), (0, 0), "the running job kept everything");

        // New typed args, by id; due now makes it available.
        let report = Remind::query().id(waiting.id).update(&*db, Change::new().args(Remind { appointment_id: 60, kind: Kind::TwoHours }).run_now()).await.unwrap();
        assert_eq!(report.changed, 1);
        let job = db.job(waiting.id).await;
        assert_eq!((job.state, job.args["appointment_id"].clone(), job.args["kind"].clone()), (JobState::Available, serde_json::json!(60), serde_json::json!("TwoHours")));
        // Queue too.
        Remind::query().id(waiting.id).update(&*db, Change::new().queue("query-moved")).await.unwrap();
        assert_eq!(db.job(waiting.id).await.queue, "query-moved");
        // Bad values are refused and change nothing.
        let err = Remind::query().id(waiting.id).update(&*db, Change::new().priority(12)).await.unwrap_err();
        assert!(matches!(err, Error::InvalidOption(_)), "{err}");
        assert_eq!(db.job(waiting.id).await.priority, 3);
    }
}

conformance! {
    /// A value that cannot be encoded is a clear error, and nothing is touched.
    async fn a_query_value_that_cannot_be_encoded_is_refused(db) {
        let id = db.insert(Remind { appointment_id: 1, kind: Kind::DayBefore }).await.unwrap().job.id;
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), 3);
        let err = Remind::query().meta("k", bad).cancel(&*db).await.unwrap_err();
        assert!(matches!(&err, Error::InvalidOption(m) if m.contains("meta key `k`")), "{err}");
        assert_eq!(db.job(id).await.state, JobState::Available);
    }
}

conformance! {
    /// A running job cancelled by a query committed in the application's own transaction has its
    /// token fired on the node that runs it; a rolled-back cancel leaves it running.
    async fn cancel_by_query_fires_the_token_of_a_running_job(db) {
        let seen = Seen::default();
        let registry = Registry::from_entries([WorkerEntry::of::<RemindSlowly>()]).unwrap();
        let rt = db.runtime().registry(registry).queue("query-long", 2).state(seen.clone()).start().await.unwrap();
        let id = db.insert(RemindSlowly { appointment_id: 11 }).await.unwrap().job.id;
        wait_for("the job to start", LONG, || async { seen.lines().contains(&"started 11".to_string()).then_some(()) }).await;

        let n = in_app_transaction!(db, rollback, |tx| RemindSlowly::query().appointment_id(11).cancel(&mut *tx).await.unwrap());
        assert_eq!(n, 1);
        let n = in_app_transaction!(db, commit, |tx| RemindSlowly::query().appointment_id(11).cancel(&mut *tx).await.unwrap());
        assert_eq!(n, 1);
        wait_for("the token to fire", LONG, || async { seen.lines().contains(&"stopped 11".to_string()).then_some(()) }).await;
        let job = db.wait_job(id, JobState::Cancelled).await;
        assert_eq!(job.attempt, 1);
        rt.shutdown().await.unwrap();
        assert_eq!(seen.lines().iter().filter(|l| l.starts_with("stopped")).count(), 1);
        assert_eq!(db.count_state(JobState::Executing).await, 0);
    }
}

conformance! {
    /// Updates race jobs starting: every job either ran with its new args (changed before it
    /// started) or was reported started and ran with its old ones. Never both, never lost.
    async fn updates_racing_jobs_that_start_are_either_applied_or_reported(db) {
        const JOBS: i64 = 200;
        let seen = Seen::default();
        let registry = Registry::from_entries([WorkerEntry::of::<Versioned>()]).unwrap();
        let mut ids = Vec::new();
        for n in 0..JOBS {
            ids.push(db.insert(Versioned { n, version: 0 }).await.unwrap().job.id);
        }
        let rt = db.runtime().registry(registry).queue("query-race", 4).state(seen.clone()).start().await.unwrap();
        let db = Arc::new(db);
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for chunk in ids.chunks(JOBS as usize / 20).map(<[i64]>::to_vec) {
            let (db, stop) = (db.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut reports = Vec::new();
                for id in chunk {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let n = db.job(id).await.args["n"].as_i64().unwrap();
                    let report = Versioned::query().id(id).update(&db.db, Change::new().args(Versioned { n, version: 1 })).await.unwrap();
                    reports.push((n, report));
                }
                reports
            }));
        }
        let mut changed = Vec::new();
        let mut started = Vec::new();
        for task in tasks {
            for (n, report) in task.await.unwrap() {
                assert!(report.changed + report.started.len() as u64 <= 1, "{report:?}");
                if report.changed == 1 { changed.push(n) } else if !report.started.is_empty() { started.push(n) }
            }
        }
        stop.store(true, Ordering::Relaxed);
        db.wait_state_count(JobState::Completed, JOBS).await;
        rt.shutdown().await.unwrap();
        let lines = seen.lines();
        assert_eq!(lines.len(), JOBS as usize, "each job ran once");
        for n in &changed {
            assert!(lines.contains(&format!("{n} 1")), "job {n} was changed before it started: {lines:?}");
        }
        for n in &started {
            assert!(lines.contains(&format!("{n} 0")), "job {n} was reported started, so ran as it was");
        }
        assert!(!changed.is_empty(), "some updates won the race");
    }
}

/// PostgreSQL: a cancel by query from a process that runs no runtime stops the running jobs on
/// every node, by notification alone (the reconcilers, which would find them too, are set to
/// look once an hour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_by_query_stops_running_jobs_on_every_node() {
    let db = super::harness::TestDb::new(super::harness::Kind::Postgres).await;
    let seen = Seen::default();
    let mut nodes = Vec::new();
    for name in ["query-node-a", "query-node-b"] {
        let registry = Registry::from_entries([WorkerEntry::of::<RemindSlowly>()]).unwrap();
        let rt = db
            .runtime()
            .registry(registry)
            .node_name(name)
            .queue("query-long", 1)
            .rescue_interval(Duration::from_secs(3600))
            .state(seen.clone())
            .start()
            .await
            .unwrap();
        nodes.push(rt);
    }
    for n in [21, 22] {
        db.insert(RemindSlowly { appointment_id: n }).await.unwrap();
    }
    wait_for("both jobs to start", LONG, || async {
        (seen.lines().iter().filter(|l| l.starts_with("started")).count() == 2).then_some(())
    })
    .await;
    let nodes_running: i64 =
        db.scalar("SELECT count(DISTINCT attempted_by) FROM jobsmith.jobs WHERE state = 'executing'").await;
    assert_eq!(nodes_running, 2, "one job on each node");

    // A pool of its own: no runtime, no jobsmith `Db`.
    let outside = sqlx::PgPool::connect_with((*db.pg().connect_options()).clone()).await.unwrap();
    let n = RemindSlowly::query().states([JobState::Executing]).cancel(&outside).await.unwrap();
    assert_eq!(n, 2);
    wait_for("both tokens to fire", LONG, || async {
        (seen.lines().iter().filter(|l| l.starts_with("stopped")).count() == 2).then_some(())
    })
    .await;
    db.wait_state_count(JobState::Cancelled, 2).await;
    for rt in nodes {
        rt.shutdown().await.unwrap();
    }
    assert_eq!(db.count_state(JobState::Executing).await, 0);
}

conformance! {
    /// A running job cancelled through a pool (no transaction of the caller's) stops at once on
    /// either engine, with the reconciler (which would find it too) set to look once an hour:
    /// by notification on PostgreSQL, by the committed-cancel check on SQLite.
    async fn cancel_by_query_through_a_pool_stops_a_running_job_at_once(db) {
        let seen = Seen::default();
        let registry = Registry::from_entries([WorkerEntry::of::<RemindSlowly>()]).unwrap();
        let rt = db.runtime().registry(registry).queue("query-long", 2).rescue_interval(Duration::from_secs(3600)).state(seen.clone()).start().await.unwrap();
        let id = db.insert(RemindSlowly { appointment_id: 12 }).await.unwrap().job.id;
        wait_for("the job to start", LONG, || async { seen.lines().contains(&"started 12".to_string()).then_some(()) }).await;
        let n = match db.pool() {
            Pool::Postgres(pool) => RemindSlowly::query().appointment_id(12).cancel(pool).await.unwrap(),
            Pool::Sqlite(pool) => RemindSlowly::query().appointment_id(12).cancel(pool).await.unwrap(),
        };
        assert_eq!(n, 1);
        wait_for("the token to fire", LONG, || async { seen.lines().contains(&"stopped 12".to_string()).then_some(()) }).await;
        assert_eq!(db.wait_job(id, JobState::Cancelled).await.attempt, 1);
        rt.shutdown().await.unwrap();
    }
}

conformance! {
    /// New args re-key a unique job by the job's declared uniqueness: the old key is free, the
    /// new one taken; a change that would make two waiting jobs duplicates fails, changes
    /// nothing, and leaves the caller's transaction usable.
    async fn an_update_of_args_rebuilds_the_unique_key(db) {
        use crate::jobs::UniqueReminder;
        let in_an_hour = || Duration::from_secs(3600);
        let a = db.insert(UniqueReminder { appointment_id: 70, note: "a".into() }.schedule_in(in_an_hour())).await.unwrap().job.id;
        let b = db.insert(UniqueReminder { appointment_id: 71, note: "b".into() }.schedule_in(in_an_hour())).await.unwrap().job.id;
        let moved = UniqueReminder::query().id(a).update(&*db, Change::new().args(UniqueReminder { appointment_id: 72, note: "a".into() })).await.unwrap();
        assert_eq!(moved.changed, 1);
        assert!(db.insert(UniqueReminder { appointment_id: 72, note: "x".into() }).await.unwrap().conflict, "the new key is taken");
        assert!(!db.insert(UniqueReminder { appointment_id: 70, note: "x".into() }).await.unwrap().conflict, "the old key is free");

        let clash = Change::new().args(UniqueReminder { appointment_id: 72, note: "b".into() });
        let result = in_app_transaction!(db, commit, |tx| {
            let failed = UniqueReminder::query().id(b).update(&mut *tx, clash).await;
            // The transaction is still usable after the failed statement.
            let still = UniqueReminder::query().id(b).count(&mut *tx).await.unwrap();
            (failed.map(|u| u.changed).map_err(|e| e.to_string()), still)
        });
        assert!(result.0.is_err(), "{result:?}");
        assert_eq!(result.1, 1);
        assert_eq!(db.job(b).await.args["appointment_id"], 71, "nothing changed");
    }
}

conformance! {
    /// A job made unique per insert cannot have its args changed: its row does not say how to
    /// rebuild its key.
    async fn an_update_of_args_of_a_job_unique_per_insert_is_refused(db) {
        let id = db.insert(Remind { appointment_id: 80, kind: Kind::DayBefore }.build_insert().unique(Some(jobsmith::UniqueOptions::DEFAULT))).await.unwrap().job.id;
        let err = Remind::query().id(id).update(&*db, Change::new().args(Remind { appointment_id: 81, kind: Kind::DayBefore })).await.unwrap_err();
        assert!(matches!(&err, Error::InvalidOption(m) if m.contains("unique per insert")), "{err}");
        assert_eq!(db.job(id).await.args["appointment_id"], 80);
        // Other changes are fine.
        assert_eq!(Remind::query().id(id).update(&*db, Change::new().priority(4)).await.unwrap().changed, 1);
    }
}
