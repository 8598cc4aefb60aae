//! Transactional completion: a job fn that takes `tx: &mut JobTx` writes through the job's own
//! transaction, and its completion (with its result) is written and committed in it. Its writes
//! and its completion stay together or vanish together; a stale run's completion is refused.

use std::time::Duration;

use jobsmith::prelude::*;
use jobsmith::{JobState, JobTx, Registry, Transaction, WorkerEntry};

use super::harness::{Kind, TestDb};
use super::steps::Ran;

fn at_once(_attempt: u32) -> Duration {
    Duration::ZERO
}

/// The application's table: no unique constraint, so a write made twice shows as two rows.
async fn create_ledger(db: &TestDb) {
    db.exec("CREATE TABLE ledger (job_id BIGINT NOT NULL, attempt BIGINT NOT NULL, cents BIGINT NOT NULL)")
        .await;
}

/// One ledger row, written in `tx`.
pub(crate) async fn credit(tx: &mut Transaction, job: i64, attempt: u32, cents: i64) -> Result<(), String> {
    if let Some(conn) = tx.postgres() {
        sqlx::query("INSERT INTO ledger (job_id, attempt, cents) VALUES ($1, $2, $3)")
            .bind(job)
            .bind(i64::from(attempt))
            .bind(cents)
            .execute(conn)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(());
    }
    #[cfg(feature = "sqlite")]
    if let Some(conn) = tx.sqlite() {
        sqlx::query("INSERT INTO ledger (job_id, attempt, cents) VALUES (?1, ?2, ?3)")
            .bind(job)
            .bind(i64::from(attempt))
            .bind(cents)
            .execute(conn)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(());
    }
    Err("a transaction on an engine this test does not know".into())
}

/// Credits the ledger and queues a follow-up job, both in the job's transaction; records twice
/// the amount.
#[jobsmith::job(queue = "job_tx")]
pub async fn credit_ledger(ctx: JobContext, tx: &mut JobTx, cents: i64) -> Result<i64, String> {
    credit(tx, ctx.id, ctx.attempt, cents).await?;
    tx.insert(AfterCredit { cents }).await.map_err(|e| e.to_string())?;
    Ok(cents * 2)
}

/// Inserted by [`credit_ledger`] in its transaction; never run here.
#[jobsmith::job(queue = "job_tx_after")]
pub async fn after_credit(cents: i64) -> Result<(), String> {
    let _ = cents;
    Ok(())
}

/// Writes a ledger row in every attempt, and ends each of the first three without completing:
/// an error, a panic, a result over the runtime's size limit. The fourth completes.
#[jobsmith::job(queue = "job_tx", max_attempts = 5, backoff = at_once)]
pub async fn flaky_credit(ctx: JobContext, tx: &mut JobTx) -> Result<String, String> {
    credit(tx, ctx.id, ctx.attempt, 1).await?;
    match ctx.attempt {
        1 => Err("failed after writing".into()),
        2 => panic!("panicked after writing"),
        3 => Ok("x".repeat(200)),
        _ => Ok("paid".into()),
    }
}

/// Two steps in the job's transaction; the first attempt fails after the first step.
#[jobsmith::job(queue = "job_tx_steps", max_attempts = 3, backoff = at_once)]
pub async fn stepped_credit(ctx: JobContext, tx: &mut JobTx, State(ran): State<Ran>) -> Result<i64, String> {
    let (id, attempt) = (ctx.id, ctx.attempt);
    let counted = ran.clone();
    let a: i64 = tx
        .step("a", move |tx| {
            Box::pin(async move {
                counted.count("a");
                credit(tx, id, attempt, 10).await?;
                Ok::<_, String>(10)
            })
        })
        .await
        .map_err(|e| e.to_string())?;
    if attempt == 1 {
        return Err("failed after step a".into());
    }
    let counted = ran.clone();
    let b: i64 = tx
        .step("b", move |tx| {
            Box::pin(async move {
                counted.count("b");
                credit(tx, id, attempt, 20).await?;
                Ok::<_, String>(20)
            })
        })
        .await
        .map_err(|e| e.to_string())?;
    // Recorded by this very transaction: it comes back without running.
    let again: i64 = tx
        .step("a", |_| Box::pin(async { Err::<i64, _>("step a ran twice in one attempt".to_string()) }))
        .await
        .map_err(|e| e.to_string())?;
    Ok(a + b + again)
}

async fn ledger(db: &TestDb, what: &str) -> i64 {
    db.scalar(&format!("SELECT {what} FROM ledger")).await
}

fn results_table(db: &TestDb) -> &'static str {
    match db.kind {
        Kind::Postgres => "jobsmith.results",
        Kind::Sqlite => "jobsmith_results",
    }
}

