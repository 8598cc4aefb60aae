//! The jobsmith dashboard: a small server-rendered web UI over any [`Engine`].
//!
//! It shows every queue with its job counts per state and lets an operator pause, resume and
//! scale a queue cluster-wide; lists jobs with filters and search; shows one job with its args,
//! metadata, errors and timeline and retries, cancels or deletes it; and charts throughput next to
//! the live nodes and the leader.
//!
//! Every page and action needs a credential from an [`Auth`]: a token (as
//! `Authorization: Bearer`, or typed once into the login form, which then sets an HttpOnly,
//! SameSite=Strict session cookie) or basic-auth credentials. Read-only credentials see everything
//! and change nothing. Every action is a POST carrying a per-session CSRF token.
//!
//! ```no_run
//! # async fn demo(engine: std::sync::Arc<dyn jobsmith_runtime::engine::Engine>) -> std::io::Result<()> {
//! let auth = jobsmith_web::Auth::token("a-long-random-admin-token").read_only_token("a-long-random-viewer-token");
//! let server = jobsmith_web::serve(engine, "127.0.0.1:8080".parse().unwrap(), auth).await?;
//! println!("dashboard on http://{}", server.local_addr());
//! // ... later
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! A token works three ways: `Authorization: Bearer <token>`, as the password of HTTP basic auth
//! under any user name (`curl -u ops:<token>`, for tools that speak only basic auth), or typed
//! into the login form. `jobsmith web` refuses tokens shorter than 16 characters. The login form
//! carries a CSRF token of its own (in a hidden field and a cookie only `/login` gets back), so a
//! forged form cannot log a browser in. Every 5xx answer is logged at `error` with its cause
//! (target `jobsmith_web`).
//!
//! Every route, and who may use it ("any credential" includes read-only ones; every POST needs
//! the CSRF token of the caller's pages):
//!
//! | route | method | who |
//! | --- | --- | --- |
//! | `/login` | GET, POST | anyone (the form; POST needs the form's own CSRF token) |
//! | `/` (queues and counts) | GET | any credential |
//! | `/queue?name=<queue>` (one queue: counts, settings, nodes, running jobs, partitions, chart) | GET | any credential |
//! | `/jobs`, `/jobs/{id}`, `/jobs/{id}/args.json` | GET | any credential |
//! | `/cron` (entries, `?edit=<name>` fills the form) | GET | any credential |
//! | `/cluster` (nodes, leader, throughput) | GET | any credential |
//! | `/queues/pause`, `/queues/resume`, `/queues/scale` | POST | full access |
//! | `/jobs/{id}/retry`, `/jobs/{id}/cancel`, `/jobs/{id}/delete` | POST | full access |
//! | `/cron/save` (add or edit), `/cron/pause`, `/cron/resume`, `/cron/run`, `/cron/remove` | POST | full access |
//! | `/logout` | POST | any session |
//!
//! (Under a prefix, every route moves with it: `/ops/jobs/login`, `/ops/jobs/jobs/{id}`, ...)
//!
//! Anything else is 401 without a credential (a browser's GET is sent to `/login`), 403 for a
//! read-only caller's POST, 404 otherwise.
//!
//! The dashboard speaks plain HTTP: put it behind a TLS-terminating proxy (or keep it on
//! loopback) when the network between it and the browser is not trusted.
//!
//! # Inside your own axum app
//!
//! [`router`] is an ordinary axum [`Router`](axum::Router): nest it under any path, and its
//! links, form targets, redirects and cookie paths follow (it reads the prefix that `nest`
//! stripped, so nothing is configured twice). Its root is the prefix itself: axum's `nest` routes
//! `/ops/jobs` but not `/ops/jobs/`. Behind your own authentication, let your middleware decide
//! who gets in with [`Auth::upstream`]: it puts an [`Access`] into the request's extensions,
//! and the dashboard still checks its CSRF token on every change.
//!
//! ```no_run
//! # async fn demo(engine: std::sync::Arc<dyn jobsmith_runtime::engine::Engine>) -> std::io::Result<()> {
//! use axum::{Router, routing::get};
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "the application" }))
//!     .nest("/ops/jobs", jobsmith_web::router(engine, jobsmith_web::Auth::token("a-long-random-admin-token")));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! The pages are built with [maud](https://maud.lambda.xyz): every value is escaped unless the
//! code says `PreEscaped`, and a template that does not parse does not compile (ADR 28).
//!
//! Login sessions live in the dashboard's memory, in a small store of its own rather than a
//! session crate such as tower-sessions: a session here is one fact (the access level, with its
//! CSRF token) under the SHA-256 of a random 256-bit id, lasting 12 hours, at most 10,000 kept.
//! A session crate would add a middleware layer, a cookie crate and a serialisation format for
//! session data, and would still keep them in memory. So a restart ends every session (people
//! log in again), and several dashboard processes behind one address do not share sessions:
//! route each browser to one process, or use `Authorization` headers, which every process
//! accepts.
//!
//! [`Engine`]: jobsmith_runtime::engine::Engine

mod auth;
mod chart;
mod csrf;
mod guard;
mod render;
mod routes;
mod secret;
mod server;

use std::sync::Arc;

use jobsmith_runtime::engine::Engine;

pub use auth::{Access, Auth};
pub use server::{Server, serve};

/// The dashboard as an axum [`Router`](axum::Router), to serve with your own listener, merge into
/// another router at its root, or `nest` under a path of your choice (see the crate docs).
///
/// With an `auth` that admits nothing every request is refused; [`serve`] rejects an `auth`
/// without a token or basic credential outright.
pub fn router(engine: Arc<dyn Engine>, auth: Auth) -> axum::Router {
    routes::build(engine, auth)
}
