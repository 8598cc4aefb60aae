//! How signals from outside reach a node: PostgreSQL's LISTEN/NOTIFY, or on SQLite the
//! in-process wake of runtimes sharing the database file.

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::types::{JobState, Signal};

/// Delivery of [`Signal`]s to a node. Part of [`super::Engine`].
#[async_trait]
pub trait Notifications: Send + Sync + 'static {
    /// Delivers outside signals (inserts from other processes, cancels) to `signals` until
    /// `stop` fires, reconnecting as needed. Engines without notifications return at once.
    async fn listen(&self, signals: mpsc::UnboundedSender<Signal>, stop: CancellationToken);

    /// Marks job `id` awaited, so its reaching a final state is announced to
    /// [`Notifications::listen_finished`], and returns its state (`None`: no such job). Mark
    /// first, read second: a job that finishes in between is announced.
    async fn watch(&self, id: i64) -> Result<Option<JobState>>;

    /// Sends the ids of awaited jobs that reached a final state (an empty list: look at every
    /// job you wait for) until `stop` fires, reconnecting as needed; `ready` is sent once the
    /// first listening has begun, so a waiter that marks its job after it misses nothing.
    async fn listen_finished(
        &self,
        finished: mpsc::UnboundedSender<Vec<i64>>,
        ready: oneshot::Sender<()>,
        stop: CancellationToken,
    );
}
