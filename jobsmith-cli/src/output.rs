//! Rendering: aligned text tables for people, one JSON document per command for scripts.

use chrono::{DateTime, SecondsFormat, Utc};
use jobsmith::JobRow;
use serde_json::{Value, json};

/// A table of left-aligned columns, separated by two spaces, with no borders, rules or colours:
/// what reads well in a terminal and survives copying into a ticket. Laid out by comfy-table,
/// which measures cells by their display width (so wide characters still line up).
#[derive(Debug)]
pub(crate) struct Table {
    inner: comfy_table::Table,
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new<I, S>(header: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut inner = comfy_table::Table::new();
        // No borders and no lines under the header; never wrapped to the terminal's width (a
        // wrapped row no longer greps as one line).
        inner
            .load_style(comfy_table::presets::NOTHING)
            .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
            .set_header(header.into_iter().map(Into::<String>::into).collect::<Vec<_>>());
        // Two spaces after every column and none before: the last column's padding, like any
        // trailing blank, is trimmed in `render`.
        for column in inner.column_iter_mut() {
            column.set_padding((0, 2));
        }
        Table { inner }
    }

    /// Appends one row (as many cells as titles).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(
            cells.len(),
            self.inner.header().map_or(0, |h| h.cell_count()),
            "a row must have one cell per column"
        );
        self.inner.add_row(cells);
    }

    /// The table as text, one line per row after the header, each ending in a newline.
    pub(crate) fn render(&self) -> String {
        // Padding after the last column only makes copied text ragged.
        let mut out = self.inner.trim_fmt();
        out.push('\n');
        out
    }
}

/// Prints a JSON document on stdout, pretty so it also reads well.
pub(crate) fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

/// A time for tables: UTC, to the second.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An optional time for tables, `-` when absent.
pub(crate) fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_string(), time)
}

/// A time for JSON: RFC 3339 in UTC with milliseconds.
pub(crate) fn json_time(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// An optional time for JSON, `null` when absent.
pub(crate) fn json_opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, json_time)
}

/// How long ago `then` was, seen from `now`, in the largest whole unit: `4s ago`, `3m ago`.
pub(crate) fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    // Clocks of nodes and of this machine may differ a little: never print a negative age.
    let secs = (now - then).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7_200 => format!("{}m ago", s / 60),
        s => format!("{}h ago", s / 3_600),
    }
}

/// Cuts `text` to `max` characters, marking the cut, so a long args document keeps a table
/// readable.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// Everything stored about a job, as JSON.
pub(crate) fn job_json(job: &JobRow) -> Value {
    json!({
        "id": job.id,
        "state": job.state.as_str(),
        "queue": job.queue,
        "worker": job.worker,
        "args": job.args,
        "meta": job.meta,
        "tags": job.tags,
        "errors": job.errors,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "priority": job.priority,
        "weight": job.weight,
        "inserted_at": json_time(job.inserted_at),
        "scheduled_at": json_time(job.scheduled_at),
        "attempted_at": json_opt_time(job.attempted_at),
        "attempted_by": job.attempted_by,
        "completed_at": json_opt_time(job.completed_at),
        "discarded_at": json_opt_time(job.discarded_at),
        "cancelled_at": json_opt_time(job.cancelled_at),
        "unreadable": job.unreadable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_trims_line_ends() {
        let mut t = Table::new(["ID", "STATE"]);
        t.row(vec!["1".into(), "available".into()]);
        t.row(vec!["1234".into(), "x".into()]);
        assert_eq!(t.render(), "ID    STATE\n1     available\n1234  x\n");
    }

    #[test]
    fn table_has_no_borders_colours_or_wrapping() {
        let long = "x".repeat(300);
        let mut t = Table::new(["NAME", "VALUE"]);
        t.row(vec!["ünïcödé".into(), long.clone()]);
        t.row(vec![String::new(), "-".into()]);
        assert_eq!(t.render(), format!("NAME     VALUE\nünïcödé  {long}\n         -\n"));
    }

    #[test]
    fn ago_picks_a_unit() {
        let now = Utc::now();
        assert_eq!(ago(now - chrono::Duration::seconds(4), now), "4s ago");
        assert_eq!(ago(now - chrono::Duration::seconds(600), now), "10m ago");
        assert_eq!(ago(now - chrono::Duration::hours(5), now), "5h ago");
        assert_eq!(ago(now + chrono::Duration::seconds(2), now), "0s ago");
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abcdef", 10), "abcdef");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
