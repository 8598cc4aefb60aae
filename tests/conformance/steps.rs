//! Resumable steps: `ctx.step(name, work)` records each finished step's value, and a later
//! attempt of the job gets it back without doing the work again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobsmith::prelude::*;
use jobsmith::{JobState, Registry, StepError, WorkerEntry};

use super::harness::TestDb;

/// How often each step's work ran, shared by the test and the job.
#[derive(Clone, Default)]
pub struct Ran(Arc<Mutex<HashMap<String, u32>>>);

impl Ran {
    pub(crate) fn count(&self, step: &str) {
        *self.0.lock().unwrap().entry(step.to_string()).or_default() += 1;
    }
    pub(crate) fn times(&self, step: &str) -> u32 {
        self.0.lock().unwrap().get(step).copied().unwrap_or(0)
    }
}

fn at_once(_attempt: u32) -> Duration {
    Duration::ZERO
}

/// Three steps; the first attempt fails after the second.
#[jobsmith::job(queue = "steps", max_attempts = 3, backoff = at_once)]
pub async fn three_steps(ctx: JobContext, State(ran): State<Ran>, base: i64) -> Result<i64, String> {
    let one: i64 = ctx
        .step("one", async {
            ran.count("one");
            Ok::<_, String>(base + 1)
        })
        .await
        .map_err(|e| e.to_string())?;
    let two: i64 = ctx
        .step("two", async {
            ran.count("two");
            Ok::<_, String>(base + 2)
        })
        .await
        .map_err(|e| e.to_string())?;
    if ctx.attempt == 1 {
        return Err("failed after the second step".into());
    }
    let three: i64 = ctx
        .step("three", async {
            ran.count("three");
            Ok::<_, String>(base + 3)
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(one + two + three)
}

/// A step whose work fails records nothing: it runs again.
#[jobsmith::job(queue = "steps", max_attempts = 3, backoff = at_once)]
pub async fn flaky_step(ctx: JobContext, State(ran): State<Ran>) -> Result<u32, String> {
    let attempt = ctx.attempt;
    let value = ctx
        .step("flaky", async {
            ran.count("flaky");
            if attempt == 1 { Err("not yet".to_string()) } else { Ok(attempt) }
        })
        .await;
    match value {
        Ok(v) => Ok(v),
        Err(StepError::Work(e)) => Err(e),
        Err(StepError::Record(e)) => Err(format!("record: {e}")),
    }
}

async fn steps_rows(db: &TestDb) -> i64 {
    db.scalar(match db.kind {
        super::harness::Kind::Postgres => "SELECT count(*) FROM jobsmith.steps",
        super::harness::Kind::Sqlite => "SELECT count(*) FROM jobsmith_steps",
    })
    .await
}

conformance! {
    /// A job of three steps that fails after the second on its first attempt: the second
    /// attempt runs only the third, and the first two ran exactly once.
    async fn a_later_attempt_skips_the_steps_an_earlier_one_finished(db) {
        let ran = Ran::default();
        let registry = Registry::from_entries([WorkerEntry::of::<ThreeSteps>(), WorkerEntry::of::<FlakyStep>()]).unwrap();
        let rt = db.runtime().registry(registry).queue("steps", 2).state(ran.clone()).start().await.unwrap();
        let id = db.insert(ThreeSteps { base: 10 }).await.unwrap().job.id;
        let flaky = db.insert(FlakyStep {}).await.unwrap().job.id;
        let job = db.wait_job(id, JobState::Completed).await;
        db.wait_job(flaky, JobState::Completed).await;
        rt.shutdown().await.unwrap();
        assert_eq!(job.attempt, 2);
        assert_eq!(db.result::<ThreeSteps>(id).await.unwrap(), Some(11 + 12 + 13));
        assert_eq!((ran.times("one"), ran.times("two"), ran.times("three")), (1, 1, 1));
        // A failed step's work is not recorded: it ran again, and its second value stayed.
        assert_eq!(ran.times("flaky"), 2);
        assert_eq!(db.result::<FlakyStep>(flaky).await.unwrap(), Some(2));
        assert_eq!(steps_rows(&db).await, 4);
    }
}

conformance! {
    /// A step of a stale run (another attempt, another node) is not recorded; steps go with
    /// their job.
    async fn a_stale_runs_step_is_not_kept_and_steps_go_with_their_job(db) {
        let fetched = crate::runtime::queued_and_claimed(&db, 1).await;
        let job = &fetched[0];
        let output = serde_json::json!(5);
        let step = |node, attempt| jobsmith::engine::StepRecord { node, job: job.id, attempt, name: "s", output: &output };
        assert!(!db.engine().record_step(&step("n1", job.attempt + 1)).await.unwrap(), "another attempt");
        assert!(!db.engine().record_step(&step("n2", job.attempt)).await.unwrap(), "another node");
        assert_eq!(db.engine().step_output(job.id, "s").await.unwrap(), None);
        assert!(db.engine().record_step(&step("n1", job.attempt)).await.unwrap());
        assert_eq!(db.engine().step_output(job.id, "s").await.unwrap(), Some(serde_json::json!(5)));
        db.exec(&format!("DELETE FROM {{jobs}} WHERE id = {}", job.id)).await;
        assert_eq!(steps_rows(&db).await, 0);
    }
}
