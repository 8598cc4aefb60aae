//! What a job's `perform` returns, and how user return types turn into it.

use std::fmt::Display;
use std::time::Duration;

/// How a job finished when it did not fail.
///
/// A job fn returns `Result<(), E>` (success means [`Outcome::Complete`]), `Result<T, E>` to
/// complete with a recorded result of type `T` (see [`crate::Db::result`]), or
/// `Result<Outcome<T>, E>` to choose one of the other endings explicitly, where
/// [`Outcome::CompleteWith`] records a result and the others record none. An `Err` is a failed
/// attempt: the job is retried with backoff until `max_attempts`, then discarded.
///
/// ```
/// use jobsmith::Outcome;
/// use std::time::Duration;
/// // "the API is rate limited; try again in a minute, without counting it as a failure"
/// let later: Outcome = Outcome::Snooze(Duration::from_secs(60));
/// assert!(matches!(later, Outcome::Snooze(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T = ()> {
    /// The job did its work: the row becomes `completed`, with no result recorded.
    Complete,
    /// The job did its work and hands back `T`: the row becomes `completed` and `T` is recorded
    /// with it, in the same write.
    CompleteWith(T),
    /// Run again after the duration: the row becomes `scheduled` and the attempt is not counted.
    Snooze(Duration),
    /// Stop for good, deliberately: the row becomes `cancelled` with the reason recorded.
    Cancel(String),
    /// Stop for good because the job can never succeed: the row becomes `discarded` with the
    /// reason recorded.
    Discard(String),
}

impl<T> Outcome<T> {
    /// The same ending with the value (if any) converted by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Complete => Outcome::Complete,
            Outcome::CompleteWith(value) => Outcome::CompleteWith(f(value)),
            Outcome::Snooze(delay) => Outcome::Snooze(delay),
            Outcome::Cancel(reason) => Outcome::Cancel(reason),
            Outcome::Discard(reason) => Outcome::Discard(reason),
        }
    }
}

/// What a job's `perform` hands back: its ending, with a recorded result as JSON.
pub type EncodedOutcome = Outcome<serde_json::Value>;

/// Converts a job fn's return value into `Result<EncodedOutcome, String>`.
///
/// Implemented for `Result<(), E>` and `Result<Outcome<T>, E>` where `E: Display` and
/// `T: Serialize`; `#[job]` turns a fn returning `Result<T, E>` into the second form
/// (`Outcome::CompleteWith`). A fn with any other return type fails to compile with this trait's
/// message.
#[diagnostic::on_unimplemented(
    message = "a job fn must return `Result<(), E>`, `Result<T, E>` or `Result<jobsmith::Outcome<T>, E>` with `E: Display`, not `{Self}`",
    label = "this return type is not a job result",
    note = "write `-> Result<(), YourError>`, `-> Result<YourOutput, YourError>` to record a result, or `-> Result<jobsmith::Outcome, YourError>` to snooze, cancel or discard"
)]
pub trait IntoOutcome {
    /// The outcome with its result encoded, or the failure rendered with `Display` (a result
    /// that cannot be encoded is a failure too).
    fn into_outcome(self) -> Result<EncodedOutcome, String>;
}

impl<E: Display> IntoOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<EncodedOutcome, String> {
        self.map(|()| Outcome::Complete).map_err(|e| e.to_string())
    }
}

impl<T: serde::Serialize, E: Display> IntoOutcome for Result<Outcome<T>, E> {
    fn into_outcome(self) -> Result<EncodedOutcome, String> {
        match self.map_err(|e| e.to_string())? {
            Outcome::CompleteWith(value) => serde_json::to_value(&value)
                .map(Outcome::CompleteWith)
                .map_err(|e| format!("the job's result could not be encoded: {e}")),
            other => Ok(other.map(|_| serde_json::Value::Null)),
        }
    }
}
