//! Logging in with a token (or user and password) into a session cookie, and out again.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::{SESSION_COOKIE, SESSION_TTL, cookie_value};
use crate::render;
use crate::routes::AppState;
use crate::secret::{ct_eq, random_token};

/// The login form's CSRF cookie: set with the form, sent back only to `/login`.
const LOGIN_CSRF_COOKIE: &str = "jobsmith_login_csrf";

/// The login page with a CSRF token in its hidden field and in a cookie only `/login` gets back
/// (double submit: another site can neither read the cookie nor, with SameSite=Strict, make the
/// browser send it, so a forged login cannot bring both). A browser that already has the cookie
/// keeps its value, so two login tabs, or a page loaded twice, do not outdate each other's form.
fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
) -> Response {
    let csrf = cookie_value(headers, LOGIN_CSRF_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or_else(random_token, str::to_string);
    let page = render::login::page(state.gate.has_basic(), next, &csrf, error);
    let cookie = format!(
        "{LOGIN_CSRF_COOKIE}={csrf}; Path={}; HttpOnly; SameSite=Strict; Max-Age=3600",
        render::url("/login")
    );
    let mut response = (status, page).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct NextParam {
    next: Option<String>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextParam>,
) -> Response {
    login_page(&state, &headers, StatusCode::OK, &safe_next(q.next.as_deref()), None)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// Logs in. The form's CSRF token must match its cookie (else a forged form could log a browser
/// in as the attacker, whose session would then see what the victim does), checked before the
/// credentials, so a forged form learns nothing about them either.
pub(crate) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let cookie = cookie_value(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if cookie.is_empty() || !bool::from(ct_eq(cookie.as_bytes(), form.csrf.as_bytes())) {
        let why =
            "The login form's CSRF token is missing or wrong (was the page open a long time?). Try again.";
        return login_page(&state, &headers, StatusCode::FORBIDDEN, &next, Some(why));
    }
    let found = if !form.token.is_empty() {
        state.gate.match_token(form.token.trim())
    } else if !form.username.is_empty() {
        state.gate.match_basic(&form.username, &form.password)
    } else {
        None
    };
    let Some((access, _)) = found else {
        return login_page(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            &next,
            Some("Those credentials are not valid."),
        );
    };
    let id = state.gate.start_session(access);
    // Behind a TLS-terminating proxy the cookie is also marked Secure. The header is only a
    // hint (a client could send it), but a wrong hint merely stops that client's own login.
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path={}; HttpOnly; SameSite=Strict; Max-Age={}{}",
        render::url("/"),
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
    let expired =
        format!("{SESSION_COOKIE}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0", render::url("/"));
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
