//! Cron entries: when they fire, and which slots are due.
//!
//! Each firing is a *slot*: a time the expression matches, in the entry's time zone. The leader
//! asks [`due_slots`] which slots fell due since the entry's last recorded slot, and records the
//! newest one in the same transaction as the inserted jobs (see `Engine::cron_fire`), so a slot
//! fires once however many nodes, leader changes or restarts there are. Every cron job also
//! carries a unique key per entry and slot, so even two leaders at once cannot double-fire.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::{Cron, Direction};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::insert::{InsertBuilder, NewJob};
use crate::job::Job;
use crate::state::JobState;
use crate::types::{CronEntryRow, CronEntryWrite, JobTemplate};

/// What to do with slots that fell due while no node was running (or no leader was elected).
///
/// A slot is *missed* when it is more than [`MISSED_AFTER`] old by the time the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedSlots {
    /// Run once for the newest missed slot, skip the older ones (the default: a daily report that
    /// was missed at 02:00 runs once when the cluster comes back).
    #[default]
    RunOnce,
    /// Run none of them: only slots of the last minute (late, not missed) fire.
    Skip,
    /// Run every missed slot, oldest first, but at most this many (the newest ones).
    RunAll {
        /// The most slots one catch-up fires.
        max: u32,
    },
}

impl MissedSlots {
    /// The stored and printed form: `run-once`, `skip` or `run-all:<max>`.
    fn text(self) -> String {
        match self {
            MissedSlots::RunOnce => "run-once".into(),
            MissedSlots::Skip => "skip".into(),
            MissedSlots::RunAll { max } => format!("run-all:{max}"),
        }
    }
}

/// The stored and printed form, which `parse` reads back (`_` for `-` too):
///
/// ```
/// use jobsmith::cron::MissedSlots;
/// assert_eq!(MissedSlots::RunAll { max: 5 }.to_string(), "run-all:5");
/// assert_eq!("run_all:5".parse::<MissedSlots>().unwrap(), MissedSlots::RunAll { max: 5 });
/// assert!("sometimes".parse::<MissedSlots>().is_err());
/// ```
impl std::fmt::Display for MissedSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl FromStr for MissedSlots {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim().replace('_', "-");
        match text.as_str() {
            "run-once" => Ok(MissedSlots::RunOnce),
            "skip" => Ok(MissedSlots::Skip),
            _ => text
                .strip_prefix("run-all:")
                .and_then(|max| max.parse::<u32>().ok())
                .filter(|max| *max >= 1)
                .map(|max| MissedSlots::RunAll { max })
                .ok_or_else(|| {
                    Error::InvalidOption(format!(
                        "missed-slot policy `{text}`: use run-once, skip or run-all:<max> (max 1 or more)"
                    ))
                }),
        }
    }
}

/// How old a due slot must be to count as missed rather than just due.
pub const MISSED_AFTER: Duration = Duration::from_secs(60);

/// A parsed schedule: five fields (minute hour day month weekday) with names, ranges, steps and
/// lists, an optional leading seconds field, and `@hourly`, `@daily`, `@weekly`, `@monthly`,
/// `@yearly`; evaluated in an IANA time zone. No year field, no `@reboot`, no step wider than its
/// field: each is refused with a message naming the field (the `job-cron` crate, shared with
/// `#[job(cron = ...)]`).
///
/// Daylight saving: a fixed-time slot (`30 1 * * *`) that falls in a spring-forward gap runs at
/// the first valid time after the gap, and in a fall-back overlap runs once. Interval and wildcard
/// expressions (`0 * * * *`, `*/15 * * * *`) follow the wall clock: slots inside a gap are
/// skipped, and the repeated hour of a fall-back runs twice. (The croner crate's documented
/// behaviour; the fixed-time cases are tested here.)
#[derive(Debug, Clone)]
pub struct Schedule {
    expr: String,
    cron: Cron,
    tz: Tz,
}

impl Schedule {
    /// Parses `expr` for time zone `tz` (an IANA name such as `America/New_York`, or `UTC`).
    ///
    /// ```
    /// let s = jobsmith::cron::Schedule::parse("0 2 * * *", "America/New_York").unwrap();
    /// assert_eq!(s.expr(), "0 2 * * *");
    /// assert!(jobsmith::cron::Schedule::parse("61 * * * *", "UTC").is_err());
    /// ```
    pub fn parse(expr: &str, tz: &str) -> Result<Self> {
        // The same check `#[job(cron = ...)]` makes at compile time, so both refuse alike.
        let cron = jobsmith_cron::parse(expr).map_err(|e| Error::InvalidOption(e.to_string()))?;
        let tz = Tz::from_str(tz).map_err(|_| Error::InvalidOption(format!("unknown time zone `{tz}`")))?;
        Ok(Self { expr: expr.to_string(), cron, tz })
    }

