//! The worker registry: every `#[job]` submits an entry through `inventory`, and a runtime builds
//! its name map from them at start.

use std::collections::HashMap;
use std::time::Duration;

use crate::context::JobContext;
use crate::error::Error;
use crate::job::{Job, JobOptions, PerformFuture};

/// Decodes a row's args and starts the job; `Err` carries a message that names the bad field.
pub type DecodeAndPerform = fn(serde_json::Value, JobContext) -> Result<PerformFuture, String>;

/// One registered worker: a small const entry built by [`WorkerEntry::of`].
#[derive(Debug, Clone, Copy)]
pub struct WorkerEntry {
    /// The stored worker name.
    pub name: &'static str,
    /// The job type's declared options.
    pub options: JobOptions,
    /// Decode, then perform.
    pub run: DecodeAndPerform,
    /// The job type's retry delay.
    pub backoff: fn(u32) -> Duration,
    /// Builds the job from empty args, for `#[job(cron = ...)]` on a job without args.
    pub build_empty: fn() -> crate::error::Result<crate::insert::NewJob>,
    /// Whether args decode as this job type, for cron entries stored as JSON (the message says
    /// which field does not).
    pub check_args: fn(&serde_json::Value) -> Result<(), String>,
    /// The state types the job takes.
    pub states: &'static [crate::app_state::StateNeed],
    /// Earlier names whose rows this worker runs.
    pub aliases: &'static [&'static str],
}

impl WorkerEntry {
    /// The entry of job type `J`; `#[job]` submits `WorkerEntry::of::<J>()`.
    pub const fn of<J: Job>() -> Self {
        WorkerEntry {
            name: J::NAME,
            options: J::OPTIONS,
            run: decode_and_perform::<J>,
            backoff: J::backoff,
            build_empty: build_empty::<J>,
            check_args: check_args::<J>,
            states: J::STATES,
            aliases: J::ALIASES,
        }
    }
}

fn build_empty<J: Job>() -> crate::error::Result<crate::insert::NewJob> {
    use crate::insert::JobExt;
    let job: J = decode_args(serde_json::json!({})).map_err(crate::error::Error::InvalidOption)?;
    job.build()
}

fn check_args<J: Job>(args: &serde_json::Value) -> Result<(), String> {
    decode_args::<J>(args.clone()).map(|_| ())
}

inventory::collect!(WorkerEntry);

/// Decodes `args` into `J` and starts its `perform`. The error names the path of the field that
/// did not decode (`kind: unknown variant ...`).
pub fn decode_and_perform<J: Job>(args: serde_json::Value, ctx: JobContext) -> Result<PerformFuture, String> {
    let job: J = decode_args(args)?;
    Ok(job.perform(ctx))
}

/// Decodes args with the failing field's path in the message.
pub fn decode_args<J: serde::de::DeserializeOwned>(args: serde_json::Value) -> Result<J, String> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            format!("args do not decode: {}", e.inner())
        } else {
            format!("args do not decode at `{path}`: {}", e.inner())
        }
    })
}

/// The workers a runtime knows, by name, and the earlier names (aliases) they answer to.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    workers: HashMap<&'static str, WorkerEntry>,
    /// Alias to the name of the worker that lists it.
    aliases: HashMap<&'static str, &'static str>,
}

impl Registry {
    /// Every worker linked into this binary. Two workers with one name are refused.
    pub fn from_inventory() -> Result<Self, Error> {
        Self::from_entries(inventory::iter::<WorkerEntry>.into_iter().copied())
    }

    /// A registry from explicit entries. Names and aliases together must be unique: two workers
    /// of one name are [`Error::DuplicateWorker`], an alias that is another worker's name or alias
    /// is [`Error::AliasTaken`].
    pub fn from_entries(entries: impl IntoIterator<Item = WorkerEntry>) -> Result<Self, Error> {
        let entries: Vec<WorkerEntry> = entries.into_iter().collect();
        let mut workers = HashMap::new();
        for entry in &entries {
            if workers.insert(entry.name, *entry).is_some() {
                return Err(Error::DuplicateWorker(entry.name.to_string()));
            }
        }
        // Aliases after every name, so an alias naming a worker is found whatever the order.
        let mut aliases: HashMap<&'static str, &'static str> = HashMap::new();
        for entry in &entries {
            for &alias in entry.aliases {
                let holder = workers.get(alias).map(|w| w.name).or_else(|| aliases.get(alias).copied());
                if let Some(holder) = holder {
                    return Err(Error::AliasTaken {
                        alias: alias.to_string(),
                        of: entry.name.to_string(),
                        taken_by: holder.to_string(),
                    });
                }
                aliases.insert(alias, entry.name);
            }
        }
        Ok(Self { workers, aliases })
    }

    /// The worker of that name or alias.
    pub fn get(&self, name: &str) -> Option<&WorkerEntry> {
        self.workers.get(name).or_else(|| self.workers.get(self.aliases.get(name)?))
    }

    /// Every worker.
    pub fn iter(&self) -> impl Iterator<Item = &WorkerEntry> {
        self.workers.values()
    }

    /// How many workers are known.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether no worker is known.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &'static str, aliases: &'static [&'static str]) -> WorkerEntry {
        fn run(_: serde_json::Value, _: JobContext) -> Result<PerformFuture, String> {
            Err("not run in these tests".into())
        }
        fn build_empty() -> crate::error::Result<crate::insert::NewJob> {
            Err(Error::InvalidOption("not built in these tests".into()))
        }
        WorkerEntry {
            name,
            options: JobOptions::DEFAULT,
            run,
            backoff: crate::backoff::default_backoff,
            build_empty,
            check_args: |_| Ok(()),
            states: &[],
            aliases,
        }
    }

    #[test]
    fn an_alias_finds_its_worker_which_is_listed_once() {
        let registry =
            Registry::from_entries([entry("new::Send", &["old::Send", "older::Send"]), entry("other", &[])])
                .unwrap();
        assert_eq!(registry.get("old::Send").map(|w| w.name), Some("new::Send"));
        assert_eq!(registry.get("older::Send").map(|w| w.name), Some("new::Send"));
        assert_eq!(registry.len(), 2);
        let mut names: Vec<&str> = registry.iter().map(|w| w.name).collect();
        names.sort_unstable();
        assert_eq!(names, ["new::Send", "other"]);
    }

    #[test]
    fn names_and_aliases_together_are_unique() {
        // An alias that is another worker's name, whichever comes first.
        for entries in [[entry("a", &["b"]), entry("b", &[])], [entry("b", &[]), entry("a", &["b"])]] {
            let err = Registry::from_entries(entries).unwrap_err();
            assert!(
                matches!(&err, Error::AliasTaken { alias, of, taken_by } if alias == "b" && of == "a" && taken_by == "b"),
                "{err}"
            );
        }
        // Two workers with one alias.
        let err = Registry::from_entries([entry("a", &["old"]), entry("b", &["old"])]).unwrap_err();
        assert!(
            err.to_string().contains("alias `old` of `b` is already the name or an alias of `a`"),
            "{err}"
        );
    }
}
