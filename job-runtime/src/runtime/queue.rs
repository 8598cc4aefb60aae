//! The live state of one queue on this node: its limit, what runs, whether it is paused, and the
//! jobs claimed ahead of a free slot (the prefetch buffer).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Notify};

use super::claim_ahead::ClaimAhead;
use super::control::JobControl;
use crate::engine::FetchedJob;
use crate::types::{RateLimit, SequencePolicy};

/// `prefetch` when the queue sizes its buffer itself (the default; see `claim_ahead`).
const AUTO: usize = usize::MAX;

/// A job claimed (its row is `executing` for this node) that waits for a slot.
#[derive(Debug)]
pub(crate) struct Claimed {
    pub(crate) job: FetchedJob,
    pub(crate) control: JobControl,
    /// Set when the job was claimed under a rate limit.
    pub(crate) rated: Option<RatedClaim>,
}

/// The packed rate limit's top bit: counted for each partition. A limit is at most
/// [`RateLimit::MAX_LIMIT`], far below it.
const PER_PARTITION_BIT: u64 = 1 << 63;
const PER_PARTITION_MASK: u32 = 0x7fff_ffff;

/// A claim counted in a queue's rate log, or in its partition's.
#[derive(Debug, Clone)]
pub(crate) struct RatedClaim {
    /// The latest moment the job may start, by this node's clock (the fetch's start plus the
    /// rate log's guard). Later, it is released unstarted instead, so no job starts outside the
    /// window its claim was counted in (ADR 22).
    pub(crate) start_by: std::time::Instant,
    /// Its start in the log, refunded when it is released unstarted (late, or from the buffer
    /// at pause or shutdown), so a released claim does not use up the window.
    pub(crate) stamp_ms: i64,
    /// The partition whose log counted it (a rate limit for each partition, ADR 25); `None`:
    /// the queue's log.
    pub(crate) partition: Option<std::sync::Arc<str>>,
}

