//! Durations written the short way operators type them: `1d`, `12h`, `30m`, `45s`, `1h30m`.

use std::time::Duration;

/// Parses one or more `<number><unit>` parts (units `d`, `h`, `m`, `s`, `ms`) and adds them up.
///
/// A bare number is refused rather than guessed: "7" could mean seconds or days, and a wrong
/// guess in `prune` deletes rows.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration; write it like 1d, 12h, 30m or 45s".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{text}` is not a duration; write it like 1d, 12h, 30m or 45s"));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| format!("`{text}` is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "d" => Duration::from_secs(86_400),
            "h" => Duration::from_secs(3_600),
            "m" => Duration::from_secs(60),
            "s" => Duration::from_secs(1),
            "ms" => Duration::from_millis(1),
            "" => return Err(format!("`{text}` lacks a unit; write it like 1d, 12h, 30m or 45s")),
            other => return Err(format!("unknown unit `{other}` in `{text}`; use d, h, m, s or ms")),
        };
        rest = &rest[unit_len..];
        let part = u32::try_from(number)
            .ok()
            .and_then(|n| unit.checked_mul(n))
            .ok_or_else(|| format!("`{text}` is too large"))?;
        total = total.checked_add(part).ok_or_else(|| format!("`{text}` is too large"))?;
    }
    Ok(total)
}

/// Writes a duration back in the largest units that divide it, for messages: `1d`, `36h`, `90s`.
pub(crate) fn format(d: Duration) -> String {
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
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("7").unwrap_err().contains("lacks a unit"));
        assert!(parse("1w").unwrap_err().contains("unknown unit `w`"));
        assert!(parse("d").is_err());
        assert!(parse("-1d").is_err());
        assert!(parse("99999999999999999999d").unwrap_err().contains("too large"));
    }

    #[test]
    fn formats_in_the_largest_unit() {
        assert_eq!(format(Duration::from_secs(86_400)), "1d");
        assert_eq!(format(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(format(Duration::from_secs(5_400)), "90m");
        assert_eq!(format(Duration::from_secs(45)), "45s");
        assert_eq!(format(Duration::from_millis(1_500)), "1500ms");
    }
}
