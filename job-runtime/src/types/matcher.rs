//! Which jobs a typed query matches, and what an update changes, as the engines read them: the
//! untyped side of `crate::query` (the typed side is generated per job by `#[job]`).

use chrono::{DateTime, Utc};

use super::job::JobRow;
use super::new_job::Schedule;
use super::request::Page;
use super::state::JobState;

/// The jobs a query matches. Every field narrows; the empty match is every row. Built by a typed
/// query (`SendReminder::query()...`), which fills `workers` with the job's name and aliases and
/// `args` only with fields of the job and values of their types.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobMatch {
    /// Any of these worker names (empty: any).
    pub workers: Vec<String>,
    /// Top-level arg fields equal to these JSON values (as the job's args encode them).
    pub args: Vec<(String, serde_json::Value)>,
    /// Any of these ids (`None`: any).
    pub ids: Option<Vec<i64>>,
    /// Any of these states (empty: any; each operation also keeps to the states it may touch).
    pub states: Vec<JobState>,
    /// Any of these queues (empty: any).
    pub queues: Vec<String>,
    /// Carrying every one of these tags.
    pub tags: Vec<String>,
    /// Meta keys equal to these JSON values.
    pub meta: Vec<(String, serde_json::Value)>,
    /// Meta keys that are present, whatever their value.
    pub meta_keys: Vec<String>,
    /// Due at or after this.
    pub scheduled_from: Option<DateTime<Utc>>,
    /// Due before this.
    pub scheduled_before: Option<DateTime<Utc>>,
    /// Ids at or above this: a bound on how far back a scan reaches (the dashboard's args field
    /// search looks at a window of ids at a time, so a rare value costs a bounded scan).
    pub min_id: Option<i64>,
    /// A value given to the query that could not be encoded: the operation fails with it and
    /// touches nothing.
    pub invalid: Option<String>,
}

impl JobMatch {
    /// Reads `field = value` (an args or meta field and the value it must equal), as the
    /// dashboard's search and the CLI's `--arg` take it: the value as JSON when it parses (`7`,
    /// `true`, `"7"`), else as text.
    ///
    /// ```
    /// use jobsmith::JobMatch;
    /// assert_eq!(JobMatch::parse_field("appointment_id = 7").unwrap(), ("appointment_id".into(), 7.into()));
    /// assert_eq!(JobMatch::parse_field("kind=day_before").unwrap().1, "day_before");
    /// assert!(JobMatch::parse_field("no value here").is_err());
    /// ```
    pub fn parse_field(text: &str) -> Result<(String, serde_json::Value), String> {
        let (field, value) = text
            .split_once('=')
            .ok_or("write the field and its value as `field = value`, e.g. `appointment_id = 7`")?;
        let (field, value) = (field.trim(), value.trim());
        if field.is_empty() {
            return Err("which field? write `field = value`".into());
        }
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        Ok((field.to_string(), value))
    }

    /// The states of `allowed` that the match names too (all of `allowed` if it names none), in
    /// `allowed`'s order: what an operation that may only touch `allowed` goes through.
    pub fn states_within(&self, allowed: &[JobState]) -> Vec<JobState> {
        allowed.iter().copied().filter(|s| self.states.is_empty() || self.states.contains(s)).collect()
    }

