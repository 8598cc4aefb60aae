//! Recorded results: a job fn returning `Result<T, E>` (or `Outcome::CompleteWith`) records `T`
//! with its completion, read back typed by `db.result::<J>(id)`; size-limited; written only with
//! a completion that went through; gone with its job.
//!
//! The jobs run on queues of their own (`results-*`).

use std::time::Duration;

use jobsmith::engine::{Ack, AckKind};
use jobsmith::{JobState, Outcome, Registry, Retention, WorkerEntry};
use serde::{Deserialize, Serialize};

use super::harness::TestDb;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Total {
    pub sum: i64,
    pub terms: Vec<i64>,
}

#[jobsmith::job(queue = "results-sum")]
pub async fn sum(terms: Vec<i64>) -> Result<Total, String> {
    Ok(Total { sum: terms.iter().sum(), terms })
}

/// Records a result only for even months; discards the others.
#[jobsmith::job(queue = "results-sum")]
pub async fn monthly(month: u32) -> Result<Outcome<String>, String> {
    if month.is_multiple_of(2) {
        Ok(Outcome::CompleteWith(format!("report {month}")))
    } else {
        Ok(Outcome::Discard("odd".into()))
    }
}

/// Hands back a result as large as asked.
#[jobsmith::job(queue = "results-big", max_attempts = 1)]
pub async fn big(bytes: usize) -> Result<String, String> {
    Ok("x".repeat(bytes))
}

/// Hands back a string with a NUL character, which no engine may store.
#[jobsmith::job(queue = "results-big", max_attempts = 1)]
pub async fn nul_result() -> Result<String, String> {
    Ok("before\0after".into())
}

#[jobsmith::job(queue = "results-sum")]
pub async fn nothing(n: i64) -> Result<(), String> {
    let _ = n;
    Ok(())
}

async fn run_queue(
    db: &TestDb,
    queue: &str,
    entries: Vec<WorkerEntry>,
    done: i64,
    max_result_bytes: Option<usize>,
) {
    let registry = Registry::from_entries(entries).unwrap();
    let mut builder = db.runtime().registry(registry).queue(queue, 4);
    if let Some(limit) = max_result_bytes {
        builder = builder.max_result_bytes(limit);
    }
    let rt = builder.start().await.unwrap();
    super::harness::wait_for(&format!("{done} jobs to finish"), super::harness::LONG, || async {
        let finished = db.count_state(JobState::Completed).await
            + db.count_state(JobState::Discarded).await
            + db.count_state(JobState::Cancelled).await;
        (finished >= done).then_some(())
    })
    .await;
    rt.shutdown().await.unwrap();
}

async fn results_rows(db: &TestDb) -> i64 {
    db.scalar(&match db.kind {
        super::harness::Kind::Postgres => "SELECT count(*) FROM jobsmith.results".to_string(),
        super::harness::Kind::Sqlite => "SELECT count(*) FROM jobsmith_results".to_string(),
    })
    .await
}

conformance! {
    /// Results round-trip typed; `Outcome::CompleteWith` records, other endings and `()` do not.
    async fn a_job_that_returns_a_value_records_it_typed(db) {
        let sum = db.insert(Sum { terms: vec![1, 2, 39] }).await.unwrap().job.id;
        let even = db.insert(Monthly { month: 4 }).await.unwrap().job.id;
        let odd = db.insert(Monthly { month: 5 }).await.unwrap().job.id;
        let unit = db.insert(Nothing { n: 1 }).await.unwrap().job.id;
        assert_eq!(db.result::<Sum>(sum).await.unwrap(), None, "not run yet");
        let entries = vec![WorkerEntry::of::<Sum>(), WorkerEntry::of::<Monthly>(), WorkerEntry::of::<Nothing>()];
        run_queue(&db, "results-sum", entries, 4, None).await;
        assert_eq!(db.result::<Sum>(sum).await.unwrap(), Some(Total { sum: 42, terms: vec![1, 2, 39] }));
        assert_eq!(db.result::<Monthly>(even).await.unwrap().as_deref(), Some("report 4"));
        assert_eq!(db.job(odd).await.state, JobState::Discarded);
        assert_eq!(db.result::<Monthly>(odd).await.unwrap(), None);
        assert_eq!(db.job(unit).await.state, JobState::Completed);
        assert_eq!(db.result::<Nothing>(unit).await.unwrap(), None);
        assert_eq!(results_rows(&db).await, 2);
        // Read as another type: a clear error, not a wrong value.
        let err = db.result::<Monthly>(sum).await.unwrap_err();
        assert!(err.to_string().contains("does not decode"), "{err}");
    }
}

