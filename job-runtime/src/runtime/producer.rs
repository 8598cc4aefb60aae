//! One producer per queue: fetches up to its room (free slots, plus free places in the prefetch
//! buffer, sized by `claim_ahead` unless set) in one statement and starts the jobs. It times each
//! fetch for `claim_ahead`.
//!
//! A queue with a rate limit fetches through `fetch_rate_limited`; when the limit (not the
//! queue) ended a fetch short, it sleeps until the window has room again.
//!
//! It fetches when there may be work (an insert or staging notification, a resume, the poll
//! timer, or the last fetch came back full) and there is room; otherwise it sleeps. An idle
//! queue therefore costs one query per poll interval, and a busy one refills in batches: it waits
//! up to `FILL_WAIT` for most of its room to free, so each round trip takes many jobs. Jobs
//! claimed beyond the free slots wait in the queue's buffer, in run order, for the next slot.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::control::JobControl;
use super::executor::execute;
use super::queue::{Claimed, QueueState, RatedClaim};
use super::shared::Shared;
use crate::backoff::reconnect_delay as backoff;
use crate::engine::{FetchCursor, FetchRequest, FetchedJob, PartitionRequest};

/// How long a busy queue waits for three quarters of its room to free before it fetches for
/// fewer. Short next to any real job, long next to a no-op one.
const FILL_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

