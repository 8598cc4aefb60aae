//! The web dashboard, served by a running node (feature `dashboard`). The same dashboard runs
//! stand-alone with `jobsmith web`.
//!
//! ```no_run
//! use jobsmith::dashboard::{Auth, DashboardExt};
//! # async fn demo(runtime: jobsmith::Runtime) -> std::io::Result<()> {
//! let server = runtime.dashboard("127.0.0.1:8080".parse().unwrap(), Auth::token("s3cret").read_only_token("look")).await?;
//! println!("dashboard on http://{}", server.local_addr());
//! # Ok(()) }
//! ```

use std::future::Future;
use std::net::SocketAddr;

pub use jobsmith_web::*;

/// Serves the dashboard from a running node.
pub trait DashboardExt {
    /// Starts the dashboard on `addr` over this node's database; every page and action needs
    /// one of `auth`'s credentials.
    fn dashboard(&self, addr: SocketAddr, auth: Auth)
    -> impl Future<Output = std::io::Result<Server>> + Send;
}

impl DashboardExt for crate::Runtime {
    fn dashboard(
        &self,
        addr: SocketAddr,
        auth: Auth,
    ) -> impl Future<Output = std::io::Result<Server>> + Send {
        jobsmith_web::serve(self.engine().clone(), addr, auth)
    }
}
