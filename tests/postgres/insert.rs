//! Insert: options, defaults, transactions, bulk.

use std::time::Duration;

use chrono::Utc;
use jobsmith::JobState;
use jobsmith::prelude::*;

use super::harness::TestDb;
use super::jobs::{A, B, Record, SendReminder, WithDefaults, Kind};

#[tokio::test]
async fn insert_uses_the_declared_defaults() {
    let db = TestDb::new().await;
    let stored = WithDefaults { to: "a@example.com".into() }.insert(&db.pool).await.unwrap();
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

#[tokio::test]
async fn every_option_overrides_its_default() {
    let db = TestDb::new().await;
    let job = WithDefaults { to: "b@example.com".into() }
        .build_insert()
        .queue("urgent")
        .priority(9)
        .max_attempts(2)
        .tags(["vip"])
        .meta(serde_json::json!({"trace": "abc"}))
        .insert(&db.pool)
        .await
        .unwrap()
        .job;
    assert_eq!((job.queue.as_str(), job.priority, job.max_attempts), ("urgent", 9, 2));
    assert_eq!(job.tags, vec!["vip".to_string()]);
    assert_eq!(job.meta, serde_json::json!({"trace": "abc"}));
}

#[tokio::test]
async fn schedule_in_and_schedule_at_make_scheduled_jobs() {
    let db = TestDb::new().await;
    let before = Utc::now();
    let later = WithDefaults { to: "x".into() }.schedule_in(Duration::from_secs(3600)).insert(&db.pool).await.unwrap().job;
    assert_eq!(later.state, JobState::Scheduled);
    let offset = (later.scheduled_at - before).num_seconds();
    assert!((3590..=3610).contains(&offset), "scheduled {offset}s ahead");

    let at = Utc::now() + chrono::Duration::days(2);
    let fixed = WithDefaults { to: "y".into() }.schedule_at(at).insert(&db.pool).await.unwrap().job;
    assert_eq!(fixed.state, JobState::Scheduled);
    assert!((fixed.scheduled_at - at).num_milliseconds().abs() < 1);

    let past = WithDefaults { to: "z".into() }.schedule_at(Utc::now() - chrono::Duration::hours(1)).insert(&db.pool).await.unwrap().job;
    assert_eq!(past.state, JobState::Available, "a time in the past is due now");
}

#[tokio::test]
async fn invalid_options_are_refused_with_a_clear_error() {
    let db = TestDb::new().await;
    let err = WithDefaults { to: "x".into() }.priority(10).insert(&db.pool).await.unwrap_err().to_string();
    assert!(err.contains("priority must be 0..=9"), "{err}");
    let err = WithDefaults { to: "x".into() }.build_insert().max_attempts(0).insert(&db.pool).await.unwrap_err().to_string();
    assert!(err.contains("max_attempts"), "{err}");
    let err = WithDefaults { to: "x".into() }.on_queue("").insert(&db.pool).await.unwrap_err().to_string();
    assert!(err.contains("queue name"), "{err}");
    let err = WithDefaults { to: "x".into() }.build_insert().meta(serde_json::json!([1])).insert(&db.pool).await.unwrap_err().to_string();
    assert!(err.contains("meta must be a JSON object"), "{err}");
    assert_eq!(super::harness::count_state(&db.pool, "available").await, 0, "nothing was inserted");
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_no_job_and_a_committed_one_does() {
    let db = TestDb::new().await;
    let mut tx = db.pool.begin().await.unwrap();
    let inside = SendReminder { appointment_id: 1, kind: Kind::DayBefore }.insert(&mut *tx).await.unwrap();
    assert!(inside.job.id > 0);
    tx.rollback().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobs").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 0);

    let mut tx = db.pool.begin().await.unwrap();
    SendReminder { appointment_id: 2, kind: Kind::HoursBefore }.insert(&mut *tx).await.unwrap();
    // Invisible to others until commit.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobs").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 0);
    tx.commit().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobs").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn insert_through_a_single_connection() {
    let db = TestDb::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let j = WithDefaults { to: "c".into() }.insert(&mut *conn).await.unwrap();
    let again = WithDefaults { to: "d".into() }.insert(&mut *conn).await.unwrap();
    assert_eq!(again.job.id, j.job.id + 1);
}

#[tokio::test]
async fn bulk_insert_of_ten_thousand_mixed_jobs_in_one_statement() {
    let db = TestDb::new().await;
    let mut jobs = Vec::new();
    for i in 0..10_000i64 {
        let job = match i % 3 {
            0 => A { n: i }.build(),
            1 => B { s: format!("s{i}") }.schedule_in(Duration::from_secs(60)).build(),
            _ => Record { probe: "none".into(), label: format!("r{i}"), sleep_ms: 0 }.priority(5).build(),
        };
        jobs.push(job.unwrap());
    }
    let stored = jobsmith::insert_all(&db.pool, jobs).await.unwrap();
    assert_eq!(stored.len(), 10_000);
    // Results come back in input order.
    for (i, s) in stored.iter().enumerate() {
        let i = i as i64;
        match i % 3 {
            0 => assert_eq!(s.job.args, serde_json::json!({"n": i})),
            1 => {
                assert_eq!(s.job.args, serde_json::json!({"s": format!("s{i}")}));
                assert_eq!(s.job.state, JobState::Scheduled);
            }
            _ => assert_eq!(s.job.priority, 5),
        }
    }
    let ids: std::collections::HashSet<i64> = stored.iter().map(|s| s.job.id).collect();
    assert_eq!(ids.len(), 10_000);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobs").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 10_000);
    // All rows were written by one transaction (one xmin, one now()): no per-row commits.
    let (xmins, times): (i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT xmin::text), count(DISTINCT inserted_at) FROM jobsmith.jobs",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((xmins, times), (1, 1));
}

#[tokio::test]
async fn bulk_insert_inside_a_transaction_rolls_back_whole() {
    let db = TestDb::new().await;
    let mut tx = db.pool.begin().await.unwrap();
    let jobs = (0..100).map(|n| A { n }.build().unwrap()).collect();
    jobsmith::insert_all(&mut *tx, jobs).await.unwrap();
    tx.rollback().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobs").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 0);
    assert!(jobsmith::insert_all(&db.pool, Vec::new()).await.unwrap().is_empty());
}
