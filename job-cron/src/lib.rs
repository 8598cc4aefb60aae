//! The cron expressions jobsmith accepts, checked the same way by the `#[job(cron = ...)]`
//! attribute at compile time and by the runtime (`CronEntry::new`, `RuntimeBuilder::cron`), so
//! both take the same expressions and refuse the others with the same words. A crate of its own
//! because a proc-macro crate can export nothing but macros, and the macro cannot depend on the
//! runtime (ADR 11).
//!
//! The grammar: five fields `minute hour day-of-month month day-of-week`, or six with a leading
//! `second` field; in each field `*`, values, ranges `a-b`, steps `*/n` and `a-b/n`, and lists of
//! these; month names `JAN`-`DEC` and weekday names `SUN`-`SAT`; `L`, `W`, `?` in the day of the
//! month and `L`, `#`, `?` in the day of the week; and the nicknames `@hourly`, `@daily`,
//! `@weekly`, `@monthly`, `@yearly` (`@annually`). The parser underneath (the `croner` crate) also
//! reads a seventh (year) field, `@reboot` and steps larger than their field; those are refused
//! here, each with a message saying why.
//!
//! ```
//! assert!(jobsmith_cron::parse("*/15 9-17 * * MON-FRI").is_ok());
//! let err = jobsmith_cron::parse("0 25 * * *").unwrap_err();
//! assert_eq!(err.to_string(), "cron expression `0 25 * * *` is invalid: hours must be 0-23, got 25");
//! assert_eq!(err.reason(), "hours must be 0-23, got 25");
//! ```

use std::fmt;

pub use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Why an expression was refused: one sentence that names the field and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError {
    expr: String,
    reason: String,
}

impl CronError {
    /// The expression as written.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The reason alone, without the expression: `hours must be 0-23, got 25`.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cron expression `{}` is invalid: {}", self.expr, self.reason)
    }
}

impl std::error::Error for CronError {}

/// The nicknames accepted, in the words of the messages.
const NICKNAMES: &str = "@hourly, @daily, @weekly, @monthly or @yearly (also @annually)";

/// The fields, for messages about their number.
const SHAPE: &str = "five fields (minute hour day-of-month month day-of-week), or six with a leading \
                     seconds field, or a nickname";

/// Parses `expr` after checking it field by field; see the crate's documentation for the grammar.
pub fn parse(expr: &str) -> Result<Cron, CronError> {
    let refuse = |reason: String| CronError { expr: expr.to_string(), reason };
    check(expr).map_err(refuse)?;
    // Seconds optional, years never: the year field is refused by `check` already, and
    // disallowing it here too keeps the parser from reading one if `check` ever lets it through.
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        // Only combinations `check` does not look into reach here (such as `L` inside a range).
        .map_err(|e| refuse(e.to_string()))
}

/// One field of an expression: what the messages call it and which values it takes.
struct Field {
    /// Plural, as in "hours must be 0-23".
    name: &'static str,
    min: u16,
    max: u16,
    /// Names for values, the first standing for `first_named`.
    names: &'static [&'static str],
    first_named: u16,
    /// Day of the month: `L`, `LW`, `15W`, `?`.
    day_of_month: bool,
    /// Day of the week: `5L`, `5#2`, `?`, a leading `+`.
    day_of_week: bool,
}

const SECONDS: Field = Field::numeric("seconds", 0, 59);
const MINUTES: Field = Field::numeric("minutes", 0, 59);
const HOURS: Field = Field::numeric("hours", 0, 23);
const DAYS: Field = Field { day_of_month: true, ..Field::numeric("days of the month", 1, 31) };
const MONTHS: Field = Field {
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
    first_named: 1,
    ..Field::numeric("months", 1, 12)
};
// 0 and 7 are both Sunday.
const WEEKDAYS: Field = Field {
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    first_named: 0,
    day_of_week: true,
    ..Field::numeric("days of the week", 0, 7)
};

impl Field {
    const fn numeric(name: &'static str, min: u16, max: u16) -> Field {
        Field { name, min, max, names: &[], first_named: 0, day_of_month: false, day_of_week: false }
    }

