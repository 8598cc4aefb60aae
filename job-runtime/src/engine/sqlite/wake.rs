//! SQLite has no LISTEN/NOTIFY. Runtimes in this process register here by database file, and an
//! insert through any connection to that file wakes them directly. Other processes that share
//! the file find new work by polling.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use tokio::sync::mpsc;

use crate::types::Signal;

type Listeners = HashMap<String, Vec<(u64, mpsc::UnboundedSender<Signal>)>>;

static LISTENERS: LazyLock<Mutex<Listeners>> = LazyLock::new(Default::default);
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Registers `tx` for signals about `file`; returns the id to unregister with.
pub(super) fn register(file: &str, tx: mpsc::UnboundedSender<Signal>) -> u64 {
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    LISTENERS.lock().expect("wake registry").entry(file.to_string()).or_default().push((id, tx));
    id
}

pub(super) fn unregister(file: &str, id: u64) {
    let mut all = LISTENERS.lock().expect("wake registry");
    if let Some(list) = all.get_mut(file) {
        list.retain(|(i, _)| *i != id);
        if list.is_empty() {
            all.remove(file);
        }
    }
}

/// The key of an in-memory database: each engine over one is its own database, and its file
/// name ("") says nothing about which.
pub(super) fn memory_key() -> String {
    format!("{MEMORY}{}", NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

const MEMORY: &str = "memory:";

/// Tells every runtime of this process on `key` (a database file, or an engine's memory key).
///
/// An insert through a caller's connection to an in-memory database only knows the file name "",
/// not which database it was: it wakes every in-memory runtime (a wasted fetch, never a missed
/// one), and never carries a cancel, which must reach exactly one database.
pub(super) fn signal(key: &str, signals: impl IntoIterator<Item = Signal> + Clone) {
    let all = LISTENERS.lock().expect("wake registry");
    let targets: Vec<&Vec<(u64, mpsc::UnboundedSender<Signal>)>> = if key.is_empty() {
        all.iter().filter(|(k, _)| k.starts_with(MEMORY)).map(|(_, v)| v).collect()
    } else {
        all.get(key).into_iter().collect()
    };
    for list in targets {
        for (_, tx) in list {
            for s in signals.clone() {
                if key.is_empty() && matches!(s, Signal::CancelJob(_)) {
                    continue;
                }
                let _ = tx.send(s);
            }
        }
    }
}

/// Waiters of this process for jobs of a database file: each gets the ids of jobs that reached a
/// final state through this process's engines (see `Notifications::listen_finished`).
type FinishedListeners = HashMap<String, Vec<(u64, mpsc::UnboundedSender<Vec<i64>>)>>;

static FINISHED: LazyLock<Mutex<FinishedListeners>> = LazyLock::new(Default::default);

/// How many waiter listeners are registered, in any file: the result path reads it (one atomic
/// load) to skip collecting ids when nobody waits.
static FINISHED_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Registers a waiter listener for `file`; returns the id to unregister with.
pub(super) fn register_finished(file: &str, tx: mpsc::UnboundedSender<Vec<i64>>) -> u64 {
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    FINISHED.lock().expect("finished registry").entry(file.to_string()).or_default().push((id, tx));
    FINISHED_COUNT.fetch_add(1, std::sync::atomic::Ordering::Release);
    id
}

pub(super) fn unregister_finished(file: &str, id: u64) {
    let mut all = FINISHED.lock().expect("finished registry");
    if let Some(list) = all.get_mut(file) {
        let before = list.len();
        list.retain(|(i, _)| *i != id);
        FINISHED_COUNT.fetch_sub(before - list.len(), std::sync::atomic::Ordering::Release);
        if list.is_empty() {
            all.remove(file);
        }
    }
}

/// Whether any waiter listens, for any file.
pub(super) fn anyone_waits() -> bool {
    FINISHED_COUNT.load(std::sync::atomic::Ordering::Acquire) > 0
}

/// Tells the waiters of `file` that `ids` may have finished (empty: look at every job).
pub(super) fn finished(file: &str, ids: Vec<i64>) {
    let all = FINISHED.lock().expect("finished registry");
    if let Some(list) = all.get(file) {
        for (_, tx) in list {
            let _ = tx.send(ids.clone());
        }
    }
}
