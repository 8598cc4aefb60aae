//! The one error type of the runtime.

/// Everything that can go wrong in jobsmith, outside a job's own code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database refused or the connection failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Two job types registered the same worker name.
    #[error("two workers are registered with the name `{0}`; give one of them `#[job(name = \"...\")]`")]
    DuplicateWorker(String),
    /// A job's args could not be encoded as JSON.
    #[error("job args do not encode as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    /// An option was out of range or malformed.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A migration failed or the schema is newer than this version of jobsmith.
    #[error("migration error: {0}")]
    Migration(String),
    /// The database answered something jobsmith did not expect (a bug or a foreign change).
    #[error("unexpected answer from the database: {0}")]
    Unexpected(String),
    /// No job with that id.
    #[error("no job with id {0}")]
    JobNotFound(i64),
    /// The runtime is not running (it was shut down).
    #[error("the runtime has shut down")]
    ShutDown,
}

/// `Result` with jobsmith's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
