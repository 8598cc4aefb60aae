//! Application state for jobs: what a job fn takes as `State<T>` and a runtime provides with
//! [`crate::RuntimeBuilder::state`] (ADR 17).
//!
//! State belongs to one runtime (and to one call of a testing helper), never to the process: two
//! runtimes in one binary can give the same job different pools. Each job that takes state says
//! which types in its registration ([`StateNeed`]), so a runtime finds what is missing at
//! `start()`, before any job runs.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A job fn parameter that the runtime fills from the state it was given, instead of an arg
/// stored with the job. `T` is any `Clone + Send + Sync + 'static` type, usually a struct of
/// pools and clients (cheap to clone: they are handles). Each job gets its own clone.
///
/// ```
/// use jobsmith::{State, States};
///
/// #[derive(Clone)]
/// struct Mailer { from: String }
///
/// #[jobsmith::job(queue = "mailers")]
/// async fn welcome(State(mailer): State<Mailer>, user_id: i64) -> Result<(), String> {
///     assert_eq!(mailer.from, "clinic@example.com");
///     let _ = user_id;
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // The job struct holds the args only; the state comes from the runtime or, here, the helper.
/// let states = States::new().with(Mailer { from: "clinic@example.com".into() });
/// let performed = jobsmith::testing::perform_job_with(Welcome { user_id: 7 }, &states).await;
/// assert_eq!(performed, jobsmith::testing::Performed::Completed);
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct State<T>(pub T);

impl<T> std::ops::Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for State<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// The state values of one runtime (or one testing call), one per type.
///
/// ```
/// use jobsmith::States;
/// let states = States::new().with(5u32).with(String::from("pool"));
/// assert_eq!(states.get::<u32>(), Some(5));
/// assert_eq!(states.get::<i64>(), None);
/// ```
#[derive(Clone, Default)]
pub struct States {
    values: Arc<HashMap<TypeId, Entry>>,
}

/// One value and its type's name (for errors and `Debug`).
#[derive(Clone)]
struct Entry {
    value: Arc<dyn Any + Send + Sync>,
    type_name: &'static str,
}

impl States {
    /// No state.
    pub fn new() -> Self {
        Self::default()
    }

    /// These states and `value`, which replaces an earlier value of the same type.
    pub fn with<T: StateValue>(mut self, value: T) -> Self {
        self.insert(value);
        self
    }

    /// Adds `value`, replacing an earlier value of the same type.
    pub fn insert<T: StateValue>(&mut self, value: T) {
        let entry = Entry { value: Arc::new(value), type_name: std::any::type_name::<T>() };
        Arc::make_mut(&mut self.values).insert(TypeId::of::<T>(), entry);
    }

    /// A clone of the value of type `T`, if there is one.
    pub fn get<T: StateValue>(&self) -> Option<T> {
        self.values.get(&TypeId::of::<T>()).and_then(|e| e.value.downcast_ref::<T>()).cloned()
    }

    /// Whether a value of the needed type is here.
    pub fn has(&self, need: &StateNeed) -> bool {
        self.values.contains_key(&(need.type_id)())
    }

    /// Of the state `needs`, those not here, as "job `name` needs state `T`" lines.
    pub(crate) fn missing<'a>(
        &self,
        job: &str,
        needs: impl IntoIterator<Item = &'a StateNeed>,
    ) -> Vec<String> {
        needs
            .into_iter()
            .filter(|need| !self.has(need))
            .map(|need| format!("job `{job}` needs state `{}`", (need.type_name)()))
            .collect()
    }
}

impl fmt::Debug for States {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.values.values().map(|e| e.type_name).collect();
        names.sort_unstable();
        f.debug_struct("States").field("types", &names).finish()
    }
}

/// One state type a job takes, recorded in its registration by `#[job]`.
#[derive(Debug, Clone, Copy)]
pub struct StateNeed {
    /// The type's name, for errors.
    pub type_name: fn() -> &'static str,
    /// The type's id.
    pub type_id: fn() -> TypeId,
}

impl StateNeed {
    /// The need of a `State<T>` parameter.
    pub const fn of<T: 'static>() -> Self {
        StateNeed { type_name: std::any::type_name::<T>, type_id: TypeId::of::<T> }
    }
}

/// What a type needs to be job state. Implemented for every `Clone + Send + Sync + 'static` type;
/// it exists for its error message, which names the rule where a `State<T>` breaks it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be job state: a `State<T>` must be `Clone + Send + Sync + 'static`",
    label = "not `Clone + Send + Sync + 'static`",
    note = "each job gets a clone of the runtime's value, from any thread: wrap what is not `Clone` or `Sync` in an `Arc` (and a `Mutex` if it must change)"
)]
pub trait StateValue: Clone + Send + Sync + 'static {}

impl<T: Clone + Send + Sync + 'static> StateValue for T {}

/// The state of type `T` in `ctx`, for the code `#[job]` generates: a plain path to call with the
/// type spanned at the user's `State<T>`, so a type that cannot be state is reported there.
#[doc(hidden)]
pub fn state_of<T: StateValue>(ctx: &crate::context::JobContext) -> Option<T> {
    ctx.state::<T>()
}

/// The message of a job run without a state it takes (possible only for a job this runtime does
/// not run by its declared queue: `start()` refuses the rest).
pub fn missing_at_run(type_name: &str) -> String {
    format!(
        "this node has no state of type `{type_name}` (give it with RuntimeBuilder::state); \
         the job is retried, since another node may have it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_per_type_and_the_missing_ones_named() {
        let states = States::new().with(1u8).with(2u8).with(String::from("s"));
        assert_eq!(states.get::<u8>(), Some(2), "a later value of one type replaces the earlier");
        let needs = [StateNeed::of::<u8>(), StateNeed::of::<i64>(), StateNeed::of::<String>()];
        assert_eq!(states.missing("report", &needs), ["job `report` needs state `i64`"]);
        assert_eq!(format!("{states:?}"), r#"States { types: ["alloc::string::String", "u8"] }"#);
    }
}
