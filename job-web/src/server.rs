//! Serving the dashboard on its own listener.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jobsmith_runtime::engine::Engine;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::Auth;

/// How long [`Server::shutdown`] lets open requests finish before it stops the server anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A running dashboard, from [`serve`]. Stop it with [`Server::shutdown`]; dropping it also
/// stops it, without waiting.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

/// Binds `addr`, starts serving the dashboard in a background task, and returns at once.
///
/// Bind port 0 to get a free port, then ask [`Server::local_addr`]. Fails if `auth` has no usable
/// credential (nobody could log in) or the address cannot be bound.
pub async fn serve(engine: Arc<dyn Engine>, addr: SocketAddr, auth: Auth) -> io::Result<Server> {
    // Served on its own address, no application stands in front to vouch for callers.
    if !auth.has_credentials() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the dashboard needs at least one non-empty token or basic-auth credential",
        ));
    }
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let app = crate::router(engine, auth);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // Ends on `shutdown` and also when the `Server` is dropped (the sender goes away).
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%local_addr, "jobsmith dashboard listening");
    Ok(Server { local_addr, stop: Some(stop), task: Some(task) })
}

impl Server {
    /// The address it listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections, lets open requests finish (at most 10 s), and returns when
    /// the server has stopped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "dashboard server stopped with an error"),
                Ok(_) => {}
                Err(_) => {
                    // A client kept a request open past the grace period.
                    task.abort();
                    let _ = task.await;
                }
            }
        }
    }
}
