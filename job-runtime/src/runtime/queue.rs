//! The live state of one queue on this node: its limit, what runs, whether it is paused.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Shared between the queue's producer, the jobs it started and the runtime handle.
#[derive(Debug)]
pub(crate) struct QueueState {
    pub(crate) name: String,
    limit: AtomicUsize,
    running: AtomicUsize,
    paused: AtomicBool,
    /// Set when there may be new work (an insert, a staged row, a resume); cleared by the producer.
    work_hint: AtomicBool,
    /// Wakes the producer: work may have arrived, a slot freed, or the limit changed.
    wake: Notify,
}

impl QueueState {
    pub(crate) fn new(name: String, limit: usize) -> Self {
        Self {
            name,
            limit: AtomicUsize::new(limit),
            running: AtomicUsize::new(0),
            paused: AtomicBool::new(false),
            work_hint: AtomicBool::new(true),
            wake: Notify::new(),
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

    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
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
}

impl From<&QueueState> for QueueInfo {
    fn from(q: &QueueState) -> Self {
        QueueInfo { name: q.name.clone(), limit: q.limit(), running: q.running(), paused: q.is_paused() }
    }
}
