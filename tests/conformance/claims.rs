//! A node reconciles its own claims: a row `executing` by this node that it is not running (a
//! claim whose answer was lost) is handed back within two rescue intervals, and at shutdown; a job
//! it does run is never handed back however many rounds pass.

use std::time::Duration;

use jobsmith::JobState;
use jobsmith::prelude::*;

use super::harness::{LONG, TestDb, wait_for};
use super::jobs::Blocks;
use super::probe::Probe;
use super::runtime::record;

/// The error entry the reconciler writes (see `runtime::claims`).
const LOST: &str = "this node claimed the job but never ran it";

/// Makes job `id` look claimed by `node` in its first attempt, as a fetch whose answer was lost
/// leaves it.
async fn claim_by_hand(db: &TestDb, id: i64, node: &str) {
    db.exec(&format!(
        "UPDATE {{jobs}} SET state = 'executing', attempt = attempt + 1, attempted_by = '{node}' WHERE id = {id}"
    ))
    .await;
}

conformance! {
    async fn a_claim_whose_answer_was_lost_is_handed_back_within_two_rescue_intervals(db) {
        let p = Probe::new();
        let rt = db
            .runtime()
            .node_name("n1")
            .queue("default", 2)
            .rescue_interval(Duration::from_millis(200))
            .poll_interval(Duration::from_millis(200))
            .start()
            .await
            .unwrap();
        // Scheduled an hour ahead, so no fetch takes it before the hand-made claim does.
        let id = db.insert(record(&p, "lost", 0).schedule_in(Duration::from_secs(3600))).await.unwrap().job.id;
        claim_by_hand(&db, id, "n1").await;
        let done = db.wait_job(id, JobState::Completed).await;
        rt.shutdown().await.unwrap();
        assert_eq!(p.labels(), vec!["lost".to_string()], "ran once, after the hand-back");
        assert_eq!(done.attempt, 1, "the lost claim's attempt was returned");
        let errors: Vec<String> = done.errors.iter().map(|e| e["error"].as_str().unwrap().to_string()).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains(LOST), "{errors:?}");
    }
}

conformance! {
    async fn running_jobs_are_never_taken_for_lost_claims(db) {
        let p = Probe::new();
        let rt = db
            .runtime()
            .node_name("n1")
            .queue("default", 3)
            .rescue_interval(Duration::from_millis(50))
            .start()
            .await
            .unwrap();
        let ids: Vec<i64> = {
            let mut ids = Vec::new();
            for _ in 0..3 {
                ids.push(db.insert(Blocks { probe: p.key.clone() }).await.unwrap().job.id);
            }
            ids
        };
        wait_for("three blocking jobs running", LONG, || async { (p.start_count() == 3).then_some(()) }).await;
        // Many reconciliation rounds while the jobs run.
        let until = std::time::Instant::now() + Duration::from_millis(1500);
        wait_for("reconciliation rounds to pass", LONG, || async { (std::time::Instant::now() > until).then_some(()) }).await;
        for id in &ids {
            let row = db.job(*id).await;
            assert_eq!(row.state, JobState::Executing, "job {id} was taken away while it ran");
            assert!(row.errors.is_empty(), "{:?}", row.errors);
        }
        rt.shutdown().await.unwrap();
        assert_eq!(p.start_count(), 3, "nothing ran twice");
    }
}

conformance! {
    async fn shutdown_hands_back_rows_it_did_not_know_it_held(db) {
        let p = Probe::new();
        // A long rescue interval: only shutdown can find the lost claim in time.
        let rt = db
            .runtime()
            .node_name("n1")
            .queue("default", 1)
            .rescue_interval(Duration::from_secs(3600))
            .start()
            .await
            .unwrap();
        let id = db.insert(record(&p, "lost", 0).schedule_in(Duration::from_secs(3600))).await.unwrap().job.id;
        claim_by_hand(&db, id, "n1").await;
        rt.shutdown().await.unwrap();
        let row = db.job(id).await;
        assert_eq!(row.state, JobState::Available, "nothing is left executing after shutdown");
        assert_eq!(row.attempt, 0);
        assert!(row.errors[0]["error"].as_str().unwrap().contains("handed back at shutdown"), "{:?}", row.errors);
        assert_eq!(db.count_state(JobState::Executing).await, 0);
    }
}

conformance! {
    async fn a_result_written_twice_never_lands_on_a_newer_claim(db) {
        // A release (attempt given back) whose first write committed but whose answer was lost is
        // written again by the completer. Meanwhile the same node fetched the row again, in the
        // same attempt: the repeat must leave that newer claim alone.
        use jobsmith::engine::{Ack, AckKind, FetchRequest};
        let p = Probe::new();
        let id = db.insert(record(&p, "twice", 0)).await.unwrap().job.id;
        let engine = db.engine();
        let fetch = FetchRequest { queue: "default", limit: 1, weight_cap: u32::MAX, node: "n1", global_limit: None, after: None, relaxed_commit: false };
        let first = engine.fetch(&fetch).await.unwrap().remove(0);
        let release = Ack { id, attempt: first.attempt, claim: Some(first.claim), kind: AckKind::Release };
        assert_eq!(engine.ack("n1", std::slice::from_ref(&release)).await.unwrap(), 1);
        // Claim stamps are the fetch's time (milliseconds on SQLite): let the clock move on.
        wait_for("the clock to pass the first claim", LONG, || async {
            let now = chrono::Utc::now();
            let passed = match db.kind {
                crate::harness::Kind::Postgres => now.timestamp_micros() > first.claim + 2_000,
                crate::harness::Kind::Sqlite => now.timestamp_millis() > first.claim + 2,
            };
            passed.then_some(())
        })
        .await;
        let second = engine.fetch(&fetch).await.unwrap().remove(0);
        assert_eq!((second.id, second.attempt), (id, first.attempt), "the same row in the same attempt");
        assert_ne!(second.claim, first.claim);
        assert_eq!(engine.ack("n1", &[release]).await.unwrap(), 0, "the repeat is refused");
        assert_eq!(db.job(id).await.state, JobState::Executing, "the newer claim is untouched");
        let done = Ack { id, attempt: second.attempt, claim: Some(second.claim), kind: AckKind::Complete };
        assert_eq!(engine.ack("n1", &[done]).await.unwrap(), 1);
        assert_eq!(db.job(id).await.state, JobState::Completed);
    }
}
