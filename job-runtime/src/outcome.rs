//! What a job's `perform` returns, and how user return types turn into it.

use std::fmt::Display;
use std::time::Duration;

/// How a job finished when it did not fail.
///
/// A job fn returns `Result<(), E>` (success means [`Outcome::Complete`]) or `Result<Outcome, E>`
/// to choose one of the other endings explicitly. An `Err` is a failed attempt: the job is retried
/// with backoff until `max_attempts`, then discarded.
///
/// ```
/// use jobsmith::Outcome;
/// use std::time::Duration;
/// // "the API is rate limited; try again in a minute, without counting it as a failure"
/// let later = Outcome::Snooze(Duration::from_secs(60));
/// assert!(matches!(later, Outcome::Snooze(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The job did its work: the row becomes `completed`.
    Complete,
    /// Run again after the duration: the row becomes `scheduled` and the attempt is not counted.
    Snooze(Duration),
    /// Stop for good, deliberately: the row becomes `cancelled` with the reason recorded.
    Cancel(String),
    /// Stop for good because the job can never succeed: the row becomes `discarded` with the
    /// reason recorded.
    Discard(String),
}

/// Converts a job fn's return value into `Result<Outcome, String>`.
///
/// Implemented for `Result<(), E>` and `Result<Outcome, E>` where `E: Display`; the generated code
/// of `#[job]` calls it, so a fn with any other return type fails to compile with this trait's
/// message.
#[diagnostic::on_unimplemented(
    message = "a job fn must return `Result<(), E>` or `Result<jobsmith::Outcome, E>` with `E: Display`, not `{Self}`",
    label = "this return type is not a job result",
    note = "write `-> Result<(), YourError>`, or `-> Result<jobsmith::Outcome, YourError>` to snooze, cancel or discard"
)]
pub trait IntoOutcome {
    /// The outcome, or the failure rendered with `Display`.
    fn into_outcome(self) -> Result<Outcome, String>;
}

impl<E: Display> IntoOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<Outcome, String> {
        self.map(|()| Outcome::Complete).map_err(|e| e.to_string())
    }
}

impl<E: Display> IntoOutcome for Result<Outcome, E> {
    fn into_outcome(self) -> Result<Outcome, String> {
        self.map_err(|e| e.to_string())
    }
}
