//! `jobsmith web`: serves the dashboard until Ctrl-C or SIGTERM.

use std::sync::Arc;

use jobsmith::engine::Engine;
use jobsmith_web::{Access, Auth};
use serde_json::json;

use crate::args::WebArgs;
use crate::error::Failure;
use crate::output;

/// Serves the dashboard on `args.addr` and returns once it has stopped.
pub(crate) async fn run(engine: Arc<dyn Engine>, args: WebArgs, json: bool) -> Result<(), Failure> {
    let mut auth = Auth::new();
    if let Some(token) = args.token {
        auth = auth.with_token(token, Access::Full);
    }
    if let Some(token) = args.read_only_token {
        auth = auth.read_only_token(token);
    }
    let server = jobsmith_web::serve(engine, args.addr, auth)
        .await
        .map_err(|e| Failure::new(format!("cannot serve the dashboard on {}: {e}", args.addr)))?;
    // Listen for the stop signals before saying we serve: a script that sends SIGTERM on reading
    // the line must find the handler installed, not kill the process mid-request.
    let stop =
        StopSignals::listen().map_err(|e| Failure::new(format!("cannot listen for stop signals: {e}")))?;
    // Printed once listening (with the real port when 0 was asked for), so scripts can wait for it.
    let url = format!("http://{}", server.local_addr());
    if json {
        output::print_json(&json!({ "listening": url }));
    } else {
        println!("dashboard on {url} (stop with Ctrl-C)");
    }
    stop.wait().await;
    server.shutdown().await;
    Ok(())
}

/// Ctrl-C, and SIGTERM where there is one (what service managers and containers send), so open
/// requests get to finish either way. Handlers are installed when this is made.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