conformance! {
    /// A result over the limit fails the attempt with an error that says so, and records nothing.
    async fn a_result_over_the_limit_fails_the_attempt_saying_so(db) {
        let small = db.insert(Big { bytes: 10 }).await.unwrap().job.id;
        let large = db.insert(Big { bytes: 500 }).await.unwrap().job.id;
        let nul = db.insert(NulResult {}).await.unwrap().job.id;
        run_queue(&db, "results-big", vec![WorkerEntry::of::<Big>(), WorkerEntry::of::<NulResult>()], 3, Some(200)).await;
        let refused = db.job(nul).await;
        assert_eq!(refused.state, JobState::Discarded);
        assert!(refused.errors.last().unwrap()["error"].as_str().unwrap().contains("NUL character"), "{:?}", refused.errors);
        assert_eq!(db.result::<Big>(small).await.unwrap().map(|s| s.len()), Some(10));
        let job = db.job(large).await;
        assert_eq!(job.state, JobState::Discarded, "one attempt allowed");
        let error = job.errors.last().unwrap()["error"].as_str().unwrap().to_string();
        assert!(error.contains("502 bytes encoded, over the limit of 200 bytes"), "{error}");
        assert_eq!(db.result::<Big>(large).await.unwrap(), None);
    }
}

conformance! {
    /// A result is written with its completion or not at all: a stale run's (wrong attempt, or
    /// another node) is refused with the completion.
    async fn a_result_is_written_only_with_a_completion_that_went_through(db) {
        let fetched = crate::runtime::queued_and_claimed(&db, 3).await;
        let record = |text: &str| AckKind::Record { output: serde_json::json!(text) };
        let stale = Ack { id: fetched[0].id, attempt: fetched[0].attempt + 1, claim: Some(fetched[0].claim), kind: record("stale") };
        assert_eq!(db.engine().ack("n1", &[stale]).await.unwrap(), 0);
        let elsewhere = Ack { id: fetched[0].id, attempt: fetched[0].attempt, claim: Some(fetched[0].claim), kind: record("elsewhere") };
        assert_eq!(db.engine().ack("n2", &[elsewhere]).await.unwrap(), 0);
        assert_eq!(db.engine().get_result(fetched[0].id).await.unwrap(), None);
        assert_eq!(db.job(fetched[0].id).await.state, JobState::Executing);
        // The real ones, two results in one batch beside a plain completion: each row gets its own.
        let acks = [
            Ack { id: fetched[0].id, attempt: fetched[0].attempt, claim: Some(fetched[0].claim), kind: record("done") },
            Ack { id: fetched[1].id, attempt: fetched[1].attempt, claim: Some(fetched[1].claim), kind: AckKind::Complete },
            Ack { id: fetched[2].id, attempt: fetched[2].attempt, claim: Some(fetched[2].claim), kind: record("also") },
        ];
        assert_eq!(db.engine().ack("n1", &acks).await.unwrap(), 3);
        assert_eq!(db.engine().get_result(fetched[0].id).await.unwrap(), Some(serde_json::json!("done")));
        assert_eq!(db.engine().get_result(fetched[1].id).await.unwrap(), None);
        assert_eq!(db.engine().get_result(fetched[2].id).await.unwrap(), Some(serde_json::json!("also")));
        assert_eq!(db.job(fetched[0].id).await.state, JobState::Completed);
    }
}

conformance! {
    /// Pruning and deleting a job take its result with it.
    async fn a_result_goes_with_its_job(db) {
        let ids: Vec<i64> = vec![
            db.insert(Sum { terms: vec![1] }).await.unwrap().job.id,
            db.insert(Sum { terms: vec![2] }).await.unwrap().job.id,
        ];
        run_queue(&db, "results-sum", vec![WorkerEntry::of::<Sum>()], 2, None).await;
        assert_eq!(results_rows(&db).await, 2);
        assert_eq!(Sum::query().id(ids[0]).states([JobState::Completed]).delete(&*db).await.unwrap(), 1);
        assert_eq!(results_rows(&db).await, 1, "deleted with its job");
        // Finished an hour ago, so no clock tick decides whether zero retention prunes it.
        db.exec(&format!("UPDATE {{jobs}} SET completed_at = {} WHERE id = {}", match db.kind {
            crate::harness::Kind::Postgres => "now() - interval '1 hour'",
            crate::harness::Kind::Sqlite => "completed_at - 3600000",
        }, ids[1])).await;
        let keep_none = Retention { completed: Duration::ZERO, cancelled: Duration::ZERO, discarded: Duration::ZERO };
        assert_eq!(db.engine().prune(&keep_none, 100).await.unwrap(), 1);
        assert_eq!(results_rows(&db).await, 0, "pruned with its job");
        assert_eq!(db.result::<Sum>(ids[1]).await.unwrap(), None);
    }
}
