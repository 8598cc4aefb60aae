//! The middleware in front of every page and action except the login page: authenticates,
//! refuses changes to read-only callers, checks the CSRF token of every change.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{Access, Presented};
use crate::csrf;
use crate::render;
use crate::routes::AppState;

/// Forms are a few fields; anything larger is not ours.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The path of the one change read-only callers may make: ending their own session.
const LOGOUT: &str = "/logout";

pub(crate) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let reads = req.method() == Method::GET || req.method() == Method::HEAD;
    let principal = match state.gate.check(req.headers(), req.extensions()) {
        Presented::Known(principal) => principal,
        Presented::Wrong => {
            return render::unauthorized("These credentials are not valid.");
        }
        // The application's own authentication decides, and it did not admit this request.
        Presented::Nothing if state.gate.upstream_only() => {
            return render::unauthorized("The application did not authenticate this request.");
        }
        // A browser that is not logged in is sent to the login page, and back here afterwards.
        Presented::Nothing if reads => return render::redirect_to_login(req.uri()),
        Presented::Nothing => return render::unauthorized("Log in first."),
    };
    let mut req = if reads {
        req
    } else {
        if principal.access == Access::ReadOnly && req.uri().path() != LOGOUT {
            return render::error_page(
                StatusCode::FORBIDDEN,
                "Read-only credentials cannot change anything.",
            );
        }
        // The body is read here, checked, and handed on unchanged, so no handler can forget the
        // check.
        let (parts, body) = req.into_parts();
        let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
            return render::error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
        };
        if !csrf::is_valid(&principal.csrf, &parts.headers, &bytes) {
            return render::error_page(
                StatusCode::FORBIDDEN,
                "The form's CSRF token is missing or wrong. Reload the page and try again.",
            );
        }
        Request::from_parts(parts, Body::from(bytes))
    };
    req.extensions_mut().insert(principal);
    next.run(req).await.into_response()
}