    /// What the field takes, for messages: `0-23`, `1-12 or JAN-DEC`.
    fn allowed(&self) -> String {
        match (self.names.first(), self.names.last()) {
            (Some(first), Some(last)) => format!("{}-{} or {first}-{last}", self.min, self.max),
            _ => format!("{}-{}", self.min, self.max),
        }
    }

    /// One value: a number in range or a name of this field.
    fn value(&self, text: &str) -> Result<u16, String> {
        if let Some(i) = self.names.iter().position(|n| *n == text) {
            return Ok(self.first_named + i as u16);
        }
        let allowed = self.allowed();
        match text.parse::<u16>() {
            Ok(n) if (self.min..=self.max).contains(&n) => Ok(n),
            Ok(n) => Err(format!("{} must be {allowed}, got {n}", self.name)),
            Err(_) => Err(format!("{} must be {allowed}, got `{text}`", self.name)),
        }
    }

    /// `a-b`, low to high. In the day of the week `SUN` ends a range as 7 (`MON-SUN`).
    fn range(&self, part: &str, low: &str, high: &str) -> Result<(), String> {
        let low = self.value(low)?;
        let high = if self.day_of_week && high == "SUN" { 7 } else { self.value(high)? };
        if low > high {
            return Err(format!("{} range `{part}` must go from low to high", self.name));
        }
        Ok(())
    }

    /// One item of a list.
    fn item(&self, part: &str) -> Result<(), String> {
        let wildcard = part == "*" || (part == "?" && (self.day_of_month || self.day_of_week));
        if wildcard {
            return Ok(());
        }
        if let Some((range, step)) = part.split_once('/') {
            // A step as wide as the field or wider matches the start only: `*/70` in seconds would
            // fire once a minute, not every 70 seconds. Refused rather than silently reinterpreted.
            let span = self.max - self.min;
            let step_ok = step.parse::<u16>().ok().filter(|s| (1..=span).contains(s));
            if step_ok.is_none() {
                return Err(format!("{} step must be 1-{span}, got {step}", self.name));
            }
            return match range.split_once('-') {
                _ if range == "*" => Ok(()),
                Some((low, high)) => self.range(part, low, high),
                None => Err(format!(
                    "{} `{part}` needs a range before the step: write `*/{step}` or `{range}-{}/{step}`",
                    self.name, self.max
                )),
            };
        }
        if self.day_of_week
            && let Some((day, nth)) = part.split_once('#')
        {
            self.value(day)?;
            return match nth.parse::<u8>() {
                Ok(1..=5) => Ok(()),
                _ => Err(format!(
                    "the occurrence after `#` must be 1-5 (the nth weekday of the month), got {nth}"
                )),
            };
        }
        if let Some((low, high)) = part.split_once('-') {
            return self.range(part, low, high);
        }
        if self.day_of_month && (part == "L" || part == "LW") {
            return Ok(());
        }
        if self.day_of_month
            && let Some(day) = part.strip_suffix('W')
        {
            return self.value(day).map(drop);
        }
        if self.day_of_week && part == "L" {
            return Ok(());
        }
        if self.day_of_week
            && let Some(day) = part.strip_suffix('L')
        {
            return self.value(day).map(drop);
        }
        self.value(part).map(drop)
    }
}

