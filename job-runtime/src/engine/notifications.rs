//! How signals from outside reach a node: PostgreSQL's LISTEN/NOTIFY, or on SQLite the
//! in-process wake of runtimes sharing the database file.

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::types::Signal;

/// Delivery of [`Signal`]s to a node. Part of [`super::Engine`].
#[async_trait]
pub trait Notifications: Send + Sync + 'static {
    /// Delivers outside signals (inserts from other processes, cancels) to `signals` until
    /// `stop` fires, reconnecting as needed. Engines without notifications return at once.
    async fn listen(&self, signals: mpsc::UnboundedSender<Signal>, stop: CancellationToken);
}