    /// The expression as written.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The time zone.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The newest slots at or before `now` and after `after`, newest first, at most `max`.
    pub fn slots_back(
        &self,
        after: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        max: usize,
    ) -> Vec<DateTime<Utc>> {
        let local = now.with_timezone(&self.tz);
        self.cron
            .iter_from(local, Direction::Backward)
            .map(|t| t.with_timezone(&Utc))
            .take_while(|t| after.is_none_or(|a| *t > a))
            .take(max)
            .collect()
    }

    /// The expression in words ("At 02:00 AM, Monday through Friday"), for listings; the
    /// expression itself where it has no wording (the cronspeak crate describes five fields; a
    /// seconds field is worded here).
    ///
    /// ```
    /// let s = jobsmith::cron::Schedule::parse("*/15 * * * *", "UTC").unwrap();
    /// assert_eq!(s.describe(), "Every 15 minutes");
    /// ```
    pub fn describe(&self) -> String {
        let fields: Vec<&str> = self.expr.split_whitespace().collect();
        let words = |expr: &str| cronspeak::describe(expr).ok();
        let described = match fields.as_slice() {
            [seconds, rest @ ..] if rest.len() == 5 => {
                let rest = rest.join(" ");
                match (*seconds, rest.as_str()) {
                    ("0", rest) => words(rest),
                    ("*", "* * * * *") => Some("Every second".to_string()),
                    (s, "* * * * *") if s.starts_with("*/") => Some(format!("Every {} seconds", &s[2..])),
                    (s, rest) => words(rest).map(|w| format!("At second {s}; {w}")),
                }
            }
            _ => words(&self.expr),
        };
        described.unwrap_or_else(|| self.expr.clone())
    }

    /// The first slot after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t.with_timezone(&self.tz), false).ok().map(|t| t.with_timezone(&Utc))
    }
}

/// Which slots to fire now, oldest first, and the slot to record as the entry's last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Slots to insert jobs for, oldest first.
    pub fire: Vec<DateTime<Utc>>,
    /// The newest due slot (recorded even when skipped), or `None` if nothing is due.
    pub last: Option<DateTime<Utc>>,
}

/// The slots due at `now` for an entry whose last recorded slot is `last`.
///
/// Every slot younger than [`MISSED_AFTER`] fires, each once: it is merely late (a leader
/// takeover takes seconds), not missed. Only older slots fall under the `missed` policy.
/// An entry seen for the first time (`last == None`) fires nothing for the past: it records the
/// newest slot and fires from the next one on.
pub fn due_slots(
    schedule: &Schedule,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    missed: MissedSlots,
) -> Due {
    let Some(last) = last else {
        let newest = schedule.slots_back(None, now, 1).into_iter().next();
        return Due { fire: Vec::new(), last: newest.or(Some(now)) };
    };
    let missed_cutoff = now - chrono::Duration::from_std(MISSED_AFTER).expect("small duration");
    let older_wanted = match missed {
        MissedSlots::RunAll { max } => max.max(1) as usize,
        MissedSlots::RunOnce => 1,
        MissedSlots::Skip => 0,
    };
    // Slots have a resolution of one second, so at most this many are younger than the cutoff;
    // one more tells whether any older slot exists at all.
    let recent_max = MISSED_AFTER.as_secs() as usize + 1;
    let newest_first = schedule.slots_back(Some(last), now, recent_max + older_wanted.max(1));
    let Some(&newest) = newest_first.first() else {
        return Due { fire: Vec::new(), last: None };
    };
    let (recent, older): (Vec<_>, Vec<_>) = newest_first.into_iter().partition(|s| *s >= missed_cutoff);
    let mut fire: Vec<DateTime<Utc>> = recent;
    fire.extend(older.into_iter().take(older_wanted));
    fire.reverse();
    Due { fire, last: Some(newest) }
}

