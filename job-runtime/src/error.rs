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
    /// A job's alias is another worker's name or alias.
    #[error(
        "alias `{alias}` of `{of}` is already the name or an alias of `{taken_by}`: names and aliases together must be unique"
    )]
    AliasTaken {
        /// The alias.
        alias: String,
        /// The worker that lists it.
        of: String,
        /// The worker that already has it.
        taken_by: String,
    },
    /// A job's args could not be encoded as JSON.
    #[error("job args do not encode as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    /// An option was out of range or malformed.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Jobs this runtime runs take state that nobody gave it (`RuntimeBuilder::state`); one line
    /// per job and type.
    #[error("state missing (give it with RuntimeBuilder::state): {}", .0.join("; "))]
    MissingState(Vec<String>),
    /// A migration failed or the schema is newer than this version of jobsmith.
    #[error("migration error: {0}")]
    Migration(String),
    /// The database answered something jobsmith did not expect (a bug or a foreign change).
    #[error("unexpected answer from the database: {0}")]
    Unexpected(String),
    /// No job with that id.
    #[error("no job with id {0}")]
    JobNotFound(i64),
    /// A job waited for ended without completing (see [`crate::Db::wait`]).
    #[error("job {id} ended {state}: {error}")]
    JobFailed {
        /// The job.
        id: i64,
        /// `discarded` or `cancelled`.
        state: crate::types::JobState,
        /// Its last error (or cancel reason).
        error: String,
    },
    /// A job waited for had not finished by the deadline; it goes on (see [`crate::Db::wait`]).
    #[error("job {id} had not finished in time (it is {state}, and goes on)")]
    WaitTimedOut {
        /// The job.
        id: i64,
        /// Its state at the deadline.
        state: crate::types::JobState,
    },
    /// The runtime is not running (it was shut down).
    #[error("the runtime has shut down")]
    ShutDown,
    /// The database has no jobsmith tables for this instance (or not all of them): nobody ran the
    /// migrations. `schema` is the PostgreSQL schema, or on SQLite the table prefix without its
    /// underscore.
    #[error(
        "jobsmith's tables are missing in schema `{schema}`: run migrations first (`db.migrate()` or \
         `jobsmith migrate`)"
    )]
    NotMigrated {
        /// The instance whose tables are missing.
        schema: String,
    },
    /// Settings were asked for a queue that no node runs and that has no jobs and no stored
    /// settings, which is most often a typo. [`crate::engine::Administration::update_queue_settings`]
    /// with `allow_unknown` stores them on purpose, for a queue that nodes will run later.
    #[error(
        "queue `{0}` is not run by any node and has no jobs or stored settings (a typo?); to store \
         settings for a queue that nodes will run later, pass --create (`jobsmith queue`) or \
         allow_unknown (`Engine::update_queue_settings`)"
    )]
    UnknownQueue(String),
}

impl Error {
    /// This error, or [`Error::NotMigrated`] if it is the database saying that one of jobsmith's
    /// tables (or the whole PostgreSQL schema) does not exist. Every engine call and insert goes
    /// through this, so an unmigrated database is named as such wherever it is first touched.
    pub(crate) fn or_not_migrated(self, schema: &str) -> Error {
        let Error::Database(sqlx::Error::Database(db)) = &self else { return self };
        // 42P01 undefined_table, 3F000 invalid_schema_name (PostgreSQL); SQLite has no code of its
        // own for it, only the message.
        let missing = matches!(db.code().as_deref(), Some("42P01" | "3F000"))
            || db.message().starts_with("no such table");
        if missing { Error::NotMigrated { schema: schema.to_string() } } else { self }
    }
}

/// `Result` with jobsmith's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
