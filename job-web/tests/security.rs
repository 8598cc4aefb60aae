//! Route security without a browser: every route refuses anonymous and wrong callers, read-only
//! callers cannot change anything, every change needs the CSRF token, and user data is escaped.
//!
//! The route lists below must name every route of `src/routes/mod.rs`.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine as _;
use jobsmith::{Db, InsertBuilder, JobState};
use jobsmith_web::{Auth, router};
use tower::ServiceExt;

const FULL: &str = "full-token-7f3a9c";
const READ_ONLY: &str = "read-only-token-41d2e8";
const XSS: &str = "<script>alert('pwned')</script>";

/// Renders a report; never run here, only stored.
#[jobsmith::job(queue = "reports")]
async fn render_report(title: String) -> Result<(), String> {
    let _ = title;
    Ok(())
}

struct Fixture {
    app: Router,
    db: Db,
    job: i64,
}

async fn fixture() -> Fixture {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let job = db
        .insert(
            InsertBuilder::from(RenderReport { title: XSS.into() })
                .tags([XSS])
                .meta(serde_json::json!({ "note": XSS })),
        )
        .await
        .unwrap()
        .job
        .id;
    // A stored cron entry whose name and args are user data too.
    let entry = jobsmith::CronEntry::new("0 2 * * *", RenderReport { title: XSS.into() }).unwrap().named(XSS);
    db.cron().save(entry).await.unwrap();
    let auth = Auth::token(FULL)
        .read_only_token(READ_ONLY)
        .basic("admin", "admin-pw")
        .read_only_basic("viewer", "viewer-pw");
    Fixture { app: router(db.engine().clone(), auth), db, job }
}

/// Every page, as a GET.
fn pages(job: i64) -> Vec<String> {
    vec![
        "/".into(),
        "/jobs".into(),
        "/jobs?state=discarded&queue=reports&worker=x&tag=y&q=z".into(),
        format!("/jobs/{job}"),
        format!("/jobs/{job}/args.json"),
        "/cluster".into(),
        "/queue?name=reports".into(),
        "/cron".into(),
        format!("/cron?edit={}", form_urlencoded_name()),
        "/assets/live.js".into(),
        "/no-such-page".into(),
    ]
}

/// Every action, as a POST with its form fields (without the CSRF token).
fn actions(job: i64) -> Vec<(String, &'static str)> {
    vec![
        ("/queues/pause".into(), "queue=reports"),
        ("/queues/resume".into(), "queue=reports"),
        ("/queues/scale".into(), "queue=reports&concurrency=3"),
        (format!("/jobs/{job}/retry"), ""),
        (format!("/jobs/{job}/cancel"), ""),
        (format!("/jobs/{job}/delete"), "confirm=yes"),
        // (Leaked: the list holds `&'static str` forms, and this one names the job.)
        (
            "/jobs/bulk".into(),
            Box::leak(format!("action=cancel&scope=checked&id={job}&confirm=yes").into_boxed_str()),
        ),
        ("/jobs/bulk".into(), "action=delete&scope=filter&queue=reports&confirm=yes"),
        ("/cron/save".into(), "mode=add&name=n&expr=0+2+*+*+*&worker=w"),
        ("/cron/pause".into(), CRON_NAME_FIELD),
        ("/cron/resume".into(), CRON_NAME_FIELD),
        ("/cron/run".into(), CRON_NAME_FIELD),
        ("/cron/remove".into(), "name=%3Cscript%3Ealert%28%27pwned%27%29%3C%2Fscript%3E&confirm=yes"),
        ("/logout".into(), ""),
    ]
}

/// The form field naming the fixture's cron entry.
const CRON_NAME_FIELD: &str = "name=%3Cscript%3Ealert%28%27pwned%27%29%3C%2Fscript%3E";

/// The fixture's cron entry name, for a query string.
fn form_urlencoded_name() -> String {
    CRON_NAME_FIELD.trim_start_matches("name=").to_string()
}