/// One cron entry: a schedule, the job it inserts, and its catch-up policy.
///
/// ```
/// # use jobsmith::prelude::*;
/// # #[jobsmith::job] async fn sync_feed(feed: String) -> Result<(), String> { Ok(()) }
/// let entry = jobsmith::cron::CronEntry::new("*/5 * * * *", SyncFeed { feed: "news".into() })
///     .unwrap()
///     .timezone("Europe/Paris")
///     .unwrap()
///     .missed(jobsmith::cron::MissedSlots::Skip);
/// // Named `<worker>:<expr>` unless named otherwise.
/// assert!(entry.name().ends_with("SyncFeed:*/5 * * * *"));
/// ```
#[derive(Debug, Clone)]
pub struct CronEntry {
    name: String,
    schedule: Schedule,
    job: NewJob,
    missed: MissedSlots,
}

impl CronEntry {
    /// An entry that inserts `job` (with its per-insert options) at every slot of `expr`, in UTC.
    /// Its name, which keys its bookkeeping, defaults to `<worker>:<expr>`.
    pub fn new<J: Job>(expr: &str, job: impl Into<InsertBuilder<J>>) -> Result<Self> {
        let schedule = Schedule::parse(expr, "UTC")?;
        let mut job = job.into().build()?;
        crate::trace_context::forget(&mut job.meta);
        Ok(Self { name: format!("{}:{expr}", J::NAME), schedule, job, missed: MissedSlots::default() })
    }

    /// Built from a registered worker's `#[job(cron = ...)]`.
    pub(crate) fn from_parts(name: String, schedule: Schedule, mut job: NewJob) -> Self {
        crate::trace_context::forget(&mut job.meta);
        Self { name, schedule, job, missed: MissedSlots::default() }
    }

    /// Evaluate the expression in `tz` (an IANA name).
    pub fn timezone(mut self, tz: &str) -> Result<Self> {
        self.schedule = Schedule::parse(self.schedule.expr(), tz)?;
        Ok(self)
    }

    /// The catch-up policy. Default [`MissedSlots::RunOnce`].
    pub fn missed(mut self, missed: MissedSlots) -> Self {
        self.missed = missed;
        self
    }

    /// A name of your own; keep it stable across deploys, it keys the entry's last slot.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The entry's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The queue its jobs go to.
    pub fn queue(&self) -> &str {
        self.job.queue()
    }

    /// The policy.
    pub fn missed_policy(&self) -> MissedSlots {
        self.missed
    }

    /// The entry as stored by the leader's catalog or by [`crate::CronAdmin::save`].
    pub(crate) fn to_write(&self) -> CronEntryWrite {
        CronEntryWrite {
            name: self.name.clone(),
            expr: self.schedule.expr().to_string(),
            timezone: self.schedule.timezone().name().to_string(),
            missed: self.missed.to_string(),
            job: JobTemplate::of(&self.job),
        }
    }

    /// A stored entry, as the leader runs it: the job type must be one this node registered and
    /// the args must decode as that type's. The error says what is wrong, for the cron page.
    pub(crate) fn from_row(
        row: &CronEntryRow,
        registry: &crate::registry::Registry,
    ) -> std::result::Result<Self, String> {
        let schedule = Schedule::parse(&row.expr, &row.timezone).map_err(|e| e.to_string())?;
        let missed: MissedSlots = row.missed.parse().map_err(|e: Error| e.to_string())?;
        let worker = registry
            .get(&row.job.worker)
            .ok_or_else(|| format!("no job type named `{}` is registered on the leader", row.job.worker))?;
        (worker.check_args)(&row.job.args)
            .map_err(|e| format!("the args do not decode as `{}`: {e}", row.job.worker))?;
        let mut job = row.job.to_job();
        // The registered name, so a row stored under an alias runs as the job type it now is.
        job.worker = std::borrow::Cow::Borrowed(worker.name);
        Ok(Self { name: row.name.clone(), schedule, job, missed })
    }

    /// The job for `slot`: unique per entry and slot in every state, with the slot in its meta.
    pub(crate) fn job_for(&self, slot: DateTime<Utc>) -> NewJob {
        let mut job = self.job.clone();
        let mut hasher = Sha256::new();
        hasher.update(b"cron\0");
        hasher.update(self.name.as_bytes());
        hasher.update(b"\0");
        hasher.update(slot.timestamp_millis().to_be_bytes());
        job.unique_key = Some(hasher.finalize().to_vec());
        job.unique_states = Some(JobState::ALL.iter().fold(0, |acc, s| acc | s.bit()));
        if let Some(meta) = job.meta.as_object_mut() {
            meta.insert("cron".into(), self.name.clone().into());
            meta.insert("cron_slot".into(), slot.to_rfc3339().into());
        }
        job
    }
}

