//! jobsmith::testing, the helpers for users' own tests. Each test runs on both engines; the
//! inline mode and perform_job need no database engine of their own.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use chrono::Utc;
use jobsmith::prelude::*;
use jobsmith::testing::{self, Drain, Expected, Performed};
use jobsmith::{Db, JobState};

use super::jobs::{AlwaysFails, Chain, Choose, JsonPicky, Record, WithDefaults};
use super::probe::Probe;

static DBS: LazyLock<Mutex<HashMap<String, Db>>> = LazyLock::new(Default::default);

/// The database a chain job inserts its follow-up into, by probe key.
pub fn db_for(probe: &str) -> Db {
    DBS.lock().unwrap().get(probe).cloned().expect("db registered for probe")
}

conformance! {
    async fn assert_and_refute_enqueued_match_on_typed_fields(db) {
        let at = Utc::now() + chrono::Duration::hours(2);
        db.insert(WithDefaults { to: "ada@example.com".into() }.schedule_at(at)).await.unwrap();
        db.insert(WithDefaults { to: "bob@example.com".into() }.build_insert().meta(serde_json::json!({"campaign": "x"}))).await.unwrap();

        testing::assert_enqueued(&db, Expected::<WithDefaults>::any()).await;
        testing::assert_enqueued(&db, Expected::job(&WithDefaults { to: "ada@example.com".into() })).await;
        testing::assert_enqueued(
            &db,
            Expected::<WithDefaults>::any()
                .matching(|j| j.to.starts_with("ada"))
                .queue("mailers")
                .scheduled_at(at, Duration::from_secs(1))
                .tags(["user", "mail"]),
        )
        .await;
        testing::assert_enqueued(&db, Expected::<WithDefaults>::any().meta(serde_json::json!({"campaign": "x"}))).await;
        testing::refute_enqueued(&db, Expected::<WithDefaults>::any().args(serde_json::json!({"to": "eve@example.com"}))).await;
        testing::refute_enqueued(&db, Expected::<Record>::any()).await;
        testing::refute_enqueued(&db, Expected::<WithDefaults>::any().queue("default")).await;

        let all = testing::all_enqueued::<WithDefaults>(&db).await;
        assert_eq!(all.iter().map(|(j, _)| j.to.as_str()).collect::<Vec<_>>(), vec!["ada@example.com", "bob@example.com"]);

        // A failing assertion says what is enqueued.
        let db2 = db.db.clone();
        let failed = tokio::spawn(async move {
            testing::assert_enqueued(&db2, Expected::<WithDefaults>::any().args(serde_json::json!({"to": "nobody"}))).await
        })
        .await
        .unwrap_err();
        let message = failed.into_panic().downcast::<String>().map(|b| *b).unwrap_or_default();
        assert!(message.contains("expected a `") && message.contains("ada@example.com") && message.contains("bob@example.com"), "{message}");
    }
}

conformance! {
    async fn drain_queue_runs_what_waits_and_reports_outcomes(db) {
        let p = Probe::new();
        db.insert(Record { probe: p.key.clone(), label: "now".into(), sleep_ms: 0 }).await.unwrap();
        db.insert(Record { probe: p.key.clone(), label: "later".into(), sleep_ms: 0 }.schedule_in(Duration::from_secs(3600))).await.unwrap();
        db.insert(AlwaysFails { probe: p.key.clone() }).await.unwrap();
        db.insert(Choose { probe: p.key.clone(), what: "cancel".into() }).await.unwrap();

        let first = testing::drain_queue(&db, "default", Drain::default()).await.unwrap();
        assert_eq!((first.completed, first.retried, first.cancelled), (1, 1, 1));
        assert_eq!(p.labels().iter().filter(|l| *l == "now").count(), 1);
        assert_eq!(db.count_state(JobState::Scheduled).await, 1, "scheduled jobs wait without with_scheduled");

        let rest = testing::drain_queue(&db, "default", Drain { with_scheduled: true, recursive: true }).await.unwrap();
        assert_eq!(rest.completed, 1, "the scheduled job ran");
        assert_eq!((rest.retried, rest.discarded), (1, 1), "the failing job used its last two attempts");
        assert_eq!(db.count_state(JobState::Executing).await, 0);
        assert_eq!(testing::drain_queue(&db, "default", Drain::default()).await.unwrap().total(), 0);
    }
}