/// The fixture's cron entry: paused or not, and whether it still exists.
async fn cron_entry(db: &Db) -> Option<bool> {
    db.cron().list().await.unwrap().into_iter().find(|l| l.entry.name == XSS).map(|l| l.entry.paused)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(app: &Router, method: Method, uri: &str, headers: &[(&str, String)], body: &str) -> Reply {
    let mut req = Request::builder().method(method.clone()).uri(uri);
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    if method == Method::POST {
        req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let response = app.clone().oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![(AUTHORIZATION.as_str(), format!("Bearer {token}"))]
}

fn basic(user: &str, password: &str) -> Vec<(&'static str, String)> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    vec![(AUTHORIZATION.as_str(), format!("Basic {encoded}"))]
}

fn cookie(session: &str) -> Vec<(&'static str, String)> {
    vec![(COOKIE.as_str(), format!("jobsmith_session={session}"))]
}

/// The CSRF token the page's forms carry.
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("the page has a form with a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_string()
}

/// Submits the login form as a browser does: gets the page (its CSRF field and cookie), then
/// posts `form` with them and `headers`.
async fn post_login(app: &Router, headers: &[(&str, String)], form: &str) -> Reply {
    let page = send(app, Method::GET, "/login", &[], "").await;
    let csrf = csrf_of(&page.body);
    let set = page.headers.get(SET_COOKIE).expect("the login page sets its CSRF cookie").to_str().unwrap();
    let pair = set.split(';').next().unwrap().to_string();
    let mut headers = headers.to_vec();
    headers.push((COOKIE.as_str(), pair));
    let form = if form.is_empty() { format!("csrf={csrf}") } else { format!("{form}&csrf={csrf}") };
    send(app, Method::POST, "/login", &headers, &form).await
}

/// Logs in through the form; returns the session id.
async fn login(app: &Router, token: &str) -> String {
    let r = post_login(app, &[], &format!("token={token}&next=%2F")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let set = r.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    set.strip_prefix("jobsmith_session=").unwrap().split(';').next().unwrap().to_string()
}

/// Whether the answer sets a session cookie.
fn sets_a_session(r: &Reply) -> bool {
    r.headers.get_all(SET_COOKIE).iter().any(|v| v.to_str().unwrap().starts_with("jobsmith_session="))
}

async fn queue_paused(db: &Db) -> Option<bool> {
    db.engine()
        .queue_settings()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == "reports")
        .and_then(|s| s.paused)
}

async fn job_state(db: &Db, id: i64) -> Option<JobState> {
    db.engine().get_job(id).await.unwrap().map(|j| j.state)
}

#[tokio::test]
async fn anonymous_browsers_are_sent_to_login_from_every_page() {
    let f = fixture().await;
    for page in pages(f.job) {
        let r = send(&f.app, Method::GET, &page, &[], "").await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "GET {page}");
        let location = r.headers.get(LOCATION).unwrap().to_str().unwrap();
        assert!(location.starts_with("/login?next=%2F"), "GET {page} -> {location}");
        assert!(!r.body.contains("reports"), "GET {page} leaked data");
    }
    // HEAD is a read too.
    let r = send(&f.app, Method::HEAD, "/jobs", &[], "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // The login page itself is public and shows nothing else.
    let r = send(&f.app, Method::GET, "/login", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("name=\"token\"") && !r.body.contains("reports"));
}

#[tokio::test]
async fn anonymous_callers_are_refused_every_action() {
    let f = fixture().await;
    for (action, fields) in actions(f.job) {
        let r = send(&f.app, Method::POST, &action, &[], fields).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "POST {action}");
        assert!(r.headers.get(WWW_AUTHENTICATE).is_some(), "POST {action}");
    }
    // Other methods on any path are refused the same way.
    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let r = send(&f.app, method.clone(), &format!("/jobs/{}", f.job), &[], "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method}");
    }
    assert_eq!(queue_paused(&f.db).await, None);
    assert_eq!(job_state(&f.db, f.job).await, Some(JobState::Available));
    assert_eq!(cron_entry(&f.db).await, Some(false), "the cron entry is untouched");
}