conformance! {
    /// The job's writes, a job it inserted, its completion and its result commit together.
    async fn a_jobs_writes_commit_with_its_completion_and_result(db) {
        create_ledger(&db).await;
        let registry = Registry::from_entries([WorkerEntry::of::<CreditLedger>()]).unwrap();
        let rt = db.runtime().registry(registry).queue("job_tx", 2).start().await.unwrap();
        let id = db.insert(CreditLedger { cents: 250 }).await.unwrap().job.id;
        db.wait_job(id, JobState::Completed).await;
        rt.shutdown().await.unwrap();
        assert_eq!(ledger(&db, "count(*)").await, 1);
        assert_eq!(ledger(&db, "max(job_id)").await, id);
        assert_eq!(db.result::<CreditLedger>(id).await.unwrap(), Some(500));
        let after = db.scalar("SELECT count(*) FROM {jobs} WHERE queue = 'job_tx_after'").await;
        assert_eq!(after, 1, "the job inserted in the job's transaction");
        // The runtime wrote nothing more: the one completion, no error entry.
        assert_eq!(db.job(id).await.errors.len(), 0);
    }
}

conformance! {
    /// An attempt that fails, panics or hands back a result over the size limit rolls its
    /// writes back: the ledger holds the one row of the attempt that completed.
    async fn an_attempt_that_does_not_complete_leaves_none_of_its_writes(db) {
        create_ledger(&db).await;
        let registry = Registry::from_entries([WorkerEntry::of::<FlakyCredit>()]).unwrap();
        let rt = db
            .runtime()
            .registry(registry)
            .queue("job_tx", 1)
            .max_result_bytes(64)
            .start()
            .await
            .unwrap();
        let id = db.insert(FlakyCredit {}).await.unwrap().job.id;
        let job = db.wait_job(id, JobState::Completed).await;
        rt.shutdown().await.unwrap();
        assert_eq!(job.attempt, 4);
        assert_eq!(ledger(&db, "count(*)").await, 1, "one row: the completing attempt's");
        assert_eq!(ledger(&db, "max(attempt)").await, 4);
        assert_eq!(db.result::<FlakyCredit>(id).await.unwrap().as_deref(), Some("paid"));
        let errors: Vec<String> = job.errors.iter().map(|e| e["error"].as_str().unwrap_or_default().to_string()).collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("failed after writing"), "{errors:?}");
        assert!(errors[1].contains("panicked after writing"), "{errors:?}");
        assert!(errors[2].contains("over the limit of 64 bytes"), "{errors:?}");
    }
}

conformance! {
    /// Steps recorded in the job's transaction vanish with its rollback: the next attempt runs
    /// them again, and each step's writes are there once.
    async fn steps_in_the_jobs_transaction_commit_with_it(db) {
        create_ledger(&db).await;
        let ran = Ran::default();
        let registry = Registry::from_entries([WorkerEntry::of::<SteppedCredit>()]).unwrap();
        let rt = db.runtime().registry(registry).queue("job_tx_steps", 1).state(ran.clone()).start().await.unwrap();
        let id = db.insert(SteppedCredit {}).await.unwrap().job.id;
        let job = db.wait_job(id, JobState::Completed).await;
        rt.shutdown().await.unwrap();
        assert_eq!(job.attempt, 2);
        assert_eq!(db.result::<SteppedCredit>(id).await.unwrap(), Some(40));
        // Step a ran in both attempts, but the first attempt's run was rolled back with it.
        assert_eq!((ran.times("a"), ran.times("b")), (2, 1));
        assert_eq!(ledger(&db, "count(*)").await, 2);
        assert_eq!(ledger(&db, "CAST(sum(cents) AS BIGINT)").await, 30);
        assert_eq!(ledger(&db, "min(attempt)").await, 2);
        let steps = match db.kind {
            Kind::Postgres => "SELECT count(*) FROM jobsmith.steps",
            Kind::Sqlite => "SELECT count(*) FROM jobsmith_steps",
        };
        assert_eq!(db.scalar(steps).await, 2);
    }
}

