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
    // Printed once listening (with the real port when 0 was asked for), so scripts can wait for it.
    let url = format!("http://{}", server.local_addr());
    if json {
        output::print_json(&json!({ "listening": url }));
    } else {
        println!("dashboard on {url} (stop with Ctrl-C)");
    }
    stopped().await.map_err(|e| Failure::new(format!("cannot wait for a stop signal: {e}")))?;
    server.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one (what service managers and containers
/// send), so open requests get to finish either way.
async fn stopped() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
