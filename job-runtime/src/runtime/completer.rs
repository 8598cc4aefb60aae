//! Records job results in batches: many rows per statement, which is where throughput is won.
//!
//! Results wait in memory for at most `ack_delay` (a few milliseconds) or until `ack_batch` are
//! pending; while a flush is in flight, new results pile up and go in the next one. A failed
//! flush keeps its results and tries again with backoff: nothing is dropped, on shutdown either.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::backoff::reconnect_delay as backoff;
use crate::engine::{Ack, AckKind, Engine};

/// The sending side, held by every executing job.
#[derive(Debug, Clone)]
pub(crate) struct CompleterHandle {
    tx: mpsc::UnboundedSender<Ack>,
    /// Results sent but not yet written.
    pending: Arc<AtomicUsize>,
    /// Woken after each write, for producers waiting on backpressure.
    written: Arc<Notify>,
}

impl CompleterHandle {
    /// Results waiting to be written. Producers stop fetching while this is high: a job's slot
    /// frees when it finishes, before its result is written, so without this limit a database
    /// slower at writing results than at handing out jobs would let `executing` rows pile up.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Completes after the next write.
    pub(crate) async fn written(&self) {
        self.written.notified().await
    }

    pub(crate) fn send(&self, ack: Ack) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        // The receiver lives until shutdown has waited for every job, so this cannot fail
        // while jobs run; if it ever did, the row stays `executing` and is rescued.
        if self.tx.send(ack).is_err() {
            tracing::error!(target: "jobsmith", "jobsmith completer is gone; a job result was not recorded");
        }
    }
}

pub(crate) struct Completer {
    pub(crate) handle: CompleterHandle,
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) node: String,
    pub(crate) rx: mpsc::UnboundedReceiver<Ack>,
    pub(crate) batch: usize,
    pub(crate) delay: Duration,
    /// Woken after results with a due time (retries, snoozes) are written.
    pub(crate) stager: Arc<Notify>,
    /// Written results release their claims.
    pub(crate) claims: Arc<super::claims::Claims>,
}

/// How long shutdown keeps trying to write the last results.
const FINAL_FLUSH: Duration = Duration::from_secs(30);

pub(crate) fn channel() -> (CompleterHandle, mpsc::UnboundedReceiver<Ack>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (CompleterHandle { tx, pending: Arc::default(), written: Arc::default() }, rx)
}

impl Completer {
    /// Runs until `stop` fires, then writes whatever is still pending and returns.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        let mut pending: Vec<Ack> = Vec::new();
        loop {
            if pending.is_empty() {
                tokio::select! {
                    ack = self.rx.recv() => match ack {
                        Some(ack) => pending.push(ack),
                        None => break,
                    },
                    _ = stop.cancelled() => break,
                }
            }
            // Give concurrent jobs a moment to add theirs, bounded by the batch size.
            let deadline = tokio::time::Instant::now() + self.delay;
            while pending.len() < self.batch {
                match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(ack)) => pending.push(ack),
                    Ok(None) | Err(_) => break,
                }
            }
            self.flush(&mut pending, &stop).await;
        }
        while let Ok(ack) = self.rx.try_recv() {
            pending.push(ack);
        }
        // Shutting down: keep trying for a while, but do not hang forever on a dead database. Rows
        // not written stay `executing` and are rescued once this node's heartbeat lapses.
        let stopping = CancellationToken::new();
        stopping.cancel();
        if tokio::time::timeout(FINAL_FLUSH, self.flush(&mut pending, &stopping)).await.is_err() {
            let ids: Vec<i64> = pending.iter().map(|a| a.id).collect();
            tracing::error!(target: "jobsmith",
                ?ids,
                "jobsmith could not record these results before stopping; they will be rescued"
            );
        }
    }

    async fn flush(&self, pending: &mut Vec<Ack>, stop: &CancellationToken) {
        let mut failures = 0;
        while !pending.is_empty() {
            let n = pending.len().min(self.batch);
            match self.engine.ack(&self.node, &pending[..n]).await {
                Ok(_) => {
                    let wakes_stager = pending[..n]
                        .iter()
                        .any(|a| matches!(a.kind, AckKind::Retry { .. } | AckKind::Snooze { .. }));
                    self.claims.written(&pending[..n]);
                    pending.drain(..n);
                    self.handle.pending.fetch_sub(n, Ordering::AcqRel);
                    self.handle.written.notify_waiters();
                    failures = 0;
                    if wakes_stager {
                        self.stager.notify_one();
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(target: "jobsmith", error = %e, pending = pending.len(), "jobsmith could not record job results; retrying");
                    // During shutdown keep trying too, but without waiting long between tries.
                    let wait =
                        if stop.is_cancelled() { Duration::from_millis(100) } else { backoff(failures) };
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}
