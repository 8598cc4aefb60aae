//! The router: which handler answers which path, and the layers around them.
//!
//! Every route except `/login` sits behind [`crate::guard::guard`]. tests/security.rs walks every
//! route listed here: add new routes there too.

pub(crate) mod cluster;
pub(crate) mod cron;
pub(crate) mod jobs;
pub(crate) mod login;
pub(crate) mod queues;

use std::sync::Arc;

use axum::Router;
use axum::extract::{OriginalUri, Request};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next, from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jobsmith_runtime::engine::Engine;

use crate::auth::{Auth, Gate};
use crate::guard::guard;
use crate::render;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) gate: Arc<Gate>,
}

pub(crate) fn build(engine: Arc<dyn Engine>, auth: Auth) -> Router {
    let state = AppState { engine, gate: Arc::new(Gate::new(auth)) };
    let guarded = Router::new()
        .route("/", get(queues::overview))
        .route("/queue", get(queues::queue_page))
        .route("/queues/pause", post(queues::pause))
        .route("/queues/resume", post(queues::resume))
        .route("/queues/scale", post(queues::scale))
        .route("/jobs", get(jobs::list))
        .route("/jobs/bulk", post(jobs::bulk))
        .route("/jobs/{id}", get(jobs::show))
        .route("/jobs/{id}/args.json", get(jobs::args_json))
        .route("/jobs/{id}/retry", post(jobs::retry))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/jobs/{id}/delete", post(jobs::delete))
        .route("/cron", get(cron::page))
        .route("/cron/save", post(cron::save))
        .route("/cron/pause", post(cron::pause))
        .route("/cron/resume", post(cron::resume))
        .route("/cron/run", post(cron::run))
        .route("/cron/remove", post(cron::remove))
        .route("/cluster", get(cluster::page))
        .route("/logout", post(login::logout))
        .route("/assets/live.js", get(live_js))
        // Unknown paths are guarded too, so they tell an anonymous caller nothing.
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), guard));
    Router::new()
        .route("/login", get(login::page).post(login::submit))
        .merge(guarded)
        .layer(map_response(security_headers))
        .layer(middleware::from_fn(mount))
        .with_state(state)
}

/// Finds the path the dashboard is mounted at (what an enclosing `Router::nest` stripped from
/// the path) and answers the request with it, so every link, redirect and cookie carries it.
async fn mount(req: Request, next: Next) -> Response {
    let original = req.extensions().get::<OriginalUri>().map(|o| o.0.path().to_owned());
    match mount_path(original.as_deref(), req.uri().path()) {
        Some(base) => render::mounted(Arc::from(base), next.run(req)).await,
        None => render::error_page(
            StatusCode::BAD_REQUEST,
            "The dashboard is mounted at a path it cannot link to: use letters, digits and - . _ ~ / only.",
        ),
    }
}

/// The prefix of `original` (the path the client asked for) that the enclosing routers
/// stripped to leave `inner`, without a trailing slash; "" at the root. `None` when the prefix
/// holds characters that could break out of a cookie's `Path` or a `Location` header.
fn mount_path(original: Option<&str>, inner: &str) -> Option<String> {
    let Some(original) = original else { return Some(String::new()) };
    let base = match original.strip_suffix(inner) {
        Some(base) => base,
        // `nest("/ops", ..)` hands `/ops` itself on as `/`.
        None if inner == "/" => original,
        None => "",
    };
    let base = base.trim_end_matches('/');
    // `//host` would read as another site in a Location header.
    if base.starts_with("//") {
        return None;
    }
    base.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b)).then(|| base.to_string())
}

/// The live-refresh script: a constant of this crate, the only script the pages load.
async fn live_js() -> Response {
    const LIVE_JS: &str = include_str!("../../assets/live.js");
    ([(axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")], LIVE_JS).into_response()
}

async fn not_found() -> Response {
    render::error_page(StatusCode::NOT_FOUND, "There is no such page.")
}

/// Headers on every response: no framing (clickjacking), no scripts but the dashboard's own file
/// (`/assets/live.js`; no inline script runs, so an injection that slipped past escaping still
/// could not), no caching of pages that show job data, no referrer leaking filter values.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; \
             img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Why a handler could not answer.
#[derive(Debug)]
pub(crate) enum WebError {
    /// The engine failed.
    Engine(jobsmith_runtime::Error),
    /// The request does not make sense.
    BadRequest(String),
    /// Nothing there.
    NotFound(String),
}

impl From<jobsmith_runtime::Error> for WebError {
    fn from(e: jobsmith_runtime::Error) -> Self {
        WebError::Engine(e)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::Engine(e) => {
                // error_page logs it.
                render::error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("The database call failed: {e}"),
                )
            }
            WebError::BadRequest(why) => render::error_page(StatusCode::BAD_REQUEST, &why),
            WebError::NotFound(what) => render::error_page(StatusCode::NOT_FOUND, &what),
        }
    }
}

/// A query or form value, `None` when missing or blank (an empty filter field means "any").
pub(crate) fn non_empty(value: &Option<String>) -> Option<String> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::mount_path;

    #[test]
    fn the_mount_path_is_what_the_enclosing_routers_stripped() {
        assert_eq!(mount_path(None, "/jobs").as_deref(), Some(""));
        assert_eq!(mount_path(Some("/jobs"), "/jobs").as_deref(), Some(""));
        assert_eq!(mount_path(Some("/ops/jobs/7"), "/jobs/7").as_deref(), Some("/ops"));
        assert_eq!(mount_path(Some("/ops"), "/").as_deref(), Some("/ops"));
        assert_eq!(mount_path(Some("/ops/"), "/").as_deref(), Some("/ops"));
        assert_eq!(mount_path(Some("/a/b/login"), "/login").as_deref(), Some("/a/b"));
        assert_eq!(mount_path(Some("/x;Path=/y/jobs"), "/jobs"), None);
        assert_eq!(mount_path(Some("//evil.example/jobs"), "/jobs"), None);
    }
}