pub(crate) async fn run(shared: Arc<Shared>, queue: Arc<QueueState>, stop: CancellationToken) {
    let mut may_have_work = true;
    let mut failures = 0u32;
    let mut busy = false;
    // Where the last full fetch ended (see `FetchRequest::after`). Valid while no row became
    // available since: any insert, staging, rescue or resume sends a hint, and the poll timer
    // resets it too, so a row that appeared behind it (a higher priority, an older due time, or
    // one skipped while another transaction held its lock) waits at most one poll interval.
    let mut after: Option<FetchCursor> = None;
    // When the last fetch without a cursor ran: a busy queue is woken by every finishing job, so
    // its poll timer never fires; this bounds the cursor's life to one poll interval instead.
    let mut scanned_at = tokio::time::Instant::now();
    // Set by a partitioned fetch that passed a partition with work whose rate window was full:
    // when that window has room again (ADR 25).
    // A deadline, not a duration: a wake that fetches nothing must not start the wait again.
    let mut look_again_at: Option<tokio::time::Instant> = None;
    loop {
        if stop.is_cancelled() {
            return;
        }
        // Slots may have freed while jobs wait in the buffer (the limit was raised, or lowered
        // and the running count has come back under it).
        start_buffered(&shared, &queue);
        if queue.take_work_hint() {
            may_have_work = true;
            after = None;
        }
        // Backpressure: while results wait to be written, taking more jobs would only grow the
        // backlog (see `CompleterHandle::pending`).
        if shared.completer.pending() >= shared.config.ack_batch * 2 {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = shared.completer.written() => {}
                // A write can land between the check and the wait: look again soon regardless.
                _ = tokio::time::sleep(std::time::Duration::from_millis(2)) => {}
            }
            continue;
        }
        // A busy queue (the last fetch came back full) lets more slots free before it fetches, so
        // one round trip takes many jobs rather than the one or two that just finished. Measured
        // (burn-down, C = 100): about 38k -> 48k jobs/s; waiting for half the slots gave 43k, for
        // all of them 46k, and 2 ms instead of 1 no more.
        let fill = (queue.capacity() * 3 / 4).max(1);
        if busy && may_have_work && (1..fill).contains(&queue.room()) {
            let until = tokio::time::Instant::now() + FILL_WAIT;
            while queue.room() < fill {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = queue.woken() => {}
                    _ = tokio::time::sleep_until(until) => break,
                }
            }
        }
        // The gate is held until the claimed jobs count as running: a pause that lands meanwhile
        // waits for it, so nothing is claimed after `pause_queue` returns.
        let fetched = {
            let _gate = queue.fetch_gate().await;
            let room = queue.room();
            if may_have_work && room > 0 {
                let asked = room.min(shared.config.fetch_batch);
                if after.is_some() && scanned_at.elapsed() >= shared.config.poll_interval {
                    after = None;
                }
                if after.is_none() {
                    scanned_at = tokio::time::Instant::now();
                }
                // See `QueueState::weight_cap` (ADR 23); never more than a fetch asks for, or a
                // job heavier than the batch would never fit one.
                let weight_cap = queue.weight_cap().min(shared.config.fetch_batch as u32);
                let request = FetchRequest {
                    queue: &queue.name,
                    limit: asked as u32,
                    weight_cap,
                    node: &shared.node,
                    global_limit: queue.global_limit(),
                    after,
                    relaxed_commit: shared.config.relaxed_fetch_commit,
                };
                let sent = std::time::Instant::now();
                // A rate-limited queue fetches through its own call (ADR 22), which may say for
                // how long the window is full; every other queue keeps the plain fetch.
                // Under a rate limit a claim is good for the log's guard, counted from just before
                // the engine stamped it, once it held the queue's lock (see `Claimed::start_by`):
                // not from `sent`, which would count the wait for the lock as lateness, nor from
                // the answer, which would miss a task starved after the stamp (the conformance
                // test saw 205 ms).
                let answer = match queue.rate_limit() {
                    // A rate limit of the whole queue and a partition limit: the rate limit holds
                    // (an outside service's limit is the harder promise); partitions are not
                    // limited meanwhile (see ADR 24).
                    Some(rate) if !rate.per_partition => {
                        shared.engine.fetch_rate_limited(&request, rate).await.map(|f| {
                            let start_by = f.claimed + Duration::from_millis(rate.guard_ms() as u64);
                            let claim = RatedClaim { start_by, stamp_ms: f.stamp_ms, partition: None };
                            let rated = vec![Some(claim); f.jobs.len()];
                            (f.jobs, f.limited_for, rated, None)
                        })
                    }
                    // Partitions take turns from where this node's last fetch ended (ADR 24),
                    // each under its own limits (ADR 25).
                    rate if queue.is_partitioned() => {
                        let (after, left) = queue.partition_cursor.lock().expect("partition cursor").clone();
                        let partitions = PartitionRequest {
                            limit: queue.partition_limit(),
                            rate,
                            after: after.as_deref(),
                            resume: Some(left).filter(|n| *n > 0),
                            sequence: queue.sequence(),
                        };
                        shared.engine.fetch_partitioned(&request, partitions).await.map(|f| {
                            if f.last_partition.is_some() {
                                *queue.partition_cursor.lock().expect("partition cursor") =
                                    (f.last_partition, f.last_turn_left);
                            }
                            let rated = match (rate, f.rated) {
                                (Some(rate), Some(stamp)) => {
                                    let start_by =
                                        stamp.claimed + Duration::from_millis(rate.guard_ms() as u64);
                                    // Jobs of no partition are not counted by a partition's rate.
                                    f.partitions
                                        .into_iter()
                                        .map(|key| {
                                            key.map(|key| RatedClaim {
                                                start_by,
                                                stamp_ms: stamp.stamp_ms,
                                                partition: Some(key.into()),
                                            })
                                        })
                                        .collect()
                                }
                                _ => Vec::new(),
                            };
                            (f.jobs, None, rated, f.window_opens_in)
                        })
                    }
                    _ => shared.engine.fetch(&request).await.map(|jobs| (jobs, None, Vec::new(), None)),
                };
                let result = answer.map(|(jobs, limited_for, rated, window_opens_in)| {
                    queue.claim_ahead.fetched(sent.elapsed());
                    queue.note_weights(&jobs);
                    // Slots filled, as the fetch counted them (each weight at most the cap).
                    let filled =
                        jobs.iter().map(|j| u32::from(j.weight).min(weight_cap) as usize).sum::<usize>();
                    let positions =
                        if limited_for.is_some() { None } else { full_batch_end(&jobs, filled, asked) };
                    claim(&shared, &queue, jobs, rated);
                    (filled, positions, limited_for, window_opens_in)
                });
                Some((asked, result))
            } else {
                None
            }
        };
        match fetched {
            Some((_, Ok((_, _, Some(full_for), _)))) => {
                // The rate limit ended the fetch: the queue has work, and the window has room
                // again when its oldest start leaves it. Wait for that (bounded by the poll
                // interval, so a raised or cleared limit is seen soon), not for a hint.
                failures = 0;
                after = None;
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(full_for.min(shared.config.poll_interval)) => {}
                }
                may_have_work = true;
                continue;
            }
            Some((asked, Ok((filled, end, None, window_opens_in)))) => {
                failures = 0;
                // A partition whose rate window was full still has work: look again when its
                // window has room (bounded by the poll below), whatever else wakes this loop.
                look_again_at = window_opens_in.map(|d| tokio::time::Instant::now() + d);
                // A full answer means more may be waiting; fetch again once there is room. A
                // short one from a cursor looks once more from the front before the queue counts
                // as drained.
                let full = filled == asked;
                // On a queue with weighted jobs a short answer may have stopped at a job too
                // heavy for the room left: look again when a running job frees its slots, not
                // at once (the room is what it was) and not only at the next poll.
                // So may one on a partitioned queue whose partitions with work are full: one of
                // this node's jobs finishing may open its partition (one finishing elsewhere is
                // seen at the next poll).
                let heavy_next =
                    !full && (queue.is_weighted() || queue.is_partitioned()) && queue.running() > 0;
                may_have_work = full || after.is_some() || heavy_next;
                after = end;
                busy = full;
                if (full || after.is_some()) && queue.room() > 0 {
                    continue;
                }
            }
            Some((_, Err(e))) => {
                failures += 1;
                after = None;
                tracing::warn!(target: "jobsmith", queue = %queue.name, error = %e, "jobsmith fetch failed; backing off");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff(failures)) => {}
                }
                continue;
            }
            None => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = queue.woken() => {}
            _ = tokio::time::sleep_until({
                let poll = tokio::time::Instant::now() + shared.config.poll_interval;
                look_again_at.map_or(poll, |at| at.min(poll))
            }) => {
                may_have_work = true;
                after = None;
                look_again_at = None;
            }
        }
    }
}