/// The checks the parser underneath does not make, or makes with messages that do not say which
/// field is wrong.
fn check(expr: &str) -> Result<(), String> {
    let upper = expr.trim().to_ascii_uppercase();
    if upper.is_empty() {
        return Err(format!("it is empty; write {SHAPE}"));
    }
    if upper.starts_with('@') {
        return match upper.as_str() {
            "@YEARLY" | "@ANNUALLY" | "@MONTHLY" | "@WEEKLY" | "@DAILY" | "@HOURLY" => Ok(()),
            "@REBOOT" => {
                Err("`@reboot` is not supported: cron jobs are inserted by the leader at each slot of \
                              the schedule, and a start of your program is not one; to run a job at \
                              startup, insert it from your application's startup code"
                    .to_string())
            }
            _ => Err(format!("`{}` is not a nickname jobsmith knows; use {NICKNAMES}", expr.trim())),
        };
    }
    let fields: Vec<&str> = upper.split_whitespace().collect();
    let order: &[Field] = match fields.len() {
        5 => &[MINUTES, HOURS, DAYS, MONTHS, WEEKDAYS],
        6 => &[SECONDS, MINUTES, HOURS, DAYS, MONTHS, WEEKDAYS],
        7 => {
            return Err("a seventh (year) field is not supported: an entry repeats without end; for a \
                        job at one moment, insert it with `schedule_at`"
                .to_string());
        }
        n => return Err(format!("write {SHAPE}; this has {n} field{}", if n == 1 { "" } else { "s" })),
    };
    for (field, text) in order.iter().zip(fields) {
        // `+` in front of the day of the week asks for day of the month AND day of the week.
        let text = if field.day_of_week { text.strip_prefix('+').unwrap_or(text) } else { text };
        for part in text.split(',') {
            if part.is_empty() {
                return Err(format!("{} list `{text}` has an empty item", field.name));
            }
            field.item(part)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(expr: &str) -> String {
        parse(expr).unwrap_err().reason().to_string()
    }

    #[test]
    fn every_field_names_itself_and_its_range() {
        assert_eq!(reason("61 * * * * *"), "seconds must be 0-59, got 61");
        assert_eq!(reason("61 * * * *"), "minutes must be 0-59, got 61");
        assert_eq!(reason("0 24 * * *"), "hours must be 0-23, got 24");
        assert_eq!(reason("0 0 0 * *"), "days of the month must be 1-31, got 0");
        assert_eq!(reason("0 0 * 0 *"), "months must be 1-12 or JAN-DEC, got 0");
        assert_eq!(reason("0 0 * * 8"), "days of the week must be 0-7 or SUN-SAT, got 8");
        assert_eq!(
            reason("0 0 * MON *"),
            "months must be 1-12 or JAN-DEC, got `MON`",
            "names belong to one field"
        );
        assert_eq!(reason("x * * * *"), "minutes must be 0-59, got `X`");
        assert_eq!(reason("0 9-70 * * *"), "hours must be 0-23, got 70");
        assert_eq!(reason("0 17-9 * * *"), "hours range `17-9` must go from low to high");
        assert_eq!(reason("0 1,,2 * * *"), "hours list `1,,2` has an empty item");
    }

    #[test]
    fn steps_must_fit_their_field() {
        assert_eq!(reason("*/70 * * * * *"), "seconds step must be 1-59, got 70");
        assert_eq!(reason("*/60 * * * *"), "minutes step must be 1-59, got 60");
        assert_eq!(reason("0 */0 * * *"), "hours step must be 1-23, got 0");
        assert_eq!(reason("0 */x * * *"), "hours step must be 1-23, got X");
        assert_eq!(
            reason("5/10 * * * *"),
            "minutes `5/10` needs a range before the step: write `*/10` or `5-59/10`"
        );
        assert!(parse("*/59 */59 */23 */30 */11 */7").is_ok());
        assert!(parse("0 9-17/2 * * *").is_ok());
    }

    #[test]
    fn nicknames_reboot_and_the_year_field() {
        for ok in ["@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@Daily"] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        assert!(reason("@reboot").starts_with("`@reboot` is not supported"));
        assert_eq!(
            reason("@midnight"),
            format!("`@midnight` is not a nickname jobsmith knows; use {NICKNAMES}")
        );
        assert!(reason("0 0 0 1 1 * 2030").starts_with("a seventh (year) field is not supported"));
        assert!(reason("* * * *").ends_with("this has 4 fields"), "{}", reason("* * * *"));
        assert!(reason("").starts_with("it is empty"));
    }

    #[test]
    fn the_extensions_still_parse() {
        for ok in [
            "0 0 L * *",
            "0 0 LW * *",
            "0 0 15W * *",
            "0 12 * * 5#2",
            "0 12 * * 5L",
            "0 12 ? * MON-SUN",
            "0 12 1 * +MON",
        ] {
            assert!(parse(ok).is_ok(), "{ok}: {:?}", parse(ok).err());
        }
        assert_eq!(
            reason("0 12 * * 5#6"),
            "the occurrence after `#` must be 1-5 (the nth weekday of the month), got 6"
        );
        assert_eq!(reason("0 0 32W * *"), "days of the month must be 1-31, got 32");
    }
}
