//! Durations as operators type them (`1d`, `12h`, `30m`, `45s`, `1h30m`), parsed by humantime:
//! the crate the job macro already reads `timeout = "30s"` with, so both accept the same forms.

use std::time::Duration;

use humantime::DurationError;

/// What `--help` says about durations. The test below parses every example it names.
pub(crate) const HELP: &str = "\
Durations (--connect-timeout, prune --*-older-than):
  a number and a unit, several of them adding up; a bare number is refused (7 seconds or days?)
  Examples: 1d, 12h, 30m, 45s, 250ms, 1h30m, 1h 30m, 1.5h, 2w, 3 days
  Units: ms, s or sec, m or min, h or hr, d or day, w or week, M or month (30.44 days),
         y or year (365.25 days); plurals work too. m is minutes, M is months.";

/// Parses one or more `<number><unit>` parts and adds them up (see [`HELP`]).
///
/// A bare number is refused rather than guessed: "7" could mean seconds or days, and a wrong
/// guess in `prune` deletes rows.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    humantime::parse_duration(text).map_err(|e| match e {
        DurationError::Empty => "empty duration; write it like 1d, 12h, 30m or 45s".to_string(),
        DurationError::UnknownUnit { unit, .. } if unit.is_empty() => {
            format!("`{text}` lacks a unit; write it like 1d, 12h, 30m or 45s")
        }
        DurationError::UnknownUnit { unit, .. } => {
            format!("unknown unit `{unit}` in `{text}`; use ms, s, m, h, d, w, M or y")
        }
        DurationError::NumberOverflow => format!("`{text}` is too large (or finer than a nanosecond)"),
        // `InvalidCharacter`, `NumberExpected`, and any kind a later humantime adds.
        _ => format!("`{text}` is not a duration; write it like 1d, 12h, 30m or 45s"),
    })
}

/// Writes a duration back in the largest units that divide it, for messages: `1d`, `36h`, `90s`.
pub(crate) fn format(d: Duration) -> String {
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        // Finer than a millisecond (`500us`): rare enough for humantime's longer form.
        return humantime::format_duration(d).to_string();
    }
    let secs = d.as_secs();
    if d.subsec_millis() != 0 || secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit_and_sums() {
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse(" 2d "), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse("1d12h"), Ok(Duration::from_secs(129_600)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("3 days"), Ok(Duration::from_secs(3 * 86_400)));
        // `m` is minutes, `M` months: the one place where case matters.
        assert_eq!(parse("1M"), Ok(Duration::from_secs(2_630_016)));
        assert_eq!(parse("1y"), Ok(Duration::from_secs(31_557_600)));
    }

    #[test]
    fn every_example_in_the_help_parses() {
        let examples = HELP
            .lines()
            .find_map(|line| line.split_once("Examples: "))
            .map(|(_, list)| list)
            .expect("the help lists examples");
        let examples: Vec<&str> = examples.split(", ").collect();
        assert!(examples.len() >= 5, "{examples:?}");
        for example in examples {
            let parsed = parse(example).unwrap_or_else(|e| panic!("help example `{example}`: {e}"));
            assert!(parsed > Duration::ZERO, "{example}");
        }
        // The defaults of the flags, and what `format` writes back, parse too.
        for default in ["10s", "1d", "7d"] {
            assert_eq!(parse(&format(parse(default).unwrap())), parse(default));
        }
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("7").unwrap_err().contains("lacks a unit"));
        assert!(parse("1x").unwrap_err().contains("unknown unit `x`"));
        assert!(parse("1 fortnight").unwrap_err().contains("unknown unit `fortnight`"));
        assert!(parse("d").unwrap_err().contains("not a duration"));
        assert!(parse("-1d").unwrap_err().contains("not a duration"));
        assert!(parse("1d!").unwrap_err().contains("not a duration"));
        assert!(parse("99999999999999999999d").unwrap_err().contains("too large"));
    }

    #[test]
    fn formats_in_the_largest_unit() {
        assert_eq!(format(Duration::from_secs(86_400)), "1d");
        assert_eq!(format(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(format(Duration::from_secs(5_400)), "90m");
        assert_eq!(format(Duration::from_secs(45)), "45s");
        assert_eq!(format(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(format(Duration::from_micros(500)), "500us");
    }
}