conformance! {
    async fn a_recursive_drain_runs_jobs_inserted_by_jobs(db) {
        let p = Probe::new();
        DBS.lock().unwrap().insert(p.key.clone(), db.db.clone());
        db.insert(Chain { probe: p.key.clone(), left: 3 }).await.unwrap();
        let once = testing::drain_queue(&db, "chain", Drain::default()).await.unwrap();
        assert_eq!(once.completed, 1);
        let all = testing::drain_queue(&db, "chain", Drain { recursive: true, ..Default::default() }).await.unwrap();
        assert_eq!(all.completed, 3);
        assert_eq!(p.labels(), vec!["chain3", "chain2", "chain1", "chain0"]);
    }
}

#[tokio::test]
async fn inline_mode_runs_jobs_as_they_are_inserted() {
    let db = testing::inline().await.unwrap();
    let p = Probe::new();
    DBS.lock().unwrap().insert(p.key.clone(), db.clone());
    let stored = db.insert(Chain { probe: p.key.clone(), left: 2 }).await.unwrap();
    assert_eq!(p.labels(), vec!["chain2", "chain1", "chain0"], "the job and the jobs it inserted ran");
    assert_eq!(db.engine().get_job(stored.job.id).await.unwrap().unwrap().state, JobState::Completed);
    // Scheduled jobs run at once too.
    db.insert(
        Record { probe: p.key.clone(), label: "later".into(), sleep_ms: 0 }
            .schedule_in(Duration::from_secs(600)),
    )
    .await
    .unwrap();
    assert_eq!(p.labels().last().unwrap(), "later");
}

#[tokio::test]
async fn perform_job_goes_through_the_json_round_trip_and_the_outcome_path() {
    let p = Probe::new();
    assert_eq!(
        testing::perform_job(Record { probe: p.key.clone(), label: "x".into(), sleep_ms: 0 }).await,
        Performed::Completed
    );
    assert!(
        matches!(testing::perform_job(AlwaysFails { probe: p.key.clone() }).await, Performed::Retry { ref error, .. } if error == "failure number 1")
    );
    assert!(matches!(
        testing::perform_job_at(AlwaysFails { probe: p.key.clone() }, 3).await,
        Performed::Discarded { .. }
    ));
    assert_eq!(
        testing::perform_job(Choose { probe: p.key.clone(), what: "discard".into() }).await,
        Performed::Discarded { error: "cannot ever work".into() }
    );
    // f64::NAN does not survive JSON: encoding fails, as it would at insert.
    let nan = JsonPicky { values: HashMap::from([("x".to_string(), f64::NAN)]) };
    assert!(matches!(testing::perform_job(nan).await, Performed::Discarded { .. }));
    let ok = JsonPicky { values: HashMap::from([("x".to_string(), 1.5)]) };
    assert_eq!(testing::perform_job(ok).await, Performed::Completed);
}

conformance! {
    async fn inline_mode_runs_a_transactions_jobs_after_its_commit_and_never_after_a_rollback(db) {
        let inline = testing::inline_on(&db);
        let p = Probe::new();
        let mut tx = inline.begin().await.unwrap();
        let stored = tx.insert(Record { probe: p.key.clone(), label: "committed".into(), sleep_ms: 0 }).await.unwrap();
        assert!(p.labels().is_empty(), "nothing runs before the commit");
        tx.commit().await.unwrap();
        assert_eq!(p.labels(), vec!["committed"], "the job ran once its transaction committed");
        assert_eq!(db.engine().get_job(stored.job.id).await.unwrap().unwrap().state, JobState::Completed);

        let mut tx = inline.begin().await.unwrap();
        let gone = tx.insert(Record { probe: p.key.clone(), label: "rolled back".into(), sleep_ms: 0 }).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(p.labels(), vec!["committed"], "a rolled-back job never runs");
        assert!(db.engine().get_job(gone.job.id).await.unwrap().is_none());
    }
}

conformance! {
    async fn a_transactions_jobs_are_stored_only_when_it_commits(db) {
        let mut tx = db.begin().await.unwrap();
        let first = tx.insert(WithDefaults { to: "a@example.com".into() }).await.unwrap();
        let second = tx.insert(WithDefaults { to: "b@example.com".into() }).await.unwrap();
        assert!(db.engine().get_job(first.job.id).await.unwrap().is_none(), "not visible before the commit");
        tx.commit().await.unwrap();
        for id in [first.job.id, second.job.id] {
            assert_eq!(db.engine().get_job(id).await.unwrap().unwrap().state, JobState::Available);
        }
        // Dropped without a commit: rolled back.
        let dropped = {
            let mut tx = db.begin().await.unwrap();
            tx.insert(WithDefaults { to: "c@example.com".into() }).await.unwrap()
        };
        assert!(db.engine().get_job(dropped.job.id).await.unwrap().is_none());
    }
}
