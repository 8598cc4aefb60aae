//! Insert: options, defaults, transactions, bulk. Each test runs on both engines.

use std::time::Duration;

use chrono::Utc;
use jobsmith::prelude::*;
use jobsmith::{JobState, Pool};

use super::jobs::{A, B, Kind, Record, SendReminder, UniqueReminder, WithDefaults};

conformance! {
    async fn insert_uses_the_declared_defaults(db) {
        let stored = db.insert(WithDefaults { to: "a@example.com".into() }).await.unwrap();
        assert!(!stored.conflict);
        let job = stored.job;
        assert_eq!(job.state, JobState::Available);
        assert_eq!(job.queue, "mailers");
        assert_eq!(job.max_attempts, 7);
        assert_eq!(job.priority, 4);
        assert_eq!(job.tags, vec!["mail".to_string(), "user".to_string()]);
        assert_eq!(job.attempt, 0);
        assert_eq!(job.args, serde_json::json!({"to": "a@example.com"}));
        assert_eq!(job.worker, <WithDefaults as jobsmith::Job>::NAME);
        assert!(job.worker.ends_with("WithDefaults"), "{}", job.worker);
    }
}

conformance! {
    async fn every_option_overrides_its_default(db) {
        let job = db
            .insert(
                WithDefaults { to: "b@example.com".into() }
                    .build_insert()
                    .queue("urgent")
                    .priority(9)
                    .max_attempts(2)
                    .tags(["vip"])
                    .meta(serde_json::json!({"trace": "abc"})),
            )
            .await
            .unwrap()
            .job;
        assert_eq!((job.queue.as_str(), job.priority, job.max_attempts), ("urgent", 9, 2));
        assert_eq!(job.tags, vec!["vip".to_string()]);
        assert_eq!(job.meta, serde_json::json!({"trace": "abc"}));
    }
}

conformance! {
    async fn schedule_in_and_schedule_at_make_scheduled_jobs(db) {
        let before = Utc::now();
        let later = db.insert(WithDefaults { to: "x".into() }.schedule_in(Duration::from_secs(3600))).await.unwrap().job;
        assert_eq!(later.state, JobState::Scheduled);
        let offset = (later.scheduled_at - before).num_seconds();
        assert!((3590..=3610).contains(&offset), "scheduled {offset}s ahead");

        let at = Utc::now() + chrono::Duration::days(2);
        let fixed = db.insert(WithDefaults { to: "y".into() }.schedule_at(at)).await.unwrap().job;
        assert_eq!(fixed.state, JobState::Scheduled);
        assert!((fixed.scheduled_at - at).num_milliseconds().abs() <= 1);

        let past = db.insert(WithDefaults { to: "z".into() }.schedule_at(Utc::now() - chrono::Duration::hours(1))).await.unwrap().job;
        assert_eq!(past.state, JobState::Available, "a time in the past is due now");
    }
}

conformance! {
    async fn invalid_options_are_refused_with_a_clear_error(db) {
        let err = db.insert(WithDefaults { to: "x".into() }.priority(10)).await.unwrap_err().to_string();
        assert!(err.contains("priority must be 0..=9"), "{err}");
        let err = db.insert(WithDefaults { to: "x".into() }.build_insert().max_attempts(0)).await.unwrap_err().to_string();
        assert!(err.contains("max_attempts"), "{err}");
        let err = db.insert(WithDefaults { to: "x".into() }.on_queue("")).await.unwrap_err().to_string();
        assert!(err.contains("queue name"), "{err}");
        let err = db.insert(WithDefaults { to: "x".into() }.build_insert().meta(serde_json::json!([1]))).await.unwrap_err().to_string();
        assert!(err.contains("meta must be a JSON object"), "{err}");
        assert_eq!(db.count_all().await, 0, "nothing was inserted");
    }
}

conformance! {
    /// Through the caller's own transaction: rollback leaves nothing, commit keeps the job.
    async fn a_rolled_back_transaction_leaves_no_job_and_a_committed_one_does(db) {
        match db.pool().clone() {
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await.unwrap();
                assert!(SendReminder { appointment_id: 1, kind: Kind::DayBefore }.insert(&mut *tx).await.unwrap().job.id > 0);
                tx.rollback().await.unwrap();
                assert_eq!(db.count_all().await, 0);
                let mut tx = pool.begin().await.unwrap();
                SendReminder { appointment_id: 2, kind: Kind::HoursBefore }.insert(&mut *tx).await.unwrap();
                assert_eq!(db.count_all().await, 0, "invisible until commit");
                tx.commit().await.unwrap();
            }
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await.unwrap();
                assert!(SendReminder { appointment_id: 1, kind: Kind::DayBefore }.insert(&mut *tx).await.unwrap().job.id > 0);
                tx.rollback().await.unwrap();
                assert_eq!(db.count_all().await, 0);
                let mut tx = pool.begin().await.unwrap();
                SendReminder { appointment_id: 2, kind: Kind::HoursBefore }.insert(&mut *tx).await.unwrap();
                tx.commit().await.unwrap();
            }
        }
        assert_eq!(db.count_all().await, 1);
    }
}