#[tokio::test]
async fn wrong_credentials_are_refused_everywhere() {
    let f = fixture().await;
    let wrong: Vec<Vec<(&str, String)>> = vec![
        bearer("full-token-7f3a9"),
        bearer(&format!("{FULL}x")),
        bearer(""),
        basic("admin", "wrong"),
        basic("viewer", "admin-pw"),
        basic("nobody", ""),
        vec![(AUTHORIZATION.as_str(), "Basic !!!not-base64".to_string())],
        vec![(AUTHORIZATION.as_str(), format!("Token {FULL}"))],
        vec![(AUTHORIZATION.as_str(), FULL.to_string())],
    ];
    for headers in &wrong {
        for page in pages(f.job) {
            let r = send(&f.app, Method::GET, &page, headers, "").await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "GET {page} with {headers:?}");
        }
        for (action, fields) in actions(f.job) {
            let r = send(&f.app, Method::POST, &action, headers, fields).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "POST {action} with {headers:?}");
        }
    }
    // A made-up or ended session is no session.
    let made_up = cookie(&"ab".repeat(32));
    for page in pages(f.job) {
        assert_eq!(
            send(&f.app, Method::GET, &page, &made_up, "").await.status,
            StatusCode::SEE_OTHER,
            "{page}"
        );
    }
    for (action, fields) in actions(f.job) {
        assert_eq!(
            send(&f.app, Method::POST, &action, &made_up, fields).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // The login form refuses wrong secrets and sets no cookie.
    for form in ["token=nope", "token=", "username=admin&password=nope", "username=&password=", ""] {
        let r = post_login(&f.app, &[], form).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "login with {form:?}");
        assert!(!sets_a_session(&r), "login with {form:?}");
    }
    assert_eq!(queue_paused(&f.db).await, None);
    assert_eq!(job_state(&f.db, f.job).await, Some(JobState::Available));
    assert_eq!(cron_entry(&f.db).await, Some(false), "the cron entry is untouched");
}

#[tokio::test]
async fn every_credential_kind_sees_every_page() {
    let f = fixture().await;
    let session = login(&f.app, READ_ONLY).await;
    let callers = [
        bearer(FULL),
        bearer(READ_ONLY),
        basic("admin", "admin-pw"),
        basic("viewer", "viewer-pw"),
        cookie(&session),
    ];
    for headers in &callers {
        for page in pages(f.job) {
            let r = send(&f.app, Method::GET, &page, headers, "").await;
            let want = if page == "/no-such-page" { StatusCode::NOT_FOUND } else { StatusCode::OK };
            assert_eq!(r.status, want, "GET {page} with {headers:?}: {}", r.body);
        }
    }
}

