//! Logging in with a token (or user and password) into a session cookie, and out again.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::{SESSION_COOKIE, SESSION_TTL};
use crate::render;
use crate::routes::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct NextParam {
    next: Option<String>,
}

pub(crate) async fn page(State(state): State<AppState>, Query(q): Query<NextParam>) -> Response {
    render::login::page(state.gate.has_basic(), &safe_next(q.next.as_deref()), None).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

// The login form carries no CSRF token: there is no session yet to tie one to, and the worst a
// forged login could do is log a browser in with credentials the attacker already holds. Every
// action after it is protected.
pub(crate) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let found = if !form.token.is_empty() {
        state.gate.match_token(form.token.trim())
    } else if !form.username.is_empty() {
        state.gate.match_basic(&form.username, &form.password)
    } else {
        None
    };
    let Some((access, _)) = found else {
        let page =
            render::login::page(state.gate.has_basic(), &next, Some("Those credentials are not valid."));
        return (StatusCode::UNAUTHORIZED, page).into_response();
    };
    let id = state.gate.start_session(access);
    // Behind a TLS-terminating proxy the cookie is also marked Secure. The header is only a
    // hint (a client could send it), but a wrong hint merely stops that client's own login.
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut response = render::see_other(&next);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.gate.end_session(&headers);
    let mut response = render::see_other("/login");
    let expired = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

/// Where to go after logging in: only a path on this site, never `//other.example` or
/// `https://...`, so the login page cannot be used to bounce people elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control()) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/jobs?state=discarded")), "/jobs?state=discarded");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/a\r\nSet-Cookie: x")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