conformance! {
    async fn insert_through_the_pool_and_a_connection(db) {
        let (a, b) = match db.pool().clone() {
            Pool::Postgres(pool) => {
                let a = WithDefaults { to: "c".into() }.insert(&pool).await.unwrap();
                let mut conn = pool.acquire().await.unwrap();
                (a, WithDefaults { to: "d".into() }.insert(&mut *conn).await.unwrap())
            }
            Pool::Sqlite(pool) => {
                let a = WithDefaults { to: "c".into() }.insert(&pool).await.unwrap();
                let mut conn = pool.acquire().await.unwrap();
                (a, WithDefaults { to: "d".into() }.insert(&mut *conn).await.unwrap())
            }
        };
        assert_eq!(b.job.id, a.job.id + 1);
    }
}

conformance! {
    async fn bulk_insert_of_ten_thousand_mixed_jobs(db) {
        let mut jobs = Vec::new();
        for i in 0..10_000i64 {
            let job = match i % 3 {
                0 => A { n: i }.build(),
                1 => B { s: format!("s{i}") }.schedule_in(Duration::from_secs(60)).build(),
                _ => Record { probe: "none".into(), label: format!("r{i}"), sleep_ms: 0 }.priority(5).build(),
            };
            jobs.push(job.unwrap());
        }
        let stored = db.insert_all(jobs).await.unwrap();
        assert_eq!(stored.len(), 10_000);
        for (i, s) in stored.iter().enumerate() {
            let i = i as i64;
            match i % 3 {
                0 => assert_eq!(s.job.args, serde_json::json!({"n": i})),
                1 => {
                    assert_eq!(s.job.args, serde_json::json!({"s": format!("s{i}")}));
                    assert_eq!(s.job.state, JobState::Scheduled);
                    assert_eq!(s.job.queue, "other");
                }
                _ => assert_eq!(s.job.priority, 5),
            }
        }
        let ids: std::collections::HashSet<i64> = stored.iter().map(|s| s.job.id).collect();
        assert_eq!(ids.len(), 10_000);
        assert_eq!(db.count_all().await, 10_000);
        // One transaction wrote them all: a single insert time.
        assert_eq!(db.scalar("SELECT count(DISTINCT inserted_at) FROM {jobs}").await, 1);
    }
}

conformance! {
    async fn bulk_insert_inside_a_transaction_rolls_back_whole(db) {
        let jobs: Vec<_> = (0..100).map(|n| A { n }.build().unwrap()).collect();
        match db.pool().clone() {
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await.unwrap();
                jobsmith::insert_all(&mut *tx, jobs).await.unwrap();
                tx.rollback().await.unwrap();
            }
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await.unwrap();
                jobsmith::insert_all(&mut *tx, jobs).await.unwrap();
                tx.rollback().await.unwrap();
            }
        }
        assert_eq!(db.count_all().await, 0);
        assert!(db.insert_all(Vec::new()).await.unwrap().is_empty());
    }
}

