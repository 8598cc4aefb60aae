//! HTML: escaping, the page layout, and the small pieces every page shares. Pages are built as
//! strings; every value that comes from the database or the request goes through [`esc`].

pub(crate) mod cluster;
pub(crate) mod job;
pub(crate) mod jobs;
pub(crate) mod login;
pub(crate) mod queues;

use std::fmt::{self, Write as _};

use axum::http::header::{LOCATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use jobsmith_runtime::JobState;

use crate::auth::{Principal, Via};
use crate::csrf;

/// Displays `s` with `& < > " '` escaped: safe in element content and in quoted attributes.
pub(crate) fn esc(s: &str) -> Esc<'_> {
    Esc(s)
}

/// See [`esc`].
pub(crate) struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// How many bytes `c` takes once [`esc`] has escaped it, to cut text to a size before escaping.
pub(crate) fn escaped_len(c: char) -> usize {
    match c {
        '&' => "&amp;".len(),
        '<' | '>' => "&lt;".len(),
        '"' => "&quot;".len(),
        '\'' => "&#39;".len(),
        c => c.len_utf8(),
    }
}

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Queues,
    Jobs,
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

/// A whole page: navigation, the caller's access, a logout button for sessions, and `body`.
pub(crate) fn page(title: &str, nav: Nav, who: &Principal, body: &str) -> Html<String> {
    let mut out = String::with_capacity(body.len() + 4096);
    let link = |href: &str, label: &str, this: Nav| {
        let on = if nav == this { " class=\"on\"" } else { "" };
        format!("<a href=\"{href}\"{on}>{label}</a>")
    };
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width,initial-scale=1\"><title>{} · jobsmith</title><style>{STYLE}</style>\
         </head><body><header><span class=\"brand\">jobsmith</span>{}{}{}<span class=\"who\">",
        esc(title),
        link("/", "Queues", Nav::Queues),
        link("/jobs", "Jobs", Nav::Jobs),
        link("/cluster", "Cluster", Nav::Cluster),
    );
    if !who.can_act() {
        out.push_str("<span>read-only</span>");
    }
    if who.via == Via::Session {
        out.push_str("<form class=\"inline\" method=\"post\" action=\"/logout\">");
        out.push_str(&csrf_field(who));
        out.push_str("<button type=\"submit\">Log out</button></form>");
    }
    let _ = write!(out, "</span></header><main>{body}</main></body></html>");
    Html(out)
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf_field(who: &Principal) -> String {
    format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", csrf::FIELD, esc(&who.csrf))
}

/// A POST form with one button (and the CSRF field and `fields`); disabled with `why` as a
/// tooltip when the action does not apply.
pub(crate) fn action_button(
    who: &Principal,
    action: &str,
    fields: &str,
    label: &str,
    class: &str,
    disabled: Option<&str>,
) -> String {
    let state = match disabled {
        Some(why) => format!(" disabled title=\"{}\"", esc(why)),
        None => String::new(),
    };
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\">{}{fields}<button type=\"submit\" \
         class=\"{class}\"{state}>{}</button></form>",
        esc(action),
        csrf_field(who),
        esc(label)
    )
}

/// A state as a coloured label, with the id `state` on the job page so people and tests can find it.
pub(crate) fn state_badge(state: JobState, id_attr: bool) -> String {
    let id = if id_attr { " id=\"state\"" } else { "" };
    format!("<span class=\"state {state}\"{id}>{state}</span>")
}

/// UTC time to the second.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A `<time>` element.
pub(crate) fn time_el(t: DateTime<Utc>) -> String {
    format!("<time datetime=\"{}\">{}</time>", t.to_rfc3339(), time(t))
}

/// The message of a `done=` key put on the URL after an action. Only these fixed texts are
/// shown, so the parameter cannot inject anything.
pub(crate) fn notice(done: Option<&str>) -> String {
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
        _ => return String::new(),
    };
    format!("<div class=\"notice{}\" role=\"status\">{text}</div>", if bad { " bad" } else { "" })
}

/// A bare error page (no navigation: the caller may not be authenticated).
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    // Every 500 the dashboard answers is logged with its cause, in this one place.
    if status.is_server_error() {
        tracing::error!(target: "jobsmith_web", status = status.as_u16(), cause = message, "dashboard answered {status}");
    }
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · jobsmith</title>\
         <style>{STYLE}</style></head><body><main><h1>{}</h1><p>{}</p><p><a href=\"/\">Dashboard</a> · \
         <a href=\"/login\">Log in</a></p></main></body></html>",
        status.as_u16(),
        esc(status.canonical_reason().unwrap_or("Error")),
        esc(message)
    );
    (status, Html(body)).into_response()
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

/// 303 to the login page, which comes back to `uri` afterwards.
pub(crate) fn redirect_to_login(uri: &Uri) -> Response {
    let next = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish();
    see_other(&format!("/login?{query}"))
}

/// 303 See Other: after a POST, the browser GETs `location`.
pub(crate) fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(LOCATION, value)]).into_response(),
        Err(_) => error_page(StatusCode::INTERNAL_SERVER_ERROR, "bad redirect target"),
    }
}

/// `/jobs` with these query parameters (empty values left out).
pub(crate) fn jobs_url(params: &[(&str, &str)]) -> String {
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
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\"").to_string(),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("plain ünïcode").to_string(), "plain ünïcode");
    }

    #[test]
    fn escaped_len_agrees_with_esc() {
        for c in ['a', '&', '<', '>', '"', '\'', 'é', '😀'] {
            assert_eq!(escaped_len(c), esc(&c.to_string()).to_string().len(), "{c}");
        }
    }

    #[test]
    fn jobs_urls_encode_values() {
        assert_eq!(jobs_url(&[]), "/jobs");
        assert_eq!(jobs_url(&[("queue", "a b&c"), ("tag", "")]), "/jobs?queue=a+b%26c");
    }

    #[test]
    fn unknown_notices_show_nothing() {
        assert_eq!(notice(Some("<script>")), "");
        assert!(notice(Some("retried")).contains("available again"));
    }
}
