//! The live state of one queue on this node: its limit, what runs, whether it is paused.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use tokio::sync::{Mutex, Notify};

/// Shared between the queue's producer, the jobs it started and the runtime handle.
#[derive(Debug)]
pub(crate) struct QueueState {
    pub(crate) name: String,
    limit: AtomicUsize,
    running: AtomicUsize,
    paused: AtomicBool,
    /// Most jobs of this queue executing across all nodes; 0 for none.
    global_limit: AtomicU32,
    /// Set when there may be new work (an insert, a staged row, a resume); cleared by the producer.
    work_hint: AtomicBool,
    /// Wakes the producer: work may have arrived, a slot freed, or the limit changed.
    wake: Notify,
    /// Held by the producer from reading the free slots until its fetch returns, so a pause can
    /// wait out a fetch already in flight (see `Runtime::pause_queue`).
    fetch_gate: Mutex<()>,
}

impl QueueState {
    pub(crate) fn new(name: String, limit: usize) -> Self {
        Self {
            name,
            limit: AtomicUsize::new(limit),
            running: AtomicUsize::new(0),
            paused: AtomicBool::new(false),
            global_limit: AtomicU32::new(0),
            work_hint: AtomicBool::new(true),
            wake: Notify::new(),
            fetch_gate: Mutex::new(()),
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Acquire)
    }

    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Slots free for new jobs (0 while paused).
    pub(crate) fn free(&self) -> usize {
        if self.is_paused() { 0 } else { self.limit().saturating_sub(self.running()) }
    }

    pub(crate) fn started(&self, n: usize) {
        self.running.fetch_add(n, Ordering::AcqRel);
    }

    /// A job ended: free its slot and let the producer refill it.
    pub(crate) fn finished(&self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
        self.wake.notify_one();
    }

    /// New work may be waiting.
    pub(crate) fn hint_work(&self) {
        self.work_hint.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub(crate) fn take_work_hint(&self) -> bool {
        self.work_hint.swap(false, Ordering::AcqRel)
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await
    }

    /// Taken around one fetch; see `fetch_gate`.
    pub(crate) async fn fetch_gate(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.fetch_gate.lock().await
    }

    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        self.hint_work();
    }

    pub(crate) fn global_limit(&self) -> Option<u32> {
        Some(self.global_limit.load(Ordering::Acquire)).filter(|n| *n > 0)
    }

    pub(crate) fn set_global_limit(&self, limit: Option<u32>) {
        self.global_limit.store(limit.unwrap_or(0), Ordering::Release);
        self.hint_work();
    }

    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Release);
        self.hint_work();
    }
}

/// A snapshot of a queue for callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// Queue name.
    pub name: String,
    /// Most jobs this node runs at once on the queue.
    pub limit: usize,
    /// Jobs running now on this node.
    pub running: usize,
    /// Whether fetching is paused on this node.
    pub paused: bool,
    /// Most jobs of the queue executing across all nodes, if limited.
    pub global_limit: Option<u32>,
}

impl From<&QueueState> for QueueInfo {
    fn from(q: &QueueState) -> Self {
        QueueInfo {
            name: q.name.clone(),
            limit: q.limit(),
            running: q.running(),
            paused: q.is_paused(),
            global_limit: q.global_limit(),
        }
    }
}
