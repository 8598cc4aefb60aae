//! HTML: the page layout and the small pieces every page shares, built with [maud]'s `html!`,
//! which escapes every value it is given unless it is wrapped in `PreEscaped` (used once, for the
//! constant stylesheet). A value from the database or the request cannot reach a page unescaped
//! without that word in the code, and a malformed template does not compile (ADR 28).
//!
//! Every link, redirect and cookie path goes through [`url`], which puts the path the dashboard
//! is mounted at in front (see [`mounted`]).

pub(crate) mod cluster;
pub(crate) mod cron;
pub(crate) mod job;
pub(crate) mod jobs;
pub(crate) mod login;
pub(crate) mod queue;
pub(crate) mod queues;

use std::future::Future;
use std::sync::Arc;

use axum::http::header::{LOCATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use jobsmith_runtime::JobState;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::auth::{Principal, Via};
use crate::csrf;

tokio::task_local! {
    /// The path the dashboard is mounted at for the request being answered ("" at the root).
    /// A task-local rather than a parameter: every link, redirect and error page needs it,
    /// including the error responses built from `WebError` far from any request.
    static BASE: Arc<str>;
}

/// Runs `answer` (a request's whole handling) with `base` as the mount path that [`url`] uses.
pub(crate) async fn mounted<F: Future>(base: Arc<str>, answer: F) -> F::Output {
    BASE.scope(base, answer).await
}

/// The mount path of the request being answered; "" at the root and outside any request.
pub(crate) fn base() -> Arc<str> {
    BASE.try_with(Arc::clone).unwrap_or_else(|_| Arc::from(""))
}

/// `path`, a path within the dashboard (`/jobs?state=discarded`), as the browser must ask for
/// it: with the mount path in front, and the dashboard's root without a trailing slash when it
/// is mounted under a prefix (`/ops/jobs` rather than `/ops/jobs/`).
pub(crate) fn url(path: &str) -> String {
    let base = base();
    if base.is_empty() {
        return path.to_string();
    }
    match path.strip_prefix('/') {
        Some(rest) if rest.is_empty() || rest.starts_with('?') => format!("{base}{rest}"),
        _ => format!("{base}{path}"),
    }
}

/// How many bytes `c` takes once escaped in element content, to cut text to a size before
/// escaping (maud escapes `& < > "`).
pub(crate) fn escaped_len(c: char) -> usize {
    match c {
        '&' => "&amp;".len(),
        '<' | '>' => "&lt;".len(),
        '"' => "&quot;".len(),
        c => c.len_utf8(),
    }
}

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Queues,
    Jobs,
    Cron,
    Cluster,
}

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;background:#f5f6f8}
header{display:flex;align-items:center;gap:1.5em;padding:.6em 1.5em;background:#1d2330;color:#fff}
header a{color:#cfd6e4;text-decoration:none}header a.on,header a:hover{color:#fff}
header .brand{font-weight:700;color:#fff}header .who{margin-left:auto;display:flex;gap:1em;align-items:center}
main{padding:1.2em 1.5em;max-width:1300px}
h1{font-size:1.35em;margin:.2em 0 .8em}h2{font-size:1.1em;margin:1.4em 0 .5em}
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:1em}
th,td{padding:.4em .6em;border-bottom:1px solid #e3e6eb;text-align:left;vertical-align:top}
th{background:#eef0f4;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
a{color:#2357c6}pre{background:#fff;border:1px solid #e3e6eb;padding:.7em;overflow:auto;margin:0 0 1em;white-space:pre-wrap;word-break:break-word}
form.inline{display:inline-flex;gap:.3em;margin:0 .3em 0 0;align-items:center}
button{font:inherit;padding:.25em .8em;border:1px solid #9aa3b2;border-radius:4px;background:#fff;cursor:pointer}
button:hover{background:#eef0f4}button[disabled]{opacity:.45;cursor:not-allowed}
button.danger{border-color:#c33;color:#c33}
input,select{font:inherit;padding:.25em .4em;border:1px solid #9aa3b2;border-radius:4px}
input[type=number]{width:6em}
.filters{display:flex;flex-wrap:wrap;gap:.6em;align-items:end;margin-bottom:1em}
.filters label{display:flex;flex-direction:column;font-size:.85em;color:#5a6476}
.state{display:inline-block;padding:0 .5em;border-radius:9px;font-size:.85em;background:#e3e6eb}
.state.completed{background:#d5f0dc}.state.discarded{background:#f7d4d4}.state.cancelled{background:#eadff5}
.state.executing{background:#d6e6fb}.state.retryable{background:#fbe8c8}.state.scheduled{background:#e6eef9}
.notice{padding:.6em 1em;background:#e8f1ff;border:1px solid #b7cdf2;margin-bottom:1em}
.notice.bad{background:#fdecec;border-color:#f0b9b9}
.muted{color:#6b7485}.paused{color:#b35c00;font-weight:600}
.timeline{list-style:none;padding:0;border-left:2px solid #c8ced8;margin-left:.5em}
.timeline li{padding:.2em 0 .6em 1em}.timeline time{color:#5a6476;font-variant-numeric:tabular-nums}
.card{background:#fff;border:1px solid #e3e6eb;padding:1em 1.2em;max-width:380px}
.card label{display:block;margin:.5em 0}.card input{width:100%}
#details th{width:10em}#errors th:nth-child(1){width:5em}#errors th:nth-child(2){width:13em}
svg text{font:11px system-ui,sans-serif;fill:#5a6476}
"#;

/// The `<head>` every page shares.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width,initial-scale=1";
            title { (title) " · jobsmith" }
            // The one unescaped text: a constant of this file.
            style { (PreEscaped(STYLE)) }
        }
    }
}

/// A whole page: navigation, the caller's access, a logout button for sessions, and `body`.
pub(crate) fn page(title: &str, nav: Nav, who: &Principal, body: Markup) -> Html<String> {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header {
                    span.brand { "jobsmith" }
                    a.on[nav == Nav::Queues] href=(url("/")) { "Queues" }
                    a.on[nav == Nav::Jobs] href=(url("/jobs")) { "Jobs" }
                    a.on[nav == Nav::Cron] href=(url("/cron")) { "Cron" }
                    a.on[nav == Nav::Cluster] href=(url("/cluster")) { "Cluster" }
                    span.who {
                        // Live refresh (assets/live.js); the script names the state.
                        button type="button" id="live-toggle" aria-pressed="true" { "Live" }
                        @if !who.can_act() { span { "read-only" } }
                        @if who.via == Via::Session {
                            form.inline method="post" action=(url("/logout")) {
                                (csrf_field(who))
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { (body) }
                script src=(url("/assets/live.js")) defer {}
            }
        }
    };
    Html(doc.into_string())
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf_field(who: &Principal) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(who.csrf); }
}

/// A POST form to `action` (a dashboard path) with one button, the CSRF field and `fields`;
/// disabled with `why` as a tooltip when the action does not apply.
pub(crate) fn action_button(
    who: &Principal,
    action: &str,
    fields: Markup,
    label: &str,
    class: &str,
    disabled: Option<&str>,
) -> Markup {
    let class = (!class.is_empty()).then_some(class);
    html! {
        form.inline method="post" action=(url(action)) {
            (csrf_field(who))
            (fields)
            button type="submit" class=[class] disabled[disabled.is_some()] title=[disabled] { (label) }
        }
    }
}

/// A state as a coloured label, with the id `state` on the job page so people and tests can find it.
pub(crate) fn state_badge(state: JobState, id_attr: bool) -> Markup {
    html! { span class={ "state " (state) } id=[id_attr.then_some("state")] { (state) } }
}

/// UTC time to the second.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A `<time>` element.
pub(crate) fn time_el(t: DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (time(t)) } }
}

/// The message of a `done=` key put on the URL after an action, with `n` the number of jobs a
/// bulk action changed. Only these fixed texts (and a number) are shown, so the parameters cannot
/// inject anything.
pub(crate) fn notice_with_count(done: Option<&str>, n: Option<u64>) -> Markup {
    let n = n.unwrap_or(0);
    let plural = if n == 1 { "" } else { "s" };
    let text = match done.unwrap_or("") {
        "bulk-retry" => format!("Retried {n} job{plural}."),
        "bulk-cancel" => format!("Cancelled {n} job{plural}."),
        "bulk-delete" => format!("Deleted {n} job{plural}."),
        _ => return notice(done),
    };
    html! { div.notice role="status" { (text) } }
}

/// The message of a `done=` key put on the URL after an action. Only these fixed texts are
/// shown, so the parameter cannot inject anything.
pub(crate) fn notice(done: Option<&str>) -> Markup {
    let (text, bad) = match done.unwrap_or("") {
        "paused" => ("Queue paused on every node.", false),
        "resumed" => ("Queue resumed on every node.", false),
        "scaled" => ("Queue concurrency changed on every node.", false),
        "retried" => ("Job made available again.", false),
        "retry-refused" => ("Only discarded or cancelled jobs can be retried.", true),
        "cancelled" => ("Job cancelled.", false),
        "cancel-refused" => ("The job had already finished.", true),
        "deleted" => ("Job deleted.", false),
        "delete-refused" => ("Executing jobs cannot be deleted; cancel it first.", true),
        "cron-added" => ("Cron entry added; the leader runs it from its next pass.", false),
        "cron-changed" => ("Cron entry changed.", false),
        "cron-paused" => ("Cron entry paused: its slots pass without jobs.", false),
        "cron-resumed" => ("Cron entry resumed.", false),
        "cron-removed" => ("Cron entry removed.", false),
        "cron-ran" => ("Inserted by the cron entry's \"run now\".", false),
        _ => return html! {},
    };
    html! { div.notice.bad[bad] role="status" { (text) } }
}

/// A bare error page (no navigation: the caller may not be authenticated).
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    // Every 500 the dashboard answers is logged with its cause, in this one place.
    if status.is_server_error() {
        tracing::error!(target: "jobsmith_web", status = status.as_u16(), cause = message, "dashboard answered {status}");
    }
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            (head(&status.as_u16().to_string()))
            body {
                main {
                    h1 { (status.canonical_reason().unwrap_or("Error")) }
                    p { (message) }
                    p { a href=(url("/")) { "Dashboard" } " · " a href=(url("/login")) { "Log in" } }
                }
            }
        }
    };
    (status, Html(doc.into_string())).into_response()
}

/// 401 with the challenges a client can answer: a bearer token, or basic auth (whose password
/// may be a token under any user name).
pub(crate) fn unauthorized(message: &str) -> Response {
    let mut response = error_page(StatusCode::UNAUTHORIZED, message);
    let headers = response.headers_mut();
    headers.append(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"jobsmith\""));
    headers.append(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"jobsmith\", charset=\"UTF-8\""));
    response
}

/// 303 to the login page, which comes back to `uri` (a path within the dashboard) afterwards.
pub(crate) fn redirect_to_login(uri: &Uri) -> Response {
    let next = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish();
    see_other(&format!("/login?{query}"))
}

/// 303 See Other to `path` within the dashboard: after a POST, the browser GETs it.
pub(crate) fn see_other(path: &str) -> Response {
    match HeaderValue::from_str(&url(path)) {
        Ok(value) => (StatusCode::SEE_OTHER, [(LOCATION, value)]).into_response(),
        Err(_) => error_page(StatusCode::INTERNAL_SERVER_ERROR, "bad redirect target"),
    }
}

/// The link to `/jobs` with these query parameters (empty values left out), mount path included.
pub(crate) fn jobs_url(params: &[(&str, &str)]) -> String {
    url(&jobs_path(params))
}

/// `/jobs` with these query parameters (empty values left out), within the dashboard (for
/// [`see_other`], which adds the mount path itself).
pub(crate) fn jobs_path(params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (name, value) in params.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(name, value);
        any = true;
    }
    if any { format!("/jobs?{}", query.finish()) } else { "/jobs".to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log sink for one test.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_server_error_is_logged_with_its_cause_and_nothing_else_is() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber =
            tracing_subscriber::fmt().with_ansi(false).with_writer(move || sink.clone()).finish();
        tracing::subscriber::with_default(subscriber, || {
            error_page(StatusCode::INTERNAL_SERVER_ERROR, "The database call failed: connection reset");
            error_page(StatusCode::NOT_FOUND, "no job 7");
            unauthorized("Log in first.");
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("ERROR") && log.contains("The database call failed: connection reset"), "{log}");
        assert!(log.contains("500"), "{log}");
        assert!(!log.contains("no job 7") && !log.contains("Log in first"), "only server errors: {log}");
    }

    #[test]
    fn values_are_escaped_and_escaped_len_agrees() {
        for c in ['a', '&', '<', '>', '"', 'é', '😀'] {
            let text = c.to_string();
            let shown = html! { (text) }.into_string();
            assert_eq!(escaped_len(c), shown.len(), "{c}");
        }
        assert_eq!(html! { p { ("<script>") } }.into_string(), "<p>&lt;script&gt;</p>");
    }

    #[tokio::test]
    async fn links_carry_the_mount_path() {
        assert_eq!(url("/jobs"), "/jobs");
        let base: Arc<str> = Arc::from("/ops/jobsmith");
        mounted(base, async {
            assert_eq!(url("/"), "/ops/jobsmith");
            assert_eq!(url("/?done=paused"), "/ops/jobsmith?done=paused");
            assert_eq!(url("/jobs/7"), "/ops/jobsmith/jobs/7");
            assert_eq!(jobs_url(&[("queue", "a b")]), "/ops/jobsmith/jobs?queue=a+b");
        })
        .await;
    }

    #[test]
    fn jobs_urls_encode_values() {
        assert_eq!(jobs_url(&[]), "/jobs");
        assert_eq!(jobs_url(&[("queue", "a b&c"), ("tag", "")]), "/jobs?queue=a+b%26c");
    }

    #[test]
    fn unknown_notices_show_nothing() {
        assert_eq!(notice(Some("<script>")).into_string(), "");
        assert!(notice(Some("retried")).into_string().contains("available again"));
    }
}
