//! Typed state: `State<T>` parameters filled from `RuntimeBuilder::state` (ADR 17), per runtime,
//! checked at `start()`, and given the same way to the testing helpers.
//!
//! The jobs here live on queues of their own (`stateful`, `stateful-other`): a runtime refuses to
//! start when a job of a queue it runs takes state it was not given, so the other tests' runtimes
//! (which run `default` and friends) must not see these.

use std::sync::{Arc, Mutex};

use jobsmith::prelude::*;
use jobsmith::testing::{self, Drain, Performed};
use jobsmith::{Error, JobState, States};

/// Where a job writes what it saw: shared by the test and, as state, by the jobs.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

/// Which runtime's state a job got.
#[derive(Clone)]
pub struct Label(pub String);

#[jobsmith::job(queue = "stateful")]
pub async fn note_state(
    ctx: JobContext,
    State(seen): State<Seen>,
    n: i64,
    label: State<Label>,
) -> Result<(), String> {
    seen.0.lock().unwrap().push(format!("{} {n} attempt {}", label.0.0, ctx.attempt));
    Ok(())
}

/// A job of another queue that takes state no runtime in these tests gives.
#[derive(Clone)]
pub struct NeverGiven;

#[jobsmith::job(queue = "stateful-other", max_attempts = 3)]
pub async fn needs_never_given(_never: State<NeverGiven>) -> Result<(), String> {
    Ok(())
}

conformance! {
    /// Two state types and an arg between them, in the fn's order; the struct has the arg only.
    async fn a_job_gets_each_state_its_fn_takes_from_its_runtime(db) {
        let seen = Seen::default();
        db.insert(NoteState { n: 7 }).await.unwrap();
        let rt = db.runtime().queue("stateful", 2).state(seen.clone()).state(Label("first".into())).start().await.unwrap();
        db.wait_state_count(JobState::Completed, 1).await;
        rt.shutdown().await.unwrap();
        assert_eq!(seen.lines(), ["first 7 attempt 1"]);
        assert_eq!(serde_json::to_value(NoteState { n: 7 }).unwrap(), serde_json::json!({"n": 7}), "state is not an arg");
    }
}

conformance! {
    /// State belongs to a runtime, not to the process: two runtimes at once, each on its own
    /// queue, give the same job type different values.
    async fn two_runtimes_give_the_same_job_different_state(db) {
        let (a, b) = (Seen::default(), Seen::default());
        db.insert(NoteState { n: 1 }.on_queue("stateful")).await.unwrap();
        db.insert(NoteState { n: 2 }.on_queue("stateful-b")).await.unwrap();
        let first = db.runtime().queue("stateful", 1).state(a.clone()).state(Label("a".into())).start().await.unwrap();
        let second = db.runtime().queue("stateful-b", 1).state(b.clone()).state(Label("b".into())).start().await.unwrap();
        db.wait_state_count(JobState::Completed, 2).await;
        first.shutdown().await.unwrap();
        second.shutdown().await.unwrap();
        assert_eq!((a.lines(), b.lines()), (vec!["a 1 attempt 1".to_string()], vec!["b 2 attempt 1".to_string()]));
    }
}

conformance! {
    /// A runtime without a state its jobs take does not start, and says which job needs which
    /// type; nothing ran meanwhile.
    async fn start_fails_naming_every_job_and_state_type_nobody_gave(db) {
        let id = db.insert(NoteState { n: 3 }).await.unwrap().job.id;
        let Err(err) = db.runtime().queue("stateful", 1).state(Seen::default()).start().await else { panic!("started") };
        let Error::MissingState(lines) = &err else { panic!("{err}") };
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("NoteState") && lines[0].contains("state::Label"), "{lines:?}");
        assert!(err.to_string().contains("RuntimeBuilder::state"), "{err}");

        let Err(err) = db.runtime().queue("stateful", 1).queue("stateful-other", 1).start().await else { panic!("started") };
        let Error::MissingState(lines) = &err else { panic!("{err}") };
        assert_eq!(lines.len(), 3, "two types of one job and one of another: {lines:?}");
        assert!(lines.iter().any(|l| l.contains("NeedsNeverGiven") && l.contains("NeverGiven")), "{lines:?}");
        assert_eq!(db.job(id).await.state, JobState::Available, "nothing ran");
    }
}

conformance! {
    /// A job of a queue the runtime does not run by declaration, inserted into one it runs,
    /// cannot be checked at start; without its state it is retried, saying which type.
    async fn a_job_without_its_state_on_another_queue_is_retried_naming_the_type(db) {
        let id = db.insert(NeedsNeverGiven {}.on_queue("stateful")).await.unwrap().job.id;
        let rt = db.runtime().queue("stateful", 1).state(Seen::default()).state(Label("x".into())).start().await.unwrap();
        db.wait_state_count(JobState::Retryable, 1).await;
        rt.shutdown().await.unwrap();
        let row = db.job(id).await;
        let error = row.errors.last().map(|e| e["error"].to_string()).unwrap_or_default();
        assert!(error.contains("NeverGiven") && error.contains("RuntimeBuilder::state"), "{error}");
    }
}

conformance! {
    /// The testing helpers take state the same way: `perform_job_with`, `drain_queue_with` and
    /// inline mode through `inline_with`.
    async fn the_testing_helpers_take_state(db) {
        let seen = Seen::default();
        let states = States::new().with(seen.clone()).with(Label("helper".into()));
        assert_eq!(testing::perform_job_with(NoteState { n: 1 }, &states).await, Performed::Completed);
        assert!(
            matches!(testing::perform_job(NoteState { n: 9 }).await, Performed::Retry { error, .. } if error.contains("Seen")),
            "without state: a retry naming the type"
        );

        db.insert(NoteState { n: 2 }).await.unwrap();
        let report = testing::drain_queue_with(&db, "stateful", Drain::default(), &states).await.unwrap();
        assert_eq!(report.completed, 1);

        let inline = testing::inline_with(&db, states.clone());
        inline.insert(NoteState { n: 3 }).await.unwrap();
        assert_eq!(seen.lines(), ["helper 1 attempt 1", "helper 2 attempt 1", "helper 3 attempt 1"]);
    }
}

/// The fn stays callable directly, with its state and args, for unit tests.
#[tokio::test]
async fn the_job_fn_is_callable_directly_with_its_state() {
    let seen = Seen::default();
    note_state(JobContext::for_tests(), State(seen.clone()), 5, State(Label("direct".into()))).await.unwrap();
    assert_eq!(seen.lines(), ["direct 5 attempt 1"]);
}