/// Compile-time check: inserting inside the caller's transaction works from within other `Send`
/// futures, such as a job's own code or a web handler (this used to fail with "Acquire is not
/// general enough").
#[allow(dead_code)]
fn insert_futures_are_send_inside_transactions(pg: sqlx::PgPool, lite: sqlx::SqlitePool) {
    fn spawnable<F: std::future::Future + Send + 'static>(_: F) {}
    spawnable(async move {
        let mut tx = pg.begin().await.unwrap();
        A { n: 1 }.insert(&mut *tx).await.unwrap();
        A { n: 2 }.schedule_in(Duration::from_secs(1)).insert(&mut *tx).await.unwrap();
        jobsmith::insert_all(&mut *tx, vec![A { n: 3 }.build().unwrap()]).await.unwrap();
        tx.commit().await.unwrap();
    });
    spawnable(async move {
        let mut tx = lite.begin().await.unwrap();
        A { n: 1 }.insert(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    });
}

conformance! {
    /// Insert answers with the row as stored: every field, for single and bulk inserts of plain
    /// jobs (whose rows are partly filled in from the input) and of unique ones.
    async fn insert_returns_each_row_exactly_as_stored(db) {
        let mut jobs = Vec::new();
        for i in 0..300i64 {
            let job = match i % 5 {
                0 => A { n: i }.build(),
                1 => WithDefaults { to: format!("{i}@example.com") }
                    .build_insert()
                    .tags(["t1", "t2"])
                    .meta(serde_json::json!({"i": i}))
                    .schedule_in(Duration::from_secs(600))
                    .build(),
                2 => Record { probe: "none".into(), label: format!("r{i}"), sleep_ms: 0 }.priority(3).queue("other").build(),
                3 => B { s: format!("s{i}") }.schedule_at(Utc::now() + chrono::Duration::days(1)).build(),
                // Due in the past: available at once.
                _ => B { s: format!("p{i}") }.schedule_at(Utc::now() - chrono::Duration::hours(1)).build(),
            };
            jobs.push(job.unwrap());
        }
        let mut returned: Vec<jobsmith::JobRow> = db.insert_all(jobs).await.unwrap().into_iter().map(|s| s.job).collect();
        returned.push(db.insert(A { n: -1 }).await.unwrap().job);
        returned.push(db.insert(B { s: "later".into() }.schedule_in(Duration::from_secs(600))).await.unwrap().job);
        returned.push(db.insert(B { s: "past".into() }.schedule_at(Utc::now() - chrono::Duration::hours(1))).await.unwrap().job);
        // A batch of one kind (one worker and queue, due now, nothing optional): ids in input order.
        let uniform = db.insert_all((0..500).map(|n| A { n: 1000 + n }.build().unwrap()).collect()).await.unwrap();
        for (n, s) in uniform.iter().enumerate() {
            assert_eq!(s.job.args, serde_json::json!({"n": 1000 + n as i64}), "row {n} of a uniform batch");
        }
        returned.extend(uniform.into_iter().map(|s| s.job));
        returned.push(db.insert(SendReminder { appointment_id: 7, kind: Kind::DayBefore }).await.unwrap().job);
        let unique = db
            .insert_all(vec![
                UniqueReminder { appointment_id: 1, note: "a".into() }.build().unwrap(),
                A { n: 5 }.build().unwrap(),
            ])
            .await
            .unwrap();
        returned.extend(unique.into_iter().map(|s| s.job));
        for r in &returned {
            assert_eq!(&db.job(r.id).await, r, "insert returned a row that differs from the stored one");
        }
        let states: std::collections::HashSet<_> = returned.iter().map(|r| r.state).collect();
        assert!(states.contains(&jobsmith::JobState::Scheduled) && states.contains(&jobsmith::JobState::Available));
        let args: Vec<_> = returned.iter().take(8).map(|r| r.args.clone()).collect();
        assert_eq!(args[0], serde_json::json!({"n": 0}));
        assert_eq!(args[6], serde_json::json!({"to": "6@example.com"}));
    }
}

/// A job whose args are not a JSON object: a unit variant serializes as a string. Written by
/// hand (the macro always makes a struct), as an application may for a small enum of tasks.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
enum Chore {
    Sweep,
    Mop,
}

impl jobsmith::Job for Chore {
    type Output = ();
    const NAME: &'static str = "conformance::Chore";
    const OPTIONS: jobsmith::JobOptions = jobsmith::JobOptions::DEFAULT;

    fn perform(self, _ctx: jobsmith::JobContext) -> jobsmith::PerformFuture {
        Box::pin(async { Ok(jobsmith::Outcome::Complete) })
    }
}

conformance! {
    /// Args that are not an object (a string, here) are stored as the same JSON by every insert
    /// path: a batch of one kind, a mixed batch and a single insert. (SQLite's `json_each` hands
    /// back a string element bare, so the one-kind path must not take such a batch.)
    async fn args_that_are_not_objects_are_stored_as_they_were_encoded(db) {
        let one_kind = db.insert_all(vec![Chore::Sweep.build().unwrap(), Chore::Mop.build().unwrap()]).await.unwrap();
        let mixed = db.insert_all(vec![Chore::Mop.build().unwrap(), A { n: 1 }.build().unwrap()]).await.unwrap();
        let single = db.insert(Chore::Sweep).await.unwrap();
        let rows: Vec<_> = one_kind.iter().chain(&mixed).chain([&single]).map(|i| i.job.clone()).collect();
        let expected = [
            serde_json::json!("Sweep"),
            serde_json::json!("Mop"),
            serde_json::json!("Mop"),
            serde_json::json!({"n": 1}),
            serde_json::json!("Sweep"),
        ];
        for (row, want) in rows.iter().zip(&expected) {
            assert_eq!(&row.args, want, "as returned");
            assert_eq!(&db.job(row.id).await.args, want, "as stored");
        }
    }
}
