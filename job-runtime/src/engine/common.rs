//! Helpers every engine uses: names spliced into SQL, search patterns, durations as numbers.

use std::time::Duration;

use crate::error::{Error, Result};

/// A schema name is spliced into SQL, so it is held to a plain identifier.
pub(crate) fn validate_schema(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 40
        && schema.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidOption(format!(
            "schema `{schema}` must be 1 to 40 lower-case letters, digits or underscores, not starting with a digit"
        )))
    }
}

/// `%text%` with LIKE's own wildcards escaped (backslash is the escape character), so a search is for
/// the text itself.
pub(crate) fn like_pattern(text: &str) -> String {
    let escaped = text.trim().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// `d` in whole milliseconds, saturating.
pub(crate) fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// The refusal to change or remove a cron entry defined in the leader's code (ADR 30).
pub(crate) fn code_cron_entry(name: &str) -> crate::error::Error {
    crate::error::Error::InvalidOption(format!(
        "cron entry `{name}` is defined in the leader's code: change it there (here it can only be paused or resumed)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern(" 50%_off\\ "), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(validate_schema("jobsmith").is_ok());
        assert!(validate_schema("tenant_2").is_ok());
        for bad in ["", "2x", "Jobs", "a;drop", "a.b", "x\"y", &"a".repeat(41)] {
            assert!(validate_schema(bad).is_err(), "{bad} should be refused");
        }
    }
}