/// Shared between the queue's producer, the jobs it started and the runtime handle.
#[derive(Debug)]
pub(crate) struct QueueState {
    pub(crate) name: String,
    limit: AtomicUsize,
    /// Slots taken by running jobs: each takes its weight (at most the limit; ADR 23).
    running: AtomicUsize,
    /// Set once a job heavier than 1 was claimed: from then on a fetch that filled fewer slots
    /// than asked may have stopped at a job too heavy for them, not at the end of the queue.
    weighted: AtomicBool,
    paused: AtomicBool,
    /// Set at shutdown: nothing starts from the buffer any more.
    closed: AtomicBool,
    /// Most jobs claimed ahead of a free slot, as set by `RuntimeBuilder::prefetch` (0 claims only
    /// for free slots), or `AUTO`: as many as `claim_ahead` measures the queue needs.
    prefetch: AtomicUsize,
    /// The running averages behind the `AUTO` buffer size.
    pub(crate) claim_ahead: ClaimAhead,
    /// Claimed jobs in run order, taken by a job task as it finishes (see `next_claimed`).
    buffer: std::sync::Mutex<VecDeque<Claimed>>,
    /// The buffer's length, kept beside it so the hot path (every finishing job, every room
    /// check) reads an atomic instead of taking the lock, which an empty buffer never needs.
    buffered: AtomicUsize,
    /// Most jobs of this queue executing across all nodes; 0 for none.
    global_limit: AtomicU32,
    /// The queue's rate limit, packed (limit in the high half below [`PER_PARTITION_BIT`],
    /// window in ms in the low; a checked window fits 32 bits); 0 for none.
    rate_limit: AtomicU64,
    /// Most jobs of one partition executing across all nodes; 0 for none (ADR 24).
    partition_limit: AtomicU32,
    /// Each partition run as a sequence (ADR 27): 0 no, 1 waiting for retries, 2 continuing
    /// after a discard.
    sequence: std::sync::atomic::AtomicU8,
    /// The partition the last partitioned fetch of this node ended at: the next one starts
    /// after it, so partitions take turns (ADR 24).
    /// With the heads of its turn it had left (a partition with a weight, ADR 26), which the
    /// next fetch gives first.
    pub(crate) partition_cursor: std::sync::Mutex<(Option<String>, u32)>,
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
            weighted: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            prefetch: AtomicUsize::new(AUTO),
            claim_ahead: ClaimAhead::default(),
            buffer: std::sync::Mutex::new(VecDeque::new()),
            buffered: AtomicUsize::new(0),
            global_limit: AtomicU32::new(0),
            rate_limit: AtomicU64::new(0),
            partition_limit: AtomicU32::new(0),
            sequence: std::sync::atomic::AtomicU8::new(0),
            partition_cursor: std::sync::Mutex::new((None, 0)),
            work_hint: AtomicBool::new(true),
            wake: Notify::new(),
            fetch_gate: Mutex::new(()),
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Acquire)
    }

    /// Slots taken by running jobs (their weights).
    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// The slots `job` takes when it starts: its weight, at most the whole limit (a job heavier
    /// than the limit runs alone instead of never).
    pub(crate) fn slots_of(&self, job: &FetchedJob) -> usize {
        usize::from(job.weight).clamp(1, self.limit().max(1))
    }

    /// Whether a job heavier than 1 was ever claimed here (see `weighted`).
    pub(crate) fn is_weighted(&self) -> bool {
        self.weighted.load(Ordering::Relaxed)
    }

    /// Notes that `jobs` were claimed; remembers whether any was heavier than 1.
    pub(crate) fn note_weights(&self, jobs: &[FetchedJob]) {
        if !self.is_weighted() && jobs.iter().any(|j| j.weight > 1) {
            self.mark_weighted();
        }
    }

    /// From now on, jobs are taken by weight.
    pub(crate) fn mark_weighted(&self) {
        self.weighted.store(true, Ordering::Relaxed);
    }

    /// What a fetch counts one job's weight as at most ([`crate::engine::FetchRequest::weight_cap`]):
    /// the limit (or the global limit if lower), so a job heavier than that still runs, alone;
    /// 1 (every job one slot, the plain take) while no job heavier than 1 is known here and no
    /// global or rate limit is set. Those count weights from the start: a node that claimed a
    /// heavy job by count would hold more of the cluster's slots than the limit lets it.
    pub(crate) fn weight_cap(&self) -> u32 {
        let limit = self.limit() as u32;
        match self.global_limit() {
            Some(global) => global.min(limit),
            None if self.is_weighted() || self.rate_limit().is_some() || self.is_partitioned() => limit,
            None => 1,
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Neither paused nor closed: jobs may start and wait in the buffer.
    pub(crate) fn is_open(&self) -> bool {
        !self.is_paused() && !self.closed.load(Ordering::Acquire)
    }

    /// Slots free for new jobs (0 while paused).
    pub(crate) fn free(&self) -> usize {
        if self.is_open() { self.limit().saturating_sub(self.running()) } else { 0 }
    }

    /// How many jobs may be claimed ahead of a free slot. None under a global limit: claimed rows
    /// count against it on every node, so a buffer would hold back slots other nodes could use.
    /// None under a rate limit either: a claim counts as a start, so it must be one; nor under a
    /// partition limit, which claimed rows count against as the global limit does.
    pub(crate) fn prefetch(&self) -> usize {
        if self.global_limit().is_some() || self.rate_limit().is_some() || self.is_partitioned() {
            return 0;
        }
        match self.prefetch.load(Ordering::Acquire) {
            AUTO => self.claim_ahead.target(self.limit()),
            fixed => fixed,
        }
    }

    /// A fixed buffer size instead of the measured one (0: claim only for free slots).
    pub(crate) fn set_prefetch(&self, n: usize) {
        let n = n.min(AUTO - 1);
        self.prefetch.store(n, Ordering::Release);
        self.hint_work();
    }

    /// Slots plus buffer places: the most jobs this node holds claimed at once.
    pub(crate) fn capacity(&self) -> usize {
        self.limit() + self.prefetch()
    }

    /// How many jobs one fetch may claim now: free slots and free buffer places (0 while paused).
    pub(crate) fn room(&self) -> usize {
        if self.is_open() { self.capacity().saturating_sub(self.running() + self.buffered()) } else { 0 }
    }

    /// Jobs claimed and waiting for a slot.
    pub(crate) fn buffered(&self) -> usize {
        self.buffered.load(Ordering::Acquire)
    }

    /// Runs `change` on the buffer and keeps the count in step.
    fn with_buffer<T>(&self, change: impl FnOnce(&mut VecDeque<Claimed>) -> T) -> T {
        let mut buffer = self.buffer.lock().expect("claim buffer");
        let out = change(&mut buffer);
        self.buffered.store(buffer.len(), Ordering::Release);
        out
    }

    /// Adds claimed jobs (in run order) to those already waiting, keeping the whole buffer in run
    /// order: a job fetched later with a higher priority (or an earlier due time) goes ahead of
    /// the lower ones claimed before it, so it waits only for the next free slot.
    pub(crate) fn buffer(&self, jobs: Vec<Claimed>) {
        self.with_buffer(|b| {
            let behind_all = match (b.back(), jobs.first()) {
                (Some(last), Some(first)) => last.job.position() <= first.job.position(),
                _ => true,
            };
            b.extend(jobs);
            if !behind_all {
                // Both runs are sorted; a stable sort of their concatenation merges them.
                b.make_contiguous().sort_by_key(|c| c.job.position());
            }
        });
    }

    /// Takes buffered jobs from the front while their slots are free, counts them as running,
    /// and returns each with the slots it took. Stops at the first that does not fit: a heavy
    /// job is never passed by lighter ones behind it.
    pub(crate) fn take_for_free_slots(&self) -> Vec<(Claimed, usize)> {
        if self.buffered() == 0 {
            return Vec::new();
        }
        self.with_buffer(|buffer| {
            let mut free = self.free();
            let mut taken = Vec::new();
            while let Some(front) = buffer.front() {
                let slots = self.slots_of(&front.job);
                if slots > free {
                    break;
                }
                free -= slots;
                self.started(slots);
                taken.push((buffer.pop_front().expect("front"), slots));
            }
            taken
        })
    }

    /// The next claimed job for a task whose job (holding `held` slots) just ended, which keeps
    /// its slots for it, taking more or giving some back as the next one's weight needs; with
    /// the slots it now holds. None when paused or closed, when the next job does not fit (the
    /// limit was lowered under the running count, or it is heavier than what would be free).
    pub(crate) fn next_claimed(&self, held: usize) -> Option<(Claimed, usize)> {
        if self.buffered() == 0 || !self.is_open() {
            return None;
        }
        let next = self.with_buffer(|buffer| {
            let slots = self.slots_of(&buffer.front()?.job);
            // Compare-and-swap: other tasks finish and start concurrently.
            self.running
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
                    (running - held + slots <= self.limit()).then(|| running - held + slots)
                })
                .ok()?;
            buffer.pop_front().map(|c| (c, slots))
        });
        if next.is_some() {
            // A buffer place freed: the producer may claim again.
            self.wake.notify_one();
        }
        next
    }

    /// Empties the buffer (pause, shutdown): these jobs go back to `available`.
    pub(crate) fn take_buffer(&self) -> Vec<Claimed> {
        self.with_buffer(|b| b.drain(..).collect())
    }

    /// Takes one claimed job out of the buffer (it was cancelled).
    pub(crate) fn take_claimed(&self, id: i64) -> Option<Claimed> {
        if self.buffered() == 0 {
            return None;
        }
        self.with_buffer(|b| {
            let at = b.iter().position(|c| c.job.id == id)?;
            b.remove(at)
        })
    }

    /// [`Queue::take_claimed`] of that claim only.
    pub(crate) fn take_claimed_if(&self, id: i64, claim: i64) -> Option<Claimed> {
        if self.buffered() == 0 {
            return None;
        }
        self.with_buffer(|b| {
            let at = b.iter().position(|c| c.job.id == id && c.job.claim == claim)?;
            b.remove(at)
        })
    }

    /// Shutdown: start nothing more, from a fetch or the buffer.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Jobs taking `slots` slots in all started.
    pub(crate) fn started(&self, slots: usize) {
        self.running.fetch_add(slots, Ordering::AcqRel);
    }

    /// A job holding `slots` ended: free them and let the producer refill them.
    pub(crate) fn finished(&self, slots: usize) {
        self.running.fetch_sub(slots, Ordering::AcqRel);
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

    pub(crate) fn rate_limit(&self) -> Option<RateLimit> {
        let packed = self.rate_limit.load(Ordering::Acquire);
        (packed != 0).then(|| {
            let rate = RateLimit::new(
                (packed >> 32) as u32 & PER_PARTITION_MASK,
                Duration::from_millis(packed & 0xffff_ffff),
            );
            if packed & PER_PARTITION_BIT != 0 { rate.for_each_partition() } else { rate }
        })
    }

    pub(crate) fn set_rate_limit(&self, rate: Option<RateLimit>) {
        let packed = rate.map_or(0, |r| {
            let per_partition = if r.per_partition { PER_PARTITION_BIT } else { 0 };
            per_partition
                | (u64::from(r.limit & PER_PARTITION_MASK) << 32)
                | (r.window_ms() as u64 & 0xffff_ffff)
        });
        self.rate_limit.store(packed, Ordering::Release);
        self.hint_work();
    }

    pub(crate) fn partition_limit(&self) -> Option<u32> {
        Some(self.partition_limit.load(Ordering::Acquire)).filter(|n| *n > 0)
    }

    /// Fetched partition by partition (ADR 24): a partition limit, a rate limit for each
    /// partition, or sequences are set.
    pub(crate) fn is_partitioned(&self) -> bool {
        self.partition_limit().is_some()
            || self.rate_limit().is_some_and(|r| r.per_partition)
            || self.sequence().is_some()
    }

    pub(crate) fn sequence(&self) -> Option<SequencePolicy> {
        match self.sequence.load(Ordering::Acquire) {
            1 => Some(SequencePolicy::WaitForRetries),
            2 => Some(SequencePolicy::ContinueAfterDiscard),
            _ => None,
        }
    }

    pub(crate) fn set_sequence(&self, policy: Option<SequencePolicy>) {
        let code = match policy {
            None => 0,
            Some(SequencePolicy::WaitForRetries) => 1,
            Some(SequencePolicy::ContinueAfterDiscard) => 2,
        };
        self.sequence.store(code, Ordering::Release);
        self.hint_work();
    }

    pub(crate) fn set_partition_limit(&self, limit: Option<u32>) {
        self.partition_limit.store(limit.unwrap_or(0), Ordering::Release);
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
    /// Most jobs of the queue started in any window across all nodes, if limited.
    pub rate_limit: Option<RateLimit>,
    /// Most jobs of one partition executing across all nodes, if partitioned.
    pub partition_limit: Option<u32>,
    /// Set when each partition runs as a sequence (see [`crate::RuntimeBuilder::sequence`]).
    pub sequence: Option<SequencePolicy>,
    /// Most jobs claimed ahead of a free slot now: the measured size by default, or the one set
    /// with [`crate::RuntimeBuilder::prefetch`]; 0 while a global or rate limit is set.
    pub prefetch: usize,
    /// Jobs claimed and waiting for a slot now.
    pub prefetched: usize,
}

impl From<&QueueState> for QueueInfo {
    fn from(q: &QueueState) -> Self {
        QueueInfo {
            name: q.name.clone(),
            limit: q.limit(),
            running: q.running(),
            paused: q.is_paused(),
            global_limit: q.global_limit(),
            rate_limit: q.rate_limit(),
            partition_limit: q.partition_limit(),
            sequence: q.sequence(),
            prefetch: q.prefetch(),
            prefetched: q.buffered(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(id: i64) -> Claimed {
        Claimed { job: FetchedJob::for_test(id, 1, 3), control: JobControl::default(), rated: None }
    }

    #[test]
    fn a_rate_limit_reads_back_as_set_for_the_queue_or_for_each_partition() {
        let q = QueueState::new("q".into(), 4);
        let longest = RateLimit::new(RateLimit::MAX_LIMIT, RateLimit::MAX_WINDOW);
        for rate in [
            RateLimit::per_second(10),
            longest,
            longest.for_each_partition(),
            RateLimit::per_minute(1).for_each_partition(),
        ] {
            q.set_rate_limit(Some(rate));
            assert_eq!(q.rate_limit(), Some(rate));
            assert_eq!(q.is_partitioned(), rate.per_partition);
        }
        q.set_rate_limit(None);
        assert_eq!(q.rate_limit(), None);
    }

    #[test]
    fn room_counts_free_slots_and_free_buffer_places() {
        let q = QueueState::new("q".into(), 4);
        assert_eq!((q.capacity(), q.room()), (4, 4), "nothing ahead before any job or fetch is measured");
        q.set_prefetch(6);
        assert_eq!((q.capacity(), q.room()), (10, 10));
        q.buffer((1..=7).map(claimed).collect());
        assert_eq!(q.take_for_free_slots().iter().map(|c| c.0.job.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!((q.running(), q.buffered(), q.room()), (4, 3, 3));
        q.set_paused(true);
        assert_eq!(q.room(), 0);
        assert!(q.next_claimed(1).is_none(), "nothing starts from the buffer while paused");
        q.set_paused(false);
        assert_eq!(q.next_claimed(1).map(|c| c.0.job.id), Some(5), "buffer order is run order");
        assert_eq!(q.take_claimed(7).map(|c| c.job.id), Some(7));
        assert_eq!(q.buffered(), 1);
    }

    fn weighing(id: i64, weight: u16) -> Claimed {
        let mut job = FetchedJob::for_test(id, 1, 3);
        job.weight = weight;
        Claimed { job, control: JobControl::default(), rated: None }
    }

    #[test]
    fn jobs_take_their_weight_in_slots_and_a_heavy_one_is_not_passed() {
        let q = QueueState::new("q".into(), 10);
        q.set_prefetch(10);
        assert_eq!(q.weight_cap(), 1, "no weight known: every job counts as one");
        let jobs = vec![weighing(1, 5), weighing(2, 4), weighing(3, 5), weighing(4, 1), weighing(5, 30)];
        q.note_weights(&jobs.iter().map(|c| c.job.clone()).collect::<Vec<_>>());
        assert_eq!(q.weight_cap(), 10, "a heavy job seen: weights count, each at most the limit");
        q.buffer(jobs);
        let started: Vec<_> = q.take_for_free_slots().iter().map(|(c, slots)| (c.job.id, *slots)).collect();
        assert_eq!(
            started,
            [(1, 5), (2, 4)],
            "5 + 4 fit in 10; the next 5 does not, and the 1 behind it waits"
        );
        assert_eq!((q.running(), q.free()), (9, 1));
        // Job 1 ends: its 5 slots go to job 3 (5), nothing more to give back.
        assert_eq!(q.next_claimed(5).map(|(c, slots)| (c.job.id, slots)), Some((3, 5)));
        assert_eq!(q.running(), 9);
        // Job 2 ends (4 slots): job 4 takes 1, and gives 3 back.
        assert_eq!(q.next_claimed(4).map(|(c, slots)| (c.job.id, slots)), Some((4, 1)));
        assert_eq!(q.running(), 6);
        // Job 5 weighs 30, more than the limit: it takes all 10, so it waits for an idle queue.
        assert!(q.next_claimed(1).is_none(), "5 of 10 would be running: 30 (as 10) does not fit");
        q.finished(1);
        q.finished(5);
        assert_eq!(
            q.take_for_free_slots().iter().map(|(c, slots)| (c.job.id, *slots)).collect::<Vec<_>>(),
            [(5, 10)]
        );
        assert_eq!((q.running(), q.free()), (10, 0));
    }

    #[test]
    fn a_rate_limit_turns_the_buffer_off_and_reads_back_as_set() {
        let q = QueueState::new("q".into(), 10);
        q.set_prefetch(6);
        let rate = RateLimit::new(10_000, RateLimit::MAX_WINDOW);
        q.set_rate_limit(Some(rate));
        assert_eq!(q.rate_limit(), Some(rate));
        assert_eq!(q.prefetch(), 0);
        q.set_rate_limit(None);
        assert_eq!(q.rate_limit(), None);
        assert_eq!(q.prefetch(), 6);
    }

    #[test]
    fn a_global_limit_turns_the_buffer_off() {
        let q = QueueState::new("q".into(), 4);
        q.set_prefetch(6);
        q.set_global_limit(Some(2));
        assert_eq!((q.prefetch(), q.capacity()), (0, 4));
        q.set_global_limit(None);
        assert_eq!(q.prefetch(), 6);
    }

    #[test]
    fn a_lowered_limit_or_a_closed_queue_takes_nothing_from_the_buffer() {
        let q = QueueState::new("q".into(), 2);
        q.set_prefetch(2);
        q.buffer((1..=4).map(claimed).collect());
        assert_eq!(q.take_for_free_slots().len(), 2);
        q.set_limit(1);
        assert!(q.next_claimed(1).is_none(), "2 running over a limit of 1: the slot is given up");
        q.finished(1);
        assert_eq!(q.next_claimed(1).map(|c| c.0.job.id), Some(3), "1 running, at the limit: it continues");
        q.close();
        assert!(q.next_claimed(1).is_none());
        assert_eq!((q.room(), q.take_buffer().len()), (0, 1));
    }
}
