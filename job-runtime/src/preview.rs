//! Bounded views of large JSON for people, shared by the dashboard's job page and `jobsmith jobs
//! show`: a job's args may be megabytes, and a page or a terminal should show their start, their
//! size, and where to get the whole.
//!
//! ```
//! use jobsmith::preview::{format_bytes, prefix_within, pretty_json};
//!
//! let text = pretty_json(&serde_json::json!({ "body": "x".repeat(100_000) }));
//! let shown = prefix_within(&text, 64 * 1024, char::len_utf8);
//! assert_eq!(shown.len(), 64 * 1024);
//! assert_eq!(format!("showing the first {} of {}", format_bytes(shown.len()), format_bytes(text.len())),
//!            "showing the first 64 KiB of 97.7 KiB");
//! ```

/// How much of a job's args a job page or `jobs show` shows before cutting: 64 KiB.
pub const ARGS_PREVIEW_BYTES: usize = 64 * 1024;

/// `value` as indented JSON, the form people read (and the dashboard's download serves).
pub fn pretty_json(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// The longest start of `text` whose characters cost at most `budget` in total, cut between
/// characters. `cost` is a character's size where it ends up: `char::len_utf8` for plain text,
/// its escaped length for HTML (so an escaped preview stays within the budget too).
pub fn prefix_within(text: &str, budget: usize, cost: impl Fn(char) -> usize) -> &str {
    let mut spent = 0;
    for (at, c) in text.char_indices() {
        spent += cost(c);
        if spent > budget {
            return &text[..at];
        }
    }
    text
}

/// A size in the largest binary unit that keeps it readable: `512 bytes`, `64 KiB`, `97.7 KiB`,
/// `10.0 MiB`. Whole KiB are printed without decimals.
pub fn format_bytes(n: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    match n {
        n if n < KIB => format!("{n} bytes"),
        n if n < MIB && n % KIB == 0 => format!("{} KiB", n / KIB),
        n if n < MIB => format!("{:.1} KiB", n as f64 / KIB as f64),
        n => format!("{:.1} MiB", n as f64 / MIB as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_stop_between_characters() {
        assert_eq!(
            prefix_within("héllo", 2, char::len_utf8),
            "h",
            "é takes two bytes: it does not fit after h"
        );
        assert_eq!(prefix_within("héllo", 3, char::len_utf8), "hé");
        assert_eq!(prefix_within("abc", 10, char::len_utf8), "abc");
        let html = |c: char| if c == '&' { 5 } else { c.len_utf8() };
        assert_eq!(prefix_within("a&b", 5, html), "a");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(format_bytes(0), "0 bytes");
        assert_eq!(format_bytes(1023), "1023 bytes");
        assert_eq!(format_bytes(64 * 1024), "64 KiB");
        assert_eq!(format_bytes(100_000), "97.7 KiB");
        assert_eq!(format_bytes(10 * 1024 * 1024 + 14), "10.0 MiB");
    }
}
