//! Opening the database named by `--database-url`, with errors that say which part failed.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use jobsmith::Db;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::SqliteConnectOptions;

use crate::duration;
use crate::error::{Failure, NOT_MIGRATED};

/// Whether the command may bring a database into being (only `migrate` may).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Create a missing SQLite file.
    Create,
    /// The database must exist already.
    Existing,
}

/// Connects to `url`, waiting at most `timeout` for a PostgreSQL server to answer.
pub(crate) async fn open(url: &str, timeout: Duration, mode: Mode) -> Result<Db, Failure> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        probe_postgres(url, timeout).await?;
    } else if url.starts_with("sqlite:") {
        if mode == Mode::Existing {
            check_sqlite_file(url)?;
        }
    } else {
        return Err(Failure::new(format!(
            "cannot tell the database from `{}`: use postgres://... or sqlite:...",
            redact(url)
        )));
    }
    match tokio::time::timeout(timeout, Db::connect(url)).await {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(Failure::new(format!("cannot open the database `{}`: {e}", redact(url)))),
        Err(_) => Err(Failure::new(format!(
            "cannot open the database `{}`: no answer within {}",
            redact(url),
            duration::format(timeout)
        ))),
    }
}

/// Opens and closes one connection first: the pool behind [`Db::connect`] retries a refused
/// connection until its own 30 s timeout and then reports only "pool timed out", which hides the
/// cause (server down, wrong port, unknown database, bad password).
async fn probe_postgres(url: &str, timeout: Duration) -> Result<(), Failure> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| Failure::new(format!("bad database URL `{}`: {e}", redact(url))))?;
    let target = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username())
    );
    match tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await {
        Ok(Ok(connection)) => {
            // Closing politely is a courtesy to the server; failing at it changes nothing here.
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(sqlx::Error::Database(e))) => {
            Err(Failure::new(format!("the database at {target} refused the connection: {}", e.message())))
        }
        Ok(Err(e)) => Err(Failure::new(format!("cannot reach the database at {target}: {e}"))),
        Err(_) => Err(Failure::new(format!(
            "cannot reach the database at {target}: no answer within {}",
            duration::format(timeout)
        ))),
    }
}

/// Refuses a SQLite file that does not exist, instead of letting the driver create an empty one
/// that every command but `migrate` would then fail on.
fn check_sqlite_file(url: &str) -> Result<(), Failure> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(());
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| Failure::new(format!("bad database URL `{url}`: {e}")))?;
    let file: &Path = options.get_filename();
    if file.exists() {
        Ok(())
    } else {
        Err(Failure::new(format!("{NOT_MIGRATED} (there is no file `{}` yet)", file.display())))
    }
}

/// The URL with its password replaced, so it can be printed.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let authority_end = url[scheme_end..].find(['/', '?']).map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    // The last `@` ends the user info: passwords may contain `@`, host names may not.
    let Some(at) = authority.rfind('@') else { return url.to_string() };
    let Some(colon) = authority[..at].find(':') else { return url.to_string() };
    format!("{}{}:***{}", &url[..scheme_end], &authority[..colon], &url[scheme_end + at..])
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u:p@ss@h/db?x=1"), "postgres://u:***@h/db?x=1");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("mysql://root:pw@h"), "mysql://root:***@h");
        assert_eq!(redact("sqlite:jobs.db"), "sqlite:jobs.db");
    }
}
