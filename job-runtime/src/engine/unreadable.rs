//! Reading one row without letting one bad column fail the statement it came from.
//!
//! A statement that returns many rows (a fetch, a claim, a listing) must not fail because one row
//! holds a value this version cannot decode: JSON nested deeper than serde_json's recursion limit
//! (128 levels) is valid JSON, which PostgreSQL stores, but which never decodes. For a fetch that
//! already committed its claim, failing the statement would strand every job it claimed. So the
//! row readers of both engines decode column by column: the columns needed to act on the row
//! (its id, attempt and state) must decode, and every other column falls back to a placeholder and
//! records why. The runtime discards such a job with that reason (ADR 10); listings show the row.

use std::fmt::Display;

/// The columns of one row that could not be read, and why.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<String>);

impl Problems {
    /// The value of `column`, or `fallback` with the failure recorded.
    pub(crate) fn or<T, E: Display>(&mut self, column: &str, value: Result<T, E>, fallback: T) -> T {
        match value {
            Ok(v) => v,
            Err(e) => {
                let e = e.to_string();
                let hint = if e.contains("recursion limit") {
                    " (the JSON is nested deeper than the 128 levels serde_json decodes)"
                } else {
                    ""
                };
                self.0.push(format!("column `{column}` could not be read: {e}{hint}"));
                fallback
            }
        }
    }

    /// One sentence naming every column that failed, or `None` when the row read cleanly.
    pub(crate) fn into_reason(self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.0.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_failed_column_and_keeps_good_ones() {
        let mut p = Problems::default();
        assert_eq!(p.or("id", Ok::<_, String>(7), 0), 7);
        assert_eq!(p.or("args", Err::<i32, _>("recursion limit exceeded"), -1), -1);
        assert_eq!(p.or("meta", Err::<i32, _>("bad"), -2), -2);
        let reason = p.into_reason().unwrap();
        assert!(reason.contains("column `args` could not be read: recursion limit exceeded"), "{reason}");
        assert!(reason.contains("nested deeper than the 128 levels"), "{reason}");
        assert!(reason.contains("column `meta` could not be read: bad"), "{reason}");
        assert_eq!(Problems::default().into_reason(), None);
    }
}