#[tokio::test]
async fn read_only_callers_get_403_on_every_action() {
    let f = fixture().await;
    // A read-only session shows its CSRF token in the logout form: even with it, no action.
    let session = login(&f.app, READ_ONLY).await;
    let page = send(&f.app, Method::GET, "/", &cookie(&session), "").await;
    let csrf = csrf_of(&page.body);
    assert!(
        !page.body.contains("/queues/pause") && !page.body.contains("/retry"),
        "read-only pages offer no actions"
    );
    for (action, fields) in actions(f.job).into_iter().filter(|(a, _)| a != "/logout") {
        let with_token = format!("{fields}&csrf={csrf}");
        for (headers, body) in [
            (cookie(&session), with_token.as_str()),
            (cookie(&session), fields),
            (bearer(READ_ONLY), fields),
            (basic("viewer", "viewer-pw"), fields),
        ] {
            let r = send(&f.app, Method::POST, &action, &headers, body).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "POST {action} with {headers:?}");
        }
    }
    assert_eq!(queue_paused(&f.db).await, None);
    assert_eq!(job_state(&f.db, f.job).await, Some(JobState::Available));
    assert_eq!(cron_entry(&f.db).await, Some(false), "the cron entry is untouched");
    // Logging out is the one thing read-only sessions may do.
    let r = send(&f.app, Method::POST, "/logout", &cookie(&session), &format!("csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(send(&f.app, Method::GET, "/", &cookie(&session), "").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn actions_without_the_right_csrf_token_are_refused() {
    let f = fixture().await;
    let session = login(&f.app, FULL).await;
    let other_session = login(&f.app, FULL).await;
    let session_csrf = csrf_of(&send(&f.app, Method::GET, "/", &cookie(&session), "").await.body);
    let other_csrf = csrf_of(&send(&f.app, Method::GET, "/", &cookie(&other_session), "").await.body);
    let bearer_csrf =
        csrf_of(&send(&f.app, Method::GET, &format!("/jobs/{}", f.job), &bearer(FULL), "").await.body);
    assert_ne!(session_csrf, other_csrf, "each session has its own token");
    assert_ne!(session_csrf, bearer_csrf);
    for (action, fields) in actions(f.job) {
        for (headers, csrf) in [
            (cookie(&session), None),
            (cookie(&session), Some("")),
            (cookie(&session), Some("0123456789abcdef")),
            (cookie(&session), Some(other_csrf.as_str())),
            (cookie(&session), Some(bearer_csrf.as_str())),
            (bearer(FULL), None),
            (bearer(FULL), Some(session_csrf.as_str())),
            (basic("admin", "admin-pw"), None),
        ] {
            let body = match csrf {
                Some(token) => format!("{fields}&csrf={token}"),
                None => fields.to_string(),
            };
            let r = send(&f.app, Method::POST, &action, &headers, &body).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "POST {action} with {headers:?} and csrf {csrf:?}");
        }
    }
    assert_eq!(queue_paused(&f.db).await, None);
    assert_eq!(job_state(&f.db, f.job).await, Some(JobState::Available));
    assert_eq!(cron_entry(&f.db).await, Some(false), "the cron entry is untouched");

    // With the right token each action works.
    let ok = |path: String, fields: &str| (path, format!("{fields}&csrf={session_csrf}"));
    let run = [
        ok("/queues/pause".into(), "queue=reports"),
        ok(format!("/jobs/{}/cancel", f.job), ""),
        ok(format!("/jobs/{}/retry", f.job), ""),
        ok("/queues/scale".into(), "queue=reports&concurrency=4"),
    ];
    for (path, body) in &run {
        let r = send(&f.app, Method::POST, path, &cookie(&session), body).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "POST {path}: {}", r.body);
    }
    let settings = f.db.engine().queue_settings().await.unwrap();
    let reports = settings.iter().find(|s| s.name == "reports").unwrap();
    assert_eq!((reports.paused, reports.concurrency), (Some(true), Some(4)), "scale kept the pause");
    assert_eq!(job_state(&f.db, f.job).await, Some(JobState::Available), "cancelled, then retried");
    // The token also works as a header, for scripts with a bearer token.
    let r = send(
        &f.app,
        Method::POST,
        "/queues/resume",
        &[bearer(FULL).remove(0), ("x-csrf-token", bearer_csrf.clone())],
        "queue=reports",
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(queue_paused(&f.db).await, Some(false));
    // The cron actions, with the right token.
    let with = |fields: &str| format!("{fields}&csrf={session_csrf}");
    let r = send(&f.app, Method::POST, "/cron/pause", &cookie(&session), &with(CRON_NAME_FIELD)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(cron_entry(&f.db).await, Some(true));
    let r = send(&f.app, Method::POST, "/cron/run", &cookie(&session), &with(CRON_NAME_FIELD)).await;
    let location = r.headers.get(LOCATION).unwrap().to_str().unwrap().to_string();
    assert!(location.starts_with("/jobs/") && location.ends_with("?done=cron-ran"), "{location}");
    // No leader published its job types here: the form comes back with the reason, as typed.
    let r = send(
        &f.app,
        Method::POST,
        "/cron/save",
        &cookie(&session),
        &with("mode=add&name=nightly&expr=0+2+*+*+*&worker=w"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("no leader has published") && r.body.contains("value=\"nightly\""), "{}", r.body);
    let r = send(
        &f.app,
        Method::POST,
        "/cron/remove",
        &cookie(&session),
        &with(&format!("{CRON_NAME_FIELD}&confirm=yes")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(cron_entry(&f.db).await, None, "removed");
    // Delete needs its confirmation box too.
    let path = format!("/jobs/{}/delete", f.job);
    let r = send(&f.app, Method::POST, &path, &cookie(&session), &format!("csrf={session_csrf}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(&f.app, Method::POST, &path, &cookie(&session), &format!("confirm=yes&csrf={session_csrf}"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(job_state(&f.db, f.job).await, None);
    // Bad scale values are refused.
    for concurrency in ["0", "-1", "abc", "", "99999999"] {
        let body = format!("queue=reports&concurrency={concurrency}&csrf={session_csrf}");
        let r = send(&f.app, Method::POST, "/queues/scale", &cookie(&session), &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "concurrency {concurrency:?}");
    }
}

#[tokio::test]
async fn user_data_is_escaped_on_every_page() {
    let f = fixture().await;
    for page in [
        "/",
        "/jobs",
        &format!("/jobs/{}", f.job),
        "/jobs?q=%3Cscript%3E",
        "/jobs?queue=%3Cscript%3E",
        "/jobs?arg=title%3D%3Cscript%3E",
        "/cluster",
        "/cron",
    ] {
        let r = send(&f.app, Method::GET, page, &bearer(FULL), "").await;
        assert_eq!(r.status, StatusCode::OK, "{page}");
        // The one script tag is the dashboard's own file.
        let own = "<script src=\"/assets/live.js\" defer></script>";
        assert_eq!(r.body.matches(own).count(), 1, "{page}: {}", r.body);
        assert!(!r.body.replace(own, "").to_lowercase().contains("<script"), "unescaped markup on {page}");
    }
    let cron = send(&f.app, Method::GET, "/cron", &bearer(FULL), "").await.body;
    assert!(
        cron.contains("&lt;script&gt;alert('pwned')&lt;/script&gt;"),
        "the entry's name, escaped: {cron}"
    );
    let job = send(&f.app, Method::GET, &format!("/jobs/{}", f.job), &bearer(FULL), "").await.body;
    // args (pretty JSON), meta and tags are there, escaped.
    assert!(
        job.contains("&quot;title&quot;: &quot;&lt;script&gt;alert('pwned')&lt;/script&gt;&quot;"),
        "{job}"
    );
    assert!(job.contains("&quot;note&quot;: &quot;&lt;script&gt;"), "{job}");
    assert!(job.contains(">&lt;script&gt;alert('pwned')&lt;/script&gt;</a>"), "tag: {job}");
    let list = send(&f.app, Method::GET, "/jobs", &bearer(FULL), "").await.body;
    assert!(list.contains("&lt;script&gt;alert('pwned')&lt;/script&gt;"), "{list}");
    // A reflected filter value stays inside its attribute.
    let r = send(&f.app, Method::GET, "/jobs?worker=%22%3E%3Cb%3E", &bearer(FULL), "").await.body;
    assert!(r.contains("value=\"&quot;&gt;&lt;b&gt;\""), "{r}");
    // The queue's name is user data too.
    f.db.insert(InsertBuilder::from(RenderReport { title: "x".into() }).queue("q<i>")).await.unwrap();
    let r = send(&f.app, Method::GET, "/", &bearer(FULL), "").await.body;
    assert!(r.contains("q&lt;i&gt;") && !r.contains("q<i>"), "{r}");
    let r = send(&f.app, Method::GET, "/queue?name=q%3Ci%3E", &bearer(FULL), "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Queue q&lt;i&gt;") && !r.body.contains("q<i>"), "{}", r.body);
    let r = send(&f.app, Method::GET, "/queue?name=nosuch", &bearer(FULL), "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn login_sets_a_strict_http_only_session_cookie_and_logout_ends_it() {
    let f = fixture().await;
    let r = post_login(&f.app, &[], &format!("token={FULL}&next=%2Fjobs%3Fstate%3Ddiscarded")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers.get(LOCATION).unwrap(), "/jobs?state=discarded");
    let set = r.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"), "{set}");
    assert!(!set.contains("Secure"), "plain HTTP: a Secure cookie would never come back");
    let r = post_login(&f.app, &[("x-forwarded-proto", "https".into())], &format!("token={FULL}")).await;
    assert!(r.headers.get(SET_COOKIE).unwrap().to_str().unwrap().contains("; Secure"));
    // Basic credentials may log in through the form too.
    let r = post_login(&f.app, &[], "username=admin&password=admin-pw").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // No open redirect.
    for next in ["%2F%2Fevil.example%2F", "https%3A%2F%2Fevil.example%2F", "%2F%5Cevil.example"] {
        let r = post_login(&f.app, &[], &format!("token={FULL}&next={next}")).await;
        assert_eq!(r.headers.get(LOCATION).unwrap(), "/", "next={next}");
    }
    let session = login(&f.app, FULL).await;
    let page = send(&f.app, Method::GET, "/", &cookie(&session), "").await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = csrf_of(&page.body);
    let r = send(&f.app, Method::POST, "/logout", &cookie(&session), &format!("csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.headers.get(SET_COOKIE).unwrap().to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(send(&f.app, Method::GET, "/", &cookie(&session), "").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn responses_carry_protective_headers_and_offer_basic_auth() {
    let f = fixture().await;
    for (uri, headers) in [("/login", vec![]), ("/", bearer(FULL)), ("/jobs", vec![])] {
        let r = send(&f.app, Method::GET, uri, &headers, "").await;
        let csp = r.headers.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(r.headers.get("x-frame-options").unwrap(), "DENY");
        assert_eq!(r.headers.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
    }
    let r = send(&f.app, Method::GET, "/", &bearer("wrong"), "").await;
    let challenges: Vec<_> =
        r.headers.get_all(WWW_AUTHENTICATE).iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(challenges.iter().any(|c| c.starts_with("Basic")), "{challenges:?}");
}

#[tokio::test]
async fn serve_refuses_an_auth_without_credentials() {
    let f = fixture().await;
    let err = jobsmith_web::serve(f.db.engine().clone(), "127.0.0.1:0".parse().unwrap(), Auth::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let err = jobsmith_web::serve(f.db.engine().clone(), "127.0.0.1:0".parse().unwrap(), Auth::token(""))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn settings_for_an_unknown_queue_are_refused() {
    let f = fixture().await;
    let session = login(&f.app, FULL).await;
    let csrf = csrf_of(&send(&f.app, Method::GET, "/", &cookie(&session), "").await.body);
    for (path, fields) in [
        ("/queues/pause", "queue=nosuch"),
        ("/queues/resume", "queue=nosuch"),
        ("/queues/scale", "queue=nosuch&concurrency=3"),
    ] {
        let r = send(&f.app, Method::POST, path, &cookie(&session), &format!("{fields}&csrf={csrf}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "POST {path}: {}", r.body);
        assert!(r.body.contains("nosuch") && r.body.contains("--create"), "POST {path}: {}", r.body);
    }
    let settings = f.db.engine().queue_settings().await.unwrap();
    assert!(settings.iter().all(|s| s.name != "nosuch"), "nothing was stored: {settings:?}");
}

#[tokio::test]
async fn the_login_form_refuses_a_missing_or_wrong_csrf_token() {
    let f = fixture().await;
    let page = send(&f.app, Method::GET, "/login", &[], "").await;
    let csrf = csrf_of(&page.body);
    let set = page.headers.get(SET_COOKIE).unwrap().to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/login"),
        "{set}"
    );
    let pair = (COOKIE.as_str(), set.split(';').next().unwrap().to_string());
    let other = csrf_of(&send(&f.app, Method::GET, "/login", &[], "").await.body);
    assert_ne!(csrf, other, "a fresh token for every browser");
    // A browser that has the cookie keeps its token (a second tab, or the page loaded twice).
    let again = send(&f.app, Method::GET, "/login", std::slice::from_ref(&pair), "").await;
    assert_eq!(csrf_of(&again.body), csrf, "the cookie's token again");
    let forged: Vec<(Vec<(&str, String)>, String)> = vec![
        (vec![], format!("token={FULL}")),             // a form posted from elsewhere
        (vec![], format!("token={FULL}&csrf={csrf}")), // the field without its cookie
        (vec![pair.clone()], format!("token={FULL}")), // the cookie without the field
        (vec![pair.clone()], format!("token={FULL}&csrf={other}")), // another form's field
        (vec![pair.clone()], format!("token={FULL}&csrf=")),
    ];
    for (headers, form) in &forged {
        let r = send(&f.app, Method::POST, "/login", headers, form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{form} with {headers:?}");
        assert!(r.body.contains("CSRF"), "{}", r.body);
        assert!(!sets_a_session(&r), "{form} with {headers:?}");
    }
    let r = send(&f.app, Method::POST, "/login", &[pair], &format!("token={FULL}&csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(sets_a_session(&r));
}

#[tokio::test]
async fn a_token_is_a_basic_auth_password_under_any_user_name() {
    let f = fixture().await;
    for user in ["", "anyone", "admin"] {
        let r = send(&f.app, Method::GET, "/", &basic(user, FULL), "").await;
        assert_eq!(r.status, StatusCode::OK, "user {user:?}");
        let csrf = csrf_of(&r.body);
        let r = send(
            &f.app,
            Method::POST,
            "/queues/pause",
            &basic(user, FULL),
            &format!("queue=reports&csrf={csrf}"),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "user {user:?}: {}", r.body);
    }
    assert_eq!(queue_paused(&f.db).await, Some(true));
    // A read-only token stays read-only.
    let r = send(&f.app, Method::GET, "/", &basic("ops", READ_ONLY), "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("name=\"csrf\""), "a read-only page offers no action");
    let r =
        send(&f.app, Method::POST, "/queues/resume", &basic("ops", READ_ONLY), "queue=reports&csrf=x").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(queue_paused(&f.db).await, Some(true));
    // Any user name, but the token whole.
    let r = send(&f.app, Method::GET, "/", &basic("anyone", &FULL[..FULL.len() - 1]), "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