/// Where a full batch (one that filled every slot asked for) ended in run order (the next
/// cursor); None for a short batch.
fn full_batch_end(jobs: &[FetchedJob], filled: usize, asked: usize) -> Option<FetchCursor> {
    if filled == asked { jobs.iter().map(FetchedJob::position).max() } else { None }
}

/// Takes over freshly fetched jobs. When they all fit the free slots they start at once. Otherwise
/// each gets its control now (so a cancel reaches it while it waits), they join the buffer in run
/// order, and as many start as slots are free. A queue paused or closed while the fetch was in
/// flight starts none and gives them back.
fn claim(
    shared: &Arc<Shared>,
    queue: &Arc<QueueState>,
    jobs: Vec<FetchedJob>,
    rated: Vec<Option<RatedClaim>>,
) {
    if jobs.is_empty() {
        return;
    }
    // Held before anything else, still under the fetch gate: the reconciler hands back only
    // rows it finds executing here and not held (see `claims`).
    shared.claims.hold(&jobs);
    // Everything fits (always so without a buffer): start each job at once, as before buffers
    // existed, with no sorting and no buffer; each task registers its own control. Together with
    // the buffer's lock-free length this keeps the default path as fast as before (an A/B run;
    // the first version, through the buffer and its lock, lost about 5 %).
    // Each job's slots, worked out once: the limit may change meanwhile, and a task must give
    // back exactly what it took.
    let slots: Vec<usize> = jobs.iter().map(|j| queue.slots_of(j)).collect();
    let total: usize = slots.iter().sum();
    // Each job's rate claim, if it was claimed under a rate limit (`rated` is empty or one each).
    let mut rated = rated.into_iter().chain(std::iter::repeat(None));
    if queue.buffered() == 0 && total <= queue.free() {
        queue.started(total);
        for (job, slots) in jobs.into_iter().zip(slots) {
            let claimed = Claimed { control: JobControl::of(job.claim), job, rated: rated.next().flatten() };
            shared.tasks.spawn(execute(shared.clone(), queue.clone(), claimed, slots));
        }
        return;
    }
    // RETURNING gives no order; the buffer must hold jobs in run order.
    let mut jobs: Vec<(FetchedJob, Option<RatedClaim>)> = jobs.into_iter().zip(rated).collect();
    jobs.sort_unstable_by_key(|(job, _)| job.position());
    let claimed: Vec<Claimed> = {
        let mut running = shared.running_jobs.lock().expect("running map");
        jobs.into_iter()
            .map(|(job, rated)| {
                let control = JobControl::of(job.claim);
                running.insert(job.id, control.clone());
                Claimed { job, control, rated }
            })
            .collect()
    };
    queue.buffer(claimed);
    start_buffered(shared, queue);
    if !queue.is_open() {
        shared.release_buffered(queue);
    }
}

/// Starts buffered jobs on the free slots, each in its own task.
fn start_buffered(shared: &Arc<Shared>, queue: &Arc<QueueState>) {
    for (claimed, slots) in queue.take_for_free_slots() {
        shared.tasks.spawn(execute(shared.clone(), queue.clone(), claimed, slots));
    }
}
