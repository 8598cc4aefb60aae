//! Unique jobs: one row per key, under races and rollbacks. Each test runs on both engines.

use std::time::Duration;

use jobsmith::prelude::*;
use jobsmith::{JobState, OnConflict, Pool, UniqueOptions};

use super::harness::{LONG, wait_for};
use super::jobs::{DebouncedDigest, UniqueReminder, UniqueWhilePending, WithDefaults};

/// Inserts `job` through `pool`, inside an explicit transaction when `in_transaction` (racing
/// tests do half of their inserts so, to widen the race window).
async fn insert_racing<J: jobsmith::Job>(
    pool: Pool,
    in_transaction: bool,
    job: impl Into<jobsmith::InsertBuilder<J>>,
) -> jobsmith::InsertedJob {
    let job = job.into();
    match (pool, in_transaction) {
        (Pool::Postgres(p), true) => {
            let mut tx = p.begin().await.unwrap();
            let r = job.insert(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
            r
        }
        (Pool::Postgres(p), false) => job.insert(&p).await.unwrap(),
        (Pool::Sqlite(p), true) => {
            let mut tx = p.begin().await.unwrap();
            let r = job.insert(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
            r
        }
        (Pool::Sqlite(p), false) => job.insert(&p).await.unwrap(),
    }
}

conformance! {
    async fn a_duplicate_returns_the_existing_job_marked_as_conflict(db) {
        let first = db.insert(UniqueReminder { appointment_id: 7, note: "a".into() }).await.unwrap();
        // Only appointment_id is part of the key, so a different note is still the same job.
        let second = db.insert(UniqueReminder { appointment_id: 7, note: "b".into() }).await.unwrap();
        assert!(!first.conflict);
        assert!(second.conflict);
        assert_eq!(second.job.id, first.job.id);
        assert_eq!(second.job.args, first.job.args, "the existing row is returned unchanged");
        assert!(!db.insert(UniqueReminder { appointment_id: 8, note: "a".into() }).await.unwrap().conflict);
        assert_eq!(db.count_all().await, 2);
    }
}

conformance! {
    async fn twenty_five_concurrent_inserts_make_exactly_one_row(db) {
        let tasks: Vec<_> = (0..25)
            .map(|i| {
                let pool = db.pool().clone();
                tokio::spawn(async move {
                    let job = UniqueReminder { appointment_id: 1, note: format!("{i}") };
                    insert_racing(pool, i % 2 == 0, job).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert_eq!(db.count_all().await, 1);
        assert_eq!(results.iter().filter(|r| !r.conflict).count(), 1);
        let id = results[0].job.id;
        assert!(results.iter().all(|r| r.job.id == id), "every caller sees the one row");
    }
}

conformance! {
    async fn a_rolled_back_unique_insert_does_not_block_the_next(db) {
        match db.pool().clone() {
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await.unwrap();
                assert!(!UniqueReminder { appointment_id: 3, note: "tx".into() }.insert(&mut *tx).await.unwrap().conflict);
                // A concurrent insert waits for the open transaction, then inserts once it rolls back.
                let p2 = pool.clone();
                let waiter = tokio::spawn(async move { UniqueReminder { appointment_id: 3, note: "other".into() }.insert(&p2).await });
                wait_for("the second insert to wait on the first", LONG, || async {
                    let waiting: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    )
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                    (waiting >= 1).then_some(())
                })
                .await;
                tx.rollback().await.unwrap();
                assert!(!waiter.await.unwrap().unwrap().conflict);
            }
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await.unwrap();
                assert!(!UniqueReminder { appointment_id: 3, note: "tx".into() }.insert(&mut *tx).await.unwrap().conflict);
                tx.rollback().await.unwrap();
                assert!(!UniqueReminder { appointment_id: 3, note: "other".into() }.insert(&pool).await.unwrap().conflict);
            }
        }
        assert_eq!(db.count_all().await, 1);
    }
}

conformance! {
    async fn uniqueness_applies_only_in_the_chosen_states(db) {
        let first = db.insert(UniqueWhilePending { n: 1 }).await.unwrap();
        assert!(db.insert(UniqueWhilePending { n: 1 }).await.unwrap().conflict);
        db.exec(&format!("UPDATE {{jobs}} SET state = 'completed' WHERE id = {}", first.job.id)).await;
        let again = db.insert(UniqueWhilePending { n: 1 }).await.unwrap();
        assert!(!again.conflict, "a completed row is outside the unique states");
        assert_ne!(again.job.id, first.job.id);
    }
}

conformance! {
    async fn per_insert_uniqueness_and_periods(db) {
        let hourly = UniqueOptions { period: Some(Duration::from_secs(3600)), ..UniqueOptions::DEFAULT };
        let a = db.insert(WithDefaults { to: "x".into() }.build_insert().unique(Some(hourly))).await.unwrap();
        let b = db.insert(WithDefaults { to: "x".into() }.build_insert().unique(Some(hourly))).await.unwrap();
        // The two inserts could straddle an hour boundary only at hh:59:59.999.
        assert!(b.conflict && b.job.id == a.job.id);
        let c = db.insert(WithDefaults { to: "x".into() }).await.unwrap();
        assert!(!c.conflict && c.job.id != a.job.id, "without uniqueness the same args make a new row");
        let d = db.insert(WithDefaults { to: "x".into() }.build_insert().queue("q2").unique(Some(hourly))).await.unwrap();
        assert!(!d.conflict, "a different queue is a different job by default");
    }
}

conformance! {
    async fn bulk_insert_honours_uniqueness_within_and_across_batches(db) {
        let existing = db.insert(UniqueReminder { appointment_id: 1, note: "old".into() }).await.unwrap();
        let batch = vec![
            UniqueReminder { appointment_id: 1, note: "dup of existing".into() }.build().unwrap(),
            UniqueReminder { appointment_id: 2, note: "new".into() }.build().unwrap(),
            UniqueReminder { appointment_id: 2, note: "dup within batch".into() }.build().unwrap(),
            WithDefaults { to: "plain".into() }.build().unwrap(),
        ];
        let r = db.insert_all(batch).await.unwrap();
        assert_eq!(r.len(), 4);
        assert!(r[0].conflict && r[0].job.id == existing.job.id);
        assert!(!r[1].conflict);
        assert!(r[2].conflict && r[2].job.id == r[1].job.id);
        assert!(!r[3].conflict && r[3].job.queue == "mailers");
        assert_eq!(db.count_all().await, 3);
        assert_eq!(r[1].job.state, JobState::Available);
    }
}

conformance! {
    /// A set without a waiting state would let a job's own retry collide with its duplicate.
    async fn unique_states_without_a_waiting_state_are_refused(db) {
        let narrow = UniqueOptions { states: &[JobState::Available, JobState::Completed], ..UniqueOptions::DEFAULT };
        let err = db.insert(WithDefaults { to: "x".into() }.build_insert().unique(Some(narrow))).await.unwrap_err();
        assert!(err.to_string().contains("missing `scheduled`"), "{err}");
        assert_eq!(db.count_all().await, 0);
    }
}

conformance! {
    /// Replacing policies: a duplicate gives the waiting job its args (`ReplaceArgs`), its due
    /// time (`Reschedule`: debounce), or both; the default keeps it.
    async fn a_duplicate_can_replace_the_waiting_jobs_args_or_due_time(db) {
        let in_secs = |s| Duration::from_secs(s);
        let first = db.insert(UniqueReminder { appointment_id: 3, note: "v1".into() }.schedule_in(in_secs(600))).await.unwrap().job;

        let kept = db.insert(UniqueReminder { appointment_id: 3, note: "v2".into() }.schedule_in(in_secs(60))).await.unwrap();
        assert!(kept.conflict && !kept.replaced);
        assert_eq!(db.job(first.id).await.args["note"], "v1");

        let args = db.insert(UniqueReminder { appointment_id: 3, note: "v3".into() }.schedule_in(in_secs(60)).on_conflict(OnConflict::ReplaceArgs)).await.unwrap();
        assert!(args.conflict && args.replaced);
        assert_eq!(args.job.id, first.id);
        let row = db.job(first.id).await;
        assert_eq!((row.args["note"].as_str(), row.scheduled_at), (Some("v3"), first.scheduled_at), "args only");

        let later = db.insert(UniqueReminder { appointment_id: 3, note: "v4".into() }.schedule_in(in_secs(1200)).on_conflict(OnConflict::Reschedule)).await.unwrap();
        assert!(later.replaced);
        let row = db.job(first.id).await;
        assert_eq!(row.args["note"], "v3", "due time only");
        assert!(row.scheduled_at > first.scheduled_at + chrono::Duration::seconds(500), "moved later: {} vs {}", row.scheduled_at, first.scheduled_at);
        assert_eq!(row.state, JobState::Scheduled);

        let now = db.insert(UniqueReminder { appointment_id: 3, note: "v5".into() }.build_insert().on_conflict(OnConflict::Replace)).await.unwrap();
        assert!(now.replaced);
        let row = db.job(first.id).await;
        assert_eq!((row.state, row.args["note"].as_str()), (JobState::Available, Some("v5")), "due now: available, with the new args");
        assert_eq!(db.count_all().await, 1);
    }
}

conformance! {
    /// A duplicate never replaces a job that runs or has finished.
    async fn a_replacing_duplicate_keeps_a_running_or_finished_job(db) {
        for (n, state) in [(4, "executing"), (5, "completed")] {
            let id = db.insert(UniqueReminder { appointment_id: n, note: "old".into() }).await.unwrap().job.id;
            let stamp = if state == "completed" { ", completed_at = {now}" } else { ", attempt = 1, attempted_by = 'elsewhere', attempted_at = {now}" };
            db.exec(&format!("UPDATE {{jobs}} SET state = '{state}'{stamp} WHERE id = {id}")).await;
            let again = db.insert(UniqueReminder { appointment_id: n, note: "new".into() }.build_insert().on_conflict(OnConflict::Replace)).await.unwrap();
            assert!(again.conflict && !again.replaced, "{state}");
            assert_eq!(db.job(id).await.args["note"], "old", "{state}");
        }
    }
}

conformance! {
    /// Debounce under a race: 24 tasks insert the same key at once with `Replace`, half in
    /// transactions. One row; it carries one of the inserted values; every caller sees that row;
    /// exactly one added it.
    async fn concurrent_replacing_inserts_leave_one_row_with_one_of_their_values(db) {
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let pool = db.pool().clone();
                tokio::spawn(async move {
                    let job = UniqueReminder { appointment_id: 9, note: format!("{i}") }
                        .schedule_in(Duration::from_secs(600 + i))
                        .on_conflict(OnConflict::Replace);
                    insert_racing(pool, i % 2 == 0, job).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert_eq!(db.count_all().await, 1);
        assert_eq!(results.iter().filter(|r| !r.conflict).count(), 1, "one added the row");
        assert_eq!(results.iter().filter(|r| r.replaced).count(), 23, "the others replaced it");
        let id = results[0].job.id;
        assert!(results.iter().all(|r| r.job.id == id));
        // The row holds the values of the insert that touched it last: one whose result says so.
        let row = db.job(id).await;
        let note = row.args["note"].as_str().unwrap().to_string();
        let last = results.iter().find(|r| r.job.args["note"] == note.as_str()).expect("a caller saw the final values");
        assert_eq!(last.job.scheduled_at, row.scheduled_at, "args and due time come from the same insert");
    }
}

conformance! {
    /// `unique(on_conflict = replace)` in the attribute: the declared policy applies to every
    /// insert of the job.
    async fn the_declared_conflict_policy_applies(db) {
        let first = db.insert(DebouncedDigest { user_id: 1, changes: 1 }.schedule_in(Duration::from_secs(60))).await.unwrap().job;
        let second = db.insert(DebouncedDigest { user_id: 1, changes: 2 }.schedule_in(Duration::from_secs(600))).await.unwrap();
        assert!(second.replaced);
        let row = db.job(first.id).await;
        assert_eq!(row.args["changes"], 2);
        assert!(row.scheduled_at > first.scheduled_at + chrono::Duration::seconds(300));
        // Per insert, the policy can be set back.
        let third = db.insert(DebouncedDigest { user_id: 1, changes: 3 }.build_insert().on_conflict(OnConflict::Keep)).await.unwrap();
        assert!(third.conflict && !third.replaced);
    }
}