conformance! {
    /// The completion in a job's transaction is guarded like the batched acks: another node,
    /// another attempt or another claim is refused (and the caller rolls back, its writes with
    /// it); the run that holds the job completes it and records its result, once.
    async fn a_stale_runs_transaction_cannot_complete_the_job(db) {
        create_ledger(&db).await;
        let fetched = crate::runtime::queued_and_claimed(&db, 1).await;
        let job = &fetched[0];
        let output = serde_json::json!(7);
        let done = |node, attempt, claim, output| jobsmith::engine::TxCompletion { node, job: job.id, attempt, claim, output };
        let stale = [
            ("another node", done("n2", job.attempt, job.claim, None)),
            ("another attempt", done("n1", job.attempt + 1, job.claim, None)),
            ("another claim", done("n1", job.attempt, job.claim + 1, Some(&output))),
        ];
        for (why, completion) in stale {
            let mut tx = db.begin().await.unwrap();
            credit(&mut tx, job.id, job.attempt, 1).await.unwrap();
            assert!(!db.engine().complete_in_tx(&mut tx, &completion).await.unwrap(), "{why}");
            tx.rollback().await.unwrap();
        }
        assert_eq!(ledger(&db, "count(*)").await, 0);
        assert_eq!(db.job(job.id).await.state, JobState::Executing);
        assert_eq!(db.scalar(&format!("SELECT count(*) FROM {}", results_table(&db))).await, 0);

        let mut tx = db.begin().await.unwrap();
        credit(&mut tx, job.id, job.attempt, 1).await.unwrap();
        let holder = done("n1", job.attempt, job.claim, Some(&output));
        assert!(db.engine().complete_in_tx(&mut tx, &holder).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(db.job(job.id).await.state, JobState::Completed);
        assert_eq!(ledger(&db, "count(*)").await, 1);
        let value = match db.kind {
            Kind::Postgres => "SELECT (output #>> '{}')::bigint FROM jobsmith.results",
            Kind::Sqlite => "SELECT CAST(output AS INTEGER) FROM jobsmith_results",
        };
        assert_eq!(db.scalar(value).await, 7);

        // The same completion again (a run whose commit's answer was lost, say) finds the job
        // completed already.
        let mut tx = db.begin().await.unwrap();
        assert!(!db.engine().complete_in_tx(&mut tx, &holder).await.unwrap());
        tx.rollback().await.unwrap();
    }
}

conformance! {
    /// The testing helpers: `drain_queue` runs a transactional job through its database;
    /// `perform_job`, which has none, says why it cannot.
    async fn the_testing_helpers_run_a_transactional_job_through_a_database(db) {
        create_ledger(&db).await;
        let id = db.insert(CreditLedger { cents: 5 }).await.unwrap().job.id;
        let report = jobsmith::testing::drain_queue(&db, "job_tx", Default::default()).await.unwrap();
        assert_eq!(report.completed, 1);
        assert_eq!(db.job(id).await.state, JobState::Completed);
        assert_eq!(db.result::<CreditLedger>(id).await.unwrap(), Some(10));
        assert_eq!(ledger(&db, "count(*)").await, 1);
        match jobsmith::testing::perform_job(CreditLedger { cents: 5 }).await {
            jobsmith::testing::Performed::Retry { error, .. } | jobsmith::testing::Performed::Discarded { error } => {
                assert!(error.contains("takes a transaction"), "{error}")
            }
            other => panic!("perform_job ran a transactional job without a database: {other:?}"),
        }
    }
}

/// Where [`held_credit`] stops: it says it wrote, then waits to be let go.
#[derive(Clone, Default)]
pub struct Gate(std::sync::Arc<(tokio::sync::Notify, tokio::sync::Notify)>);

/// Writes a ledger row in its transaction, then waits at the gate before completing.
#[jobsmith::job(queue = "job_tx_held")]
pub async fn held_credit(ctx: JobContext, tx: &mut JobTx, State(gate): State<Gate>) -> Result<(), String> {
    credit(tx, ctx.id, ctx.attempt, 1).await?;
    gate.0.0.notify_one();
    gate.0.1.notified().await;
    Ok(())
}

/// The stale run at its worst moment, on PostgreSQL: the job's row is taken from the run while
/// its transaction is open (as a rescue and another node's claim would leave it), then the run
/// completes. Its completion is refused, its write rolls back, and it writes nothing to the row.
/// (On SQLite the open transaction holds the database's write lock, so nothing can take the row
/// meanwhile: the guard there is covered by `a_stale_runs_transaction_cannot_complete_the_job`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_job_was_taken_while_its_transaction_was_open_rolls_back() {
    let db = TestDb::new(Kind::Postgres).await;
    create_ledger(&db).await;
    let gate = Gate::default();
    let registry = || Registry::from_entries([WorkerEntry::of::<HeldCredit>()]).unwrap();
    let rt =
        db.runtime().registry(registry()).queue("job_tx_held", 1).state(gate.clone()).start().await.unwrap();
    let id = db.insert(HeldCredit {}).await.unwrap().job.id;
    tokio::time::timeout(super::harness::LONG, gate.0.0.notified()).await.expect("the job to write");
    db.exec(&format!("UPDATE {{jobs}} SET attempted_by = 'elsewhere' WHERE id = {id}")).await;
    gate.0.1.notify_one();
    // Shutdown waits for the run and writes what it has to write.
    rt.shutdown().await.unwrap();
    assert_eq!(ledger(&db, "count(*)").await, 0, "the stale run's write rolled back");
    let row = db.job(id).await;
    assert_eq!(
        (row.state, row.attempt, row.errors.len()),
        (JobState::Executing, 1, 0),
        "the row is the other run's"
    );
    assert_eq!(row.attempted_by.as_deref(), Some("elsewhere"));

    // The run that holds the job now (here: this process again, after the row came back as a
    // rescue leaves it) completes it, and its write is the one that stays.
    db.exec(&format!("UPDATE {{jobs}} SET state = 'available', attempted_by = NULL WHERE id = {id}")).await;
    gate.0.1.notify_one();
    let rt =
        db.runtime().registry(registry()).queue("job_tx_held", 1).state(gate.clone()).start().await.unwrap();
    db.wait_job(id, JobState::Completed).await;
    rt.shutdown().await.unwrap();
    assert_eq!(ledger(&db, "count(*)").await, 1);
    assert_eq!(ledger(&db, "max(attempt)").await, 2);
}
