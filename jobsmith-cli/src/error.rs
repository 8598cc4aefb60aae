//! What a failed command reports: one message naming the cause, and the exit status.

use std::fmt;

/// The message printed when a query runs into a missing table.
pub(crate) const NOT_MIGRATED: &str = "the database is not migrated: run `jobsmith migrate`";

/// Exit status of runtime errors: the database, a refused operation.
const EXIT_ERROR: u8 = 1;
/// Exit status when the job named on the command line does not exist, so scripts can tell "gone"
/// from "broken" without parsing the message.
const EXIT_NOT_FOUND: u8 = 3;

/// A command's failure: printed on stderr, then the process exits with [`Failure::code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The exit status.
    pub(crate) code: u8,
    /// What went wrong, in words that name the cause.
    pub(crate) message: String,
}

impl Failure {
    /// A runtime error (exit 1).
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Failure { code: EXIT_ERROR, message: message.into() }
    }

    /// The job `id` does not exist (exit 3).
    pub(crate) fn no_job(id: i64) -> Self {
        Failure { code: EXIT_NOT_FOUND, message: format!("no job with id {id}") }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<jobsmith::Error> for Failure {
    fn from(error: jobsmith::Error) -> Self {
        match error {
            // The runtime recognises a missing table (every engine call does); the words here are
            // the ones for a command line user.
            jobsmith::Error::NotMigrated { .. } => Failure::new(NOT_MIGRATED),
            jobsmith::Error::JobNotFound(id) => Failure::no_job(id),
            other => Failure::new(other.to_string()),
        }
    }
}
