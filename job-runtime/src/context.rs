//! The job context: what a running job knows about itself.

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::app_state::{StateValue, States};

/// Passed as the optional first parameter of a `#[job]` fn.
///
/// The cancellation token fires when the job times out, is cancelled by id, or the node shuts
/// down past its grace period. The job then has one more second to notice it (a `select!` on
/// [`JobContext::cancelled`], or checking [`JobContext::is_cancelled`]) and stop by itself; after
/// that its future is dropped either way. What it returns after the token fired does not change
/// the outcome (cancelled, handed back, or timed out).
///
/// ```
/// use jobsmith::JobContext;
/// let ctx = JobContext::for_tests();
/// assert_eq!(ctx.attempt, 1);
/// assert!(!ctx.is_cancelled());
/// ```
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The job's row id.
    pub id: i64,
    /// This attempt's number, starting at 1.
    pub attempt: u32,
    /// The attempts the job may use before it is discarded.
    pub max_attempts: u32,
    /// The queue the job runs on.
    pub queue: String,
    /// The stored worker name.
    pub worker: String,
    /// When the job was inserted.
    pub inserted_at: DateTime<Utc>,
    /// When the job was due to run.
    pub scheduled_at: DateTime<Utc>,
    /// The job's free-form metadata.
    pub meta: serde_json::Value,
    /// The job's tags.
    pub tags: Vec<String>,
    cancel: CancellationToken,
    states: States,
    /// How this run reaches its database (see `run_link`); `None` outside a runtime.
    link: Option<std::sync::Arc<crate::run_link::RunLink>>,
}

impl JobContext {
    /// Builds a context; the runtime (and the testing helpers) use this.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: i64,
        attempt: u32,
        max_attempts: u32,
        queue: String,
        worker: String,
        inserted_at: DateTime<Utc>,
        scheduled_at: DateTime<Utc>,
        meta: serde_json::Value,
        tags: Vec<String>,
        cancel: CancellationToken,
        states: States,
    ) -> Self {
        Self {
            id,
            attempt,
            max_attempts,
            queue,
            worker,
            inserted_at,
            scheduled_at,
            meta,
            tags,
            cancel,
            states,
            link: None,
        }
    }

    /// This context linked to its database through `link` (the runtime's engine, node, claim).
    pub(crate) fn with_link(mut self, link: Option<std::sync::Arc<crate::run_link::RunLink>>) -> Self {
        self.link = link;
        self
    }

    /// How this run reaches its database, if it runs through one.
    pub(crate) fn link(&self) -> Option<&std::sync::Arc<crate::run_link::RunLink>> {
        self.link.as_ref()
    }

    /// Runs step `name` of this job once: if an earlier attempt of the job recorded the step's
    /// value, that value comes back and `work` is not run; otherwise `work` runs and, when it
    /// succeeds, its value is recorded before it is returned. A failed `work` records nothing
    /// (the next attempt runs it again). Names are per job; give each step its own.
    ///
    /// Outside a runtime (a context from [`JobContext::for_tests`], `perform_job`), nothing is
    /// recorded and every step runs.
    ///
    /// ```
    /// # use jobsmith::JobContext;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = JobContext::for_tests();
    /// let charged: u64 = ctx.step("charge", async { Ok::<_, String>(1250) }).await.unwrap();
    /// assert_eq!(charged, 1250);
    /// # }
    /// ```
    pub async fn step<T, E, Fut>(&self, name: &str, work: Fut) -> Result<T, crate::steps::StepError<E>>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        crate::steps::run(self.link.as_deref(), self.id, self.attempt, name, work).await
    }

    /// This context with `states` (the runtime's, or a testing helper's): for calling a job fn
    /// directly in a unit test whose code reads state through [`JobContext::state`].
    pub fn with_states(mut self, states: States) -> Self {
        self.states = states;
        self
    }

    /// A clone of the runtime's state of type `T`, as a `State<T>` parameter gets it; None when
    /// the runtime was given none of that type.
    ///
    /// ```
    /// use jobsmith::{JobContext, States};
    /// let ctx = JobContext::for_tests().with_states(States::new().with(3u16));
    /// assert_eq!(ctx.state::<u16>(), Some(3));
    /// ```
    pub fn state<T: StateValue>(&self) -> Option<T> {
        self.states.get::<T>()
    }

    /// A context for calling a job fn directly in a unit test: id 0, attempt 1 of 1, queue
    /// `default`, empty meta, a token that never fires unless you cancel it.
    pub fn for_tests() -> Self {
        let now = Utc::now();
        Self::new(
            0,
            1,
            1,
            "default".into(),
            "test".into(),
            now,
            now,
            serde_json::Value::Object(Default::default()),
            Vec::new(),
            CancellationToken::new(),
            States::new(),
        )
    }

    /// The token that fires on timeout, cancellation or shutdown.
    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Whether the token has fired.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when the token fires.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }
}