/// The job that "run now" inserts for entry `name`: its template, outside the slot schedule
/// (not unique), marked in its meta.
pub(crate) fn run_now_job(name: &str, template: &JobTemplate) -> NewJob {
    let mut job = template.to_job();
    if let Some(meta) = job.meta.as_object_mut() {
        meta.insert("cron".into(), name.into());
        meta.insert("cron_run_now".into(), true.into());
    }
    job
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn a_new_entry_fires_nothing_for_the_past() {
        let s = Schedule::parse("*/5 * * * *", "UTC").unwrap();
        let due = due_slots(&s, None, utc(2026, 1, 1, 10, 7, 0), MissedSlots::RunAll { max: 10 });
        assert!(due.fire.is_empty());
        assert_eq!(due.last, Some(utc(2026, 1, 1, 10, 5, 0)));
    }

    #[test]
    fn due_slots_fire_once_and_not_again() {
        let s = Schedule::parse("*/5 * * * *", "UTC").unwrap();
        let last = Some(utc(2026, 1, 1, 10, 0, 0));
        let due = due_slots(&s, last, utc(2026, 1, 1, 10, 5, 0), MissedSlots::RunOnce);
        assert_eq!(due.fire, vec![utc(2026, 1, 1, 10, 5, 0)]);
        let again = due_slots(&s, due.last, utc(2026, 1, 1, 10, 5, 30), MissedSlots::RunOnce);
        assert!(again.fire.is_empty() && again.last.is_none());
    }

    #[test]
    fn missed_slot_policies() {
        let s = Schedule::parse("0 * * * *", "UTC").unwrap();
        let last = Some(utc(2026, 1, 1, 0, 0, 0));
        let now = utc(2026, 1, 1, 5, 30, 0); // 01:00..05:00 were missed
        assert_eq!(due_slots(&s, last, now, MissedSlots::RunOnce).fire, vec![utc(2026, 1, 1, 5, 0, 0)]);
        assert!(due_slots(&s, last, now, MissedSlots::Skip).fire.is_empty());
        assert_eq!(
            due_slots(&s, last, now, MissedSlots::RunAll { max: 3 }).fire,
            vec![utc(2026, 1, 1, 3, 0, 0), utc(2026, 1, 1, 4, 0, 0), utc(2026, 1, 1, 5, 0, 0)]
        );
        for policy in [MissedSlots::RunOnce, MissedSlots::Skip, MissedSlots::RunAll { max: 3 }] {
            assert_eq!(due_slots(&s, last, now, policy).last, Some(utc(2026, 1, 1, 5, 0, 0)));
        }
        // A slot due just now is not "missed", so Skip fires it.
        assert_eq!(due_slots(&s, last, utc(2026, 1, 1, 5, 0, 10), MissedSlots::Skip).fire.len(), 1);
    }

    #[test]
    fn late_slots_younger_than_the_missed_threshold_all_fire() {
        // A leader takeover of a few seconds on a per-second entry: the slots of 10:00:01..:05 are
        // late, not missed, so every policy fires each of them once.
        let s = Schedule::parse("* * * * * *", "UTC").unwrap();
        let last = Some(utc(2026, 1, 1, 10, 0, 0));
        let now = utc(2026, 1, 1, 10, 0, 5);
        let expected: Vec<_> = (1..=5).map(|sec| utc(2026, 1, 1, 10, 0, sec)).collect();
        for policy in [MissedSlots::RunOnce, MissedSlots::Skip, MissedSlots::RunAll { max: 2 }] {
            let due = due_slots(&s, last, now, policy);
            assert_eq!(due.fire, expected, "{policy:?}");
            assert_eq!(due.last, Some(now));
        }
        // After a five-minute outage: the last minute's slots are late and fire; of the older
        // ones, RunOnce fires the newest, Skip none, RunAll its newest `max`.
        let now = utc(2026, 1, 1, 10, 5, 0);
        let cutoff = utc(2026, 1, 1, 10, 4, 0);
        let once = due_slots(&s, last, now, MissedSlots::RunOnce).fire;
        assert_eq!(once.len(), 62, "61 slots from 10:04:00 to 10:05:00, and 10:03:59");
        assert_eq!(once[0], utc(2026, 1, 1, 10, 3, 59));
        assert!(once[1..].iter().all(|t| *t >= cutoff));
        let skip = due_slots(&s, last, now, MissedSlots::Skip).fire;
        assert_eq!(skip.len(), 61);
        assert!(skip.iter().all(|t| *t >= cutoff));
        let all = due_slots(&s, last, now, MissedSlots::RunAll { max: 3 }).fire;
        assert_eq!(all.len(), 64);
        assert_eq!(all[0], utc(2026, 1, 1, 10, 3, 57));
    }

    #[test]
    fn seconds_field_and_nicknames() {
        let s = Schedule::parse("*/2 * * * * *", "UTC").unwrap();
        let due = due_slots(
            &s,
            Some(utc(2026, 1, 1, 0, 0, 0)),
            utc(2026, 1, 1, 0, 0, 7),
            MissedSlots::RunAll { max: 10 },
        );
        assert_eq!(due.fire.len(), 3);
        assert_eq!(due.last, Some(utc(2026, 1, 1, 0, 0, 6)));
        let hourly = Schedule::parse("@hourly", "UTC").unwrap();
        assert_eq!(hourly.next_after(utc(2026, 1, 1, 0, 30, 0)), Some(utc(2026, 1, 1, 1, 0, 0)));
        let named = Schedule::parse("0 9 * JAN-MAR MON-FRI", "UTC").unwrap();
        assert_eq!(named.next_after(utc(2026, 1, 3, 0, 0, 0)), Some(utc(2026, 1, 5, 9, 0, 0)), "next Monday");
    }

    #[test]
    fn time_zones_and_daylight_saving() {
        // 02:00 daily in New York: 07:00 UTC in winter, 06:00 UTC in summer.
        let s = Schedule::parse("0 2 * * *", "America/New_York").unwrap();
        assert_eq!(s.next_after(utc(2026, 1, 10, 0, 0, 0)), Some(utc(2026, 1, 10, 7, 0, 0)));
        assert_eq!(s.next_after(utc(2026, 7, 10, 0, 0, 0)), Some(utc(2026, 7, 10, 6, 0, 0)));
        // 2026-03-08 has no 02:00 in New York (02:00 -> 03:00): the slot runs at 03:00 EDT.
        assert_eq!(s.next_after(utc(2026, 3, 8, 0, 0, 0)), Some(utc(2026, 3, 8, 7, 0, 0)));
        // 2026-11-01 01:30 happens twice (fall back): the slot runs once.
        let half = Schedule::parse("30 1 * * *", "America/New_York").unwrap();
        let first = half.next_after(utc(2026, 11, 1, 0, 0, 0)).unwrap();
        let second = half.next_after(first).unwrap();
        assert_eq!(first, utc(2026, 11, 1, 5, 30, 0));
        assert_eq!(second, utc(2026, 11, 2, 6, 30, 0), "not again an hour later");
        assert!(Schedule::parse("0 2 * * *", "Mars/Olympus").is_err());
    }

    #[test]
    fn malformed_expressions_are_refused_naming_the_field_and_its_range() {
        let err = |expr: &str| Schedule::parse(expr, "UTC").unwrap_err().to_string();
        for (expr, says) in [
            ("61 * * * * *", "seconds must be 0-59, got 61"),
            ("61 * * * *", "minutes must be 0-59, got 61"),
            ("0 25 * * *", "hours must be 0-23, got 25"),
            ("0 0 32 * *", "days of the month must be 1-31, got 32"),
            ("0 0 * 13 *", "months must be 1-12 or JAN-DEC, got 13"),
            ("0 0 * * 8", "days of the week must be 0-7 or SUN-SAT, got 8"),
            ("0 0-70 * * *", "hours must be 0-23, got 70"),
            ("*/70 * * * * *", "seconds step must be 1-59, got 70"),
            ("0 */24 * * *", "hours step must be 1-23, got 24"),
            ("@reboot", "`@reboot` is not supported"),
            ("0 0 0 1 1 * 2030", "a seventh (year) field is not supported"),
            ("* * * *", "five fields"),
        ] {
            let text = err(expr);
            assert!(
                text.starts_with(&format!("invalid option: cron expression `{expr}` is invalid: ")),
                "{text}"
            );
            assert!(text.contains(says), "`{expr}`: {text}");
        }
        assert!(err("@reboot").contains("startup"), "says what to do instead");
        // The edges of each range are fine.
        for expr in ["59 59 23 31 12 7", "0 0 0 1 1 0", "*/59 * * * * *", "0 */23 * * *", "@annually"] {
            Schedule::parse(expr, "UTC").unwrap_or_else(|e| panic!("`{expr}`: {e}"));
        }
    }
}
