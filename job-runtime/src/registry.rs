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
    /// The state types the job takes.
    pub states: &'static [crate::app_state::StateNeed],
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
            states: J::STATES,
        }
    }
}

fn build_empty<J: Job>() -> crate::error::Result<crate::insert::NewJob> {
    use crate::insert::JobExt;
    let job: J = decode_args(serde_json::json!({})).map_err(crate::error::Error::InvalidOption)?;
    job.build()
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

/// The workers a runtime knows, by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    workers: HashMap<&'static str, WorkerEntry>,
}

impl Registry {
    /// Every worker linked into this binary. Two workers with one name are refused.
    pub fn from_inventory() -> Result<Self, Error> {
        Self::from_entries(inventory::iter::<WorkerEntry>.into_iter().copied())
    }

    /// A registry from explicit entries; duplicate names are an error naming the worker.
    pub fn from_entries(entries: impl IntoIterator<Item = WorkerEntry>) -> Result<Self, Error> {
        let mut workers = HashMap::new();
        for entry in entries {
            if workers.insert(entry.name, entry).is_some() {
                return Err(Error::DuplicateWorker(entry.name.to_string()));
            }
        }
        Ok(Self { workers })
    }

    /// The worker of that name.
    pub fn get(&self, name: &str) -> Option<&WorkerEntry> {
        self.workers.get(name)
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
