//! Turns outside signals (notifications from other processes, or this one) into local wake-ups,
//! cancels and settings reloads.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::claims;
use super::control::StopReason;
use super::shared::Shared;
use crate::engine::Signal;

/// Dispatches signals from `rx` until `stop` fires or the sender is gone.
pub(crate) async fn dispatch(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Signal>,
    stop: CancellationToken,
) {
    loop {
        let signal = tokio::select! {
            _ = stop.cancelled() => return,
            s = rx.recv() => match s { Some(s) => s, None => return },
        };
        match signal {
            Signal::Available(queue) => {
                if let Some(q) = shared.queues.get(&queue) {
                    q.hint_work();
                }
            }
            Signal::Scheduled => shared.stager_wake.notify_one(),
            Signal::CancelJob(id) => shared.stop_local_job(id, StopReason::Cancelled),
            Signal::CancelsCommitted => {
                if let Err(e) = claims::stop_gone(&shared).await {
                    tracing::warn!(target: "jobsmith", error = %e, "jobsmith could not look for cancelled jobs");
                }
            }
            Signal::Resync => {
                for q in shared.queues.values() {
                    q.hint_work();
                }
                shared.stager_wake.notify_one();
                reload_settings(&shared);
            }
            Signal::QueueSettings(queue) => {
                if shared.queues.contains_key(&queue) {
                    reload_settings(&shared);
                }
            }
            Signal::LeaderResigned => shared.try_lead.notify_one(),
        }
    }
}

/// Reloads the settings in a task of its own: an apply waits for a fetch in flight to end (see
/// `Shared::apply_settings`), and the signals behind this one (cancels) must not wait with it.
/// One reload is queued at most; a signal that lands while one runs queues the next.
fn reload_settings(shared: &Arc<Shared>) {
    if shared.settings_reload_queued.swap(true, std::sync::atomic::Ordering::AcqRel) {
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        shared.settings_reload_queued.store(false, std::sync::atomic::Ordering::Release);
        if let Err(e) = shared.apply_settings().await {
            tracing::warn!(target: "jobsmith", error = %e, "jobsmith could not reload queue settings");
        }
    });
}
