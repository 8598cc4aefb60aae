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