    /// The key's path for SQLite's JSON functions: `$."key"`, with `"` and `\` escaped, so any
    /// key (one with a dot, a quote) names exactly that key.
    pub fn json_path(key: &str) -> String {
        format!("$.\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// What an update sets on pending jobs (`available`, `scheduled`, `retryable`); `None` keeps the
/// field. Built by `jobsmith::Change`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobChange {
    /// New args, encoded.
    pub args: Option<serde_json::Value>,
    /// The job's worker name and declared uniqueness, to rebuild the unique key of a row that
    /// has one when its args or queue change.
    pub unique: (&'static str, Option<crate::job::UniqueOptions>),
    /// New due time.
    pub(crate) schedule: Option<Schedule>,
    /// New priority (0 to 9).
    pub priority: Option<u8>,
    /// New queue.
    pub queue: Option<String>,
    /// New tags (replacing the old ones).
    pub tags: Option<Vec<String>>,
    /// New meta (replacing the old object).
    pub meta: Option<serde_json::Value>,
}

impl JobChange {
    /// The new due time as (delay in milliseconds on the database's clock, absolute time): one of
    /// them is set when the change sets a schedule.
    pub fn schedule_parts(&self) -> Option<(Option<i64>, Option<DateTime<Utc>>)> {
        self.schedule.map(|s| s.parts())
    }

    /// Whether it changes what a unique key is made of (args or queue).
    pub fn rekeys(&self) -> bool {
        self.args.is_some() || self.queue.is_some()
    }

    /// The unique keys of `rows` (id, queue, args, all as changed), by the job's declared
    /// uniqueness; refused when rows have keys but the job declares none (they were made unique
    /// per insert, with options the row does not record).
    pub(crate) fn unique_keys(
        &self,
        rows: Vec<(i64, String, serde_json::Value)>,
    ) -> crate::Result<Vec<(i64, Vec<u8>)>> {
        let (worker, unique) = self.unique;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let Some(unique) = unique else {
            return Err(crate::Error::InvalidOption(format!(
                "{} jobs inserted unique per insert cannot change args or queue: their unique key \
                 cannot be rebuilt (declare the uniqueness on the job, or insert a new job)",
                rows.len()
            )));
        };
        let now = chrono::Utc::now();
        rows.into_iter()
            .map(|(id, queue, args)| {
                Ok((id, crate::insert::unique_key(worker, &queue, &args, &unique, now)?))
            })
            .collect()
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.args.is_none()
            && self.schedule.is_none()
            && self.priority.is_none()
            && self.queue.is_none()
            && self.tags.is_none()
            && self.meta.is_none()
    }
}

/// What an update did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Updated {
    /// How many pending jobs it changed.
    pub changed: u64,
    /// The matching jobs it did not change because they had started (`executing`): a job that
    /// starts while the update runs is either changed before it starts or listed here, never
    /// changed while it runs. Finished jobs are never changed and not listed.
    pub started: Vec<i64>,
}

/// One operation on the jobs a [`JobMatch`] selects (see [`crate::engine::QueryDatabase`]).
#[derive(Debug, Clone, PartialEq)]
pub enum QueryOp {
    /// How many match.
    Count,
    /// One page, newest first.
    List(Page),
    /// Cancel the unfinished ones.
    Cancel,
    /// Retry the discarded and cancelled ones.
    Retry,
    /// Delete (see [`crate::Query::delete`] for which).
    Delete,
    /// Change the pending ones.
    Update(JobChange),
}

impl QueryOp {
    /// The states an operator's bulk action with this operation changes: a count of the match
    /// within them says how many jobs it will touch. A delete takes every state but `executing`
    /// here (the typed [`crate::Query::delete`] takes only pending jobs unless states are named).
    pub fn bulk_states(&self) -> &'static [JobState] {
        match self {
            QueryOp::Cancel => {
                &[JobState::Available, JobState::Scheduled, JobState::Retryable, JobState::Executing]
            }
            QueryOp::Retry => &[JobState::Discarded, JobState::Cancelled],
            QueryOp::Delete => &[
                JobState::Available,
                JobState::Scheduled,
                JobState::Retryable,
                JobState::Completed,
                JobState::Discarded,
                JobState::Cancelled,
            ],
            QueryOp::Update(_) => &[JobState::Available, JobState::Scheduled, JobState::Retryable],
            QueryOp::Count | QueryOp::List(_) => &JobState::ALL,
        }
    }
}

/// What a [`QueryOp`] returns.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryOutput {
    /// Rows counted or changed (count, cancel, retry, delete).
    Count(u64),
    /// A page of rows (list).
    Rows(Vec<JobRow>),
    /// An update's report.
    Updated(Updated),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_quote_the_key() {
        assert_eq!(JobMatch::json_path("id"), r#"$."id""#);
        assert_eq!(JobMatch::json_path(r#"a.b"c\"#), r#"$."a.b\"c\\""#);
    }

    #[test]
    fn an_operation_keeps_to_its_states() {
        let pending = [JobState::Available, JobState::Scheduled, JobState::Retryable];
        assert_eq!(JobMatch::default().states_within(&pending), pending.to_vec());
        let m = JobMatch { states: vec![JobState::Scheduled, JobState::Completed], ..Default::default() };
        assert_eq!(m.states_within(&pending), vec![JobState::Scheduled]);
    }
}
