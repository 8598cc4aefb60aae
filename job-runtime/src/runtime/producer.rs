//! One producer per queue: fetches up to its free slots in one statement and starts the jobs.
//!
//! It fetches when there may be work (an insert or staging notification, a resume, the poll
//! timer, or the last fetch came back full) and slots are free; otherwise it sleeps. An idle
//! queue therefore costs one query per poll interval, and a busy one refills slots as they free.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Shared;
use super::executor::execute;
use super::queue::QueueState;
use crate::backoff::reconnect_delay as backoff;
use crate::engine::FetchRequest;

pub(crate) async fn run(shared: Arc<Shared>, queue: Arc<QueueState>, stop: CancellationToken) {
    let mut may_have_work = true;
    let mut failures = 0u32;
    loop {
        if stop.is_cancelled() {
            return;
        }
        may_have_work |= queue.take_work_hint();
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
        // The gate is held until the claimed jobs count as running: a pause that lands meanwhile
        // waits for it, so nothing is claimed after `pause_queue` returns.
        let fetched = {
            let _gate = queue.fetch_gate().await;
            let free = queue.free();
            if may_have_work && free > 0 {
                let asked = free.min(shared.config.fetch_batch);
                let request = FetchRequest {
                    queue: &queue.name,
                    limit: asked as u32,
                    node: &shared.node,
                    global_limit: queue.global_limit(),
                };
                let result = shared.engine.fetch(&request).await;
                if let Ok(jobs) = &result {
                    queue.started(jobs.len());
                }
                Some((asked, result))
            } else {
                None
            }
        };
        match fetched {
            Some((asked, Ok(jobs))) => {
                failures = 0;
                // A full answer means more may be waiting; fetch again once slots free.
                may_have_work = jobs.len() == asked;
                for job in jobs {
                    shared.tasks.spawn(execute(shared.clone(), queue.clone(), job));
                }
                if may_have_work && queue.free() > 0 {
                    continue;
                }
            }
            Some((_, Err(e))) => {
                failures += 1;
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
            _ = tokio::time::sleep(shared.config.poll_interval) => may_have_work = true,
        }
    }
}
