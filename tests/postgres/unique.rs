//! Unique jobs: one row per key, under races and rollbacks.

use std::time::Duration;

use jobsmith::prelude::*;
use jobsmith::{JobState, UniqueOptions};

use super::harness::TestDb;
use super::jobs::{UniqueReminder, UniqueWhilePending, WithDefaults};

#[tokio::test]
async fn a_duplicate_returns_the_existing_job_marked_as_conflict() {
    let db = TestDb::new().await;
    let first = UniqueReminder { appointment_id: 7, note: "a".into() }.insert(&db.pool).await.unwrap();
    // Only appointment_id is part of the key, so a different note is still the same job.
    let second = UniqueReminder { appointment_id: 7, note: "b".into() }.insert(&db.pool).await.unwrap();
    assert!(!first.conflict);
    assert!(second.conflict);
    assert_eq!(second.job.id, first.job.id);
    assert_eq!(second.job.args, first.job.args, "the existing row is returned unchanged");
    let other = UniqueReminder { appointment_id: 8, note: "a".into() }.insert(&db.pool).await.unwrap();
    assert!(!other.conflict);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobs").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn twenty_five_concurrent_inserts_make_exactly_one_row() {
    let db = TestDb::new().await;
    let tasks: Vec<_> = (0..25)
        .map(|i| {
            let pool = db.pool.clone();
            tokio::spawn(async move {
                // Half of them inside explicit transactions, to widen the race window.
                if i % 2 == 0 {
                    let mut tx = pool.begin().await.unwrap();
                    let r = UniqueReminder { appointment_id: 1, note: format!("{i}") }.insert(&mut *tx).await.unwrap();
                    tx.commit().await.unwrap();
                    r
                } else {
                    UniqueReminder { appointment_id: 1, note: format!("{i}") }.insert(&pool).await.unwrap()
                }
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobs").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 1);
    assert_eq!(results.iter().filter(|r| !r.conflict).count(), 1);
    let id = results[0].job.id;
    assert!(results.iter().all(|r| r.job.id == id), "every caller sees the one row");
}

#[tokio::test]
async fn a_rolled_back_unique_insert_does_not_block_the_next() {
    let db = TestDb::new().await;
    let mut tx = db.pool.begin().await.unwrap();
    let held = UniqueReminder { appointment_id: 3, note: "tx".into() }.insert(&mut *tx).await.unwrap();
    assert!(!held.conflict);
    // A concurrent insert waits for the open transaction, then inserts once it rolls back.
    let pool = db.pool.clone();
    let waiter = tokio::spawn(async move { UniqueReminder { appointment_id: 3, note: "other".into() }.insert(&pool).await });
    tokio::time::sleep(Duration::from_millis(200)).await; // lets the waiter block on the row; correctness does not depend on it
    tx.rollback().await.unwrap();
    let after = waiter.await.unwrap().unwrap();
    assert!(!after.conflict);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobs").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn uniqueness_applies_only_in_the_chosen_states() {
    let db = TestDb::new().await;
    let first = UniqueWhilePending { n: 1 }.insert(&db.pool).await.unwrap();
    assert!(UniqueWhilePending { n: 1 }.insert(&db.pool).await.unwrap().conflict);
    sqlx::query("UPDATE jobsmith.jobs SET state = 'completed', completed_at = now() WHERE id = $1")
        .bind(first.job.id)
        .execute(&db.pool)
        .await
        .unwrap();
    let again = UniqueWhilePending { n: 1 }.insert(&db.pool).await.unwrap();
    assert!(!again.conflict, "a completed row is outside the unique states");
    assert_ne!(again.job.id, first.job.id);
}

#[tokio::test]
async fn per_insert_uniqueness_and_periods() {
    let db = TestDb::new().await;
    let hourly = UniqueOptions { period: Some(Duration::from_secs(3600)), ..UniqueOptions::DEFAULT };
    let a = WithDefaults { to: "x".into() }.build_insert().unique(Some(hourly)).insert(&db.pool).await.unwrap();
    let b = WithDefaults { to: "x".into() }.build_insert().unique(Some(hourly)).insert(&db.pool).await.unwrap();
    // The two inserts may straddle an hour boundary only if the test runs at hh:59:59.999.
    assert!(b.conflict && b.job.id == a.job.id);
    // Without uniqueness the same args make a new row.
    let c = WithDefaults { to: "x".into() }.insert(&db.pool).await.unwrap();
    assert!(!c.conflict && c.job.id != a.job.id);
    // A different queue is a different job by default.
    let d = WithDefaults { to: "x".into() }.build_insert().queue("q2").unique(Some(hourly)).insert(&db.pool).await.unwrap();
    assert!(!d.conflict);
}

#[tokio::test]
async fn bulk_insert_honours_uniqueness_within_and_across_batches() {
    let db = TestDb::new().await;
    let existing = UniqueReminder { appointment_id: 1, note: "old".into() }.insert(&db.pool).await.unwrap();
    let batch = vec![
        UniqueReminder { appointment_id: 1, note: "dup of existing".into() }.build().unwrap(),
        UniqueReminder { appointment_id: 2, note: "new".into() }.build().unwrap(),
        UniqueReminder { appointment_id: 2, note: "dup within batch".into() }.build().unwrap(),
        WithDefaults { to: "plain".into() }.build().unwrap(),
    ];
    let r = jobsmith::insert_all(&db.pool, batch).await.unwrap();
    assert_eq!(r.len(), 4);
    assert!(r[0].conflict && r[0].job.id == existing.job.id);
    assert!(!r[1].conflict);
    assert!(r[2].conflict && r[2].job.id == r[1].job.id);
    assert!(!r[3].conflict && r[3].job.queue == "mailers");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobsmith.jobs").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 3);
    assert_eq!(r[1].job.state, JobState::Available);
}
