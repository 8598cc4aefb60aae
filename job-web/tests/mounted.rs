//! The dashboard mounted inside an application's own axum router, under a path prefix: links,
//! forms, redirects and cookies carry the prefix; the application's routes are untouched; and the
//! application's own authentication can admit callers (`Auth::upstream`).

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::Request as AxumRequest;
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use jobsmith::{Db, JobState};
use jobsmith_web::{Access, Auth};
use tower::ServiceExt;

const PREFIX: &str = "/ops/jobsmith";
const TOKEN: &str = "mounted-dashboard-token-5e1b";

/// Renders a report; never run here, only stored.
#[jobsmith::job(queue = "reports")]
async fn render_report(title: String) -> Result<(), String> {
    let _ = title;
    Ok(())
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

fn location(r: &Reply) -> &str {
    r.headers.get(LOCATION).expect("a redirect").to_str().unwrap()
}

fn set_cookie(r: &Reply) -> String {
    r.headers.get(SET_COOKIE).expect("a cookie").to_str().unwrap().to_string()
}

/// The CSRF token the page's forms carry.
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("the page has a form with a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_string()
}

/// Every `href` and form `action` of a page that points at this site.
fn site_links(html: &str) -> Vec<String> {
    ["href=\"", "action=\""]
        .iter()
        .flat_map(|attr| html.match_indices(attr).map(move |(i, _)| &html[i + attr.len()..]))
        .map(|rest| rest.split('"').next().unwrap().replace("&amp;", "&"))
        .filter(|link| link.starts_with('/'))
        .collect()
}

/// Whether `link` is the target of an `href` (a GET) on the page, rather than only a form's.
fn html_has_href(html: &str, link: &str) -> bool {
    html.contains(&format!("href=\"{}\"", link.replace('&', "&amp;")))
}

async fn database() -> (Db, i64) {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let job = db.insert(RenderReport { title: "monthly".into() }).await.unwrap().job.id;
    (db, job)
}

/// An application with a route of its own and the dashboard under [`PREFIX`].
fn app(db: &Db, auth: Auth) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .nest(PREFIX, jobsmith_web::router(db.engine().clone(), auth))
}

#[tokio::test]
async fn a_browser_logs_in_and_every_link_form_and_redirect_stays_under_the_prefix() {
    let (db, job) = database().await;
    let app = app(&db, Auth::token(TOKEN));

    // Anonymous: to the prefixed login page, which comes back to the dashboard's root.
    let r = send(&app, Method::GET, PREFIX, &[], "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("{PREFIX}/login?next=%2F"));

    let page = send(&app, Method::GET, &format!("{PREFIX}/login?next=%2F"), &[], "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("action=\"{PREFIX}/login\"")), "{}", page.body);
    let csrf_cookie = set_cookie(&page);
    assert!(csrf_cookie.contains(&format!("Path={PREFIX}/login;")), "{csrf_cookie}");
    let pair = csrf_cookie.split(';').next().unwrap().to_string();
    let form = format!("token={TOKEN}&next=%2F&csrf={}", csrf_of(&page.body));
    let r = send(&app, Method::POST, &format!("{PREFIX}/login"), &[(COOKIE.as_str(), pair)], &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(location(&r), PREFIX);
    let session = set_cookie(&r);
    assert!(session.contains(&format!("Path={PREFIX};")), "the session stays with the dashboard: {session}");
    let session = vec![(COOKIE.as_str(), session.split(';').next().unwrap().to_string())];

    // Every page answers under the prefix, and links only there.
    // (The dashboard's root is the prefix itself: axum's `nest` does not route `/ops/jobsmith/`.)
    for path in ["".to_string(), "/jobs".into(), format!("/jobs/{job}"), "/cluster".into()] {
        let r = send(&app, Method::GET, &format!("{PREFIX}{path}"), &session, "").await;
        assert_eq!(r.status, StatusCode::OK, "{PREFIX}{path}: {}", r.body);
        let links = site_links(&r.body);
        assert!(!links.is_empty(), "{path}");
        for link in links {
            assert!(link.starts_with(PREFIX), "{path} links to {link} outside {PREFIX}");
            // Each link leads somewhere (form targets are POSTs, tested below).
            if html_has_href(&r.body, &link) {
                let target = send(&app, Method::GET, &link, &session, "").await;
                assert!(target.status == StatusCode::OK, "{path}: {link} answers {}", target.status);
            }
        }
    }

    // An action redirects within the prefix, to a page that answers.
    let csrf = csrf_of(&send(&app, Method::GET, PREFIX, &session, "").await.body);
    let r = send(
        &app,
        Method::POST,
        &format!("{PREFIX}/queues/pause"),
        &session,
        &format!("queue=reports&csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(location(&r), format!("{PREFIX}?done=paused"));
    let after = send(&app, Method::GET, location(&r), &session, "").await;
    assert!(after.body.contains("Queue paused on every node."), "{}", after.body);
    let r =
        send(&app, Method::POST, &format!("{PREFIX}/jobs/{job}/cancel"), &session, &format!("csrf={csrf}"))
            .await;
    assert_eq!(location(&r), format!("{PREFIX}/jobs/{job}?done=cancelled"));
    assert_eq!(db.engine().get_job(job).await.unwrap().unwrap().state, JobState::Cancelled);

    // Logging out ends the session and goes to the prefixed login page.
    let r = send(&app, Method::POST, &format!("{PREFIX}/logout"), &session, &format!("csrf={csrf}")).await;
    assert_eq!(location(&r), format!("{PREFIX}/login"));
    assert!(set_cookie(&r).contains(&format!("Path={PREFIX};")));

    // The application's own routes are its own: the dashboard answers nothing outside its prefix.
    assert_eq!(send(&app, Method::GET, "/health", &[], "").await.body, "ok");
    assert_eq!(send(&app, Method::GET, "/jobs", &[], "").await.status, StatusCode::NOT_FOUND);
    // Unknown pages under the prefix are the dashboard's, and guarded.
    let r = send(&app, Method::GET, &format!("{PREFIX}/nothing-here"), &[], "").await;
    assert_eq!(location(&r), format!("{PREFIX}/login?next=%2Fnothing-here"));
}

/// The application's stand-in for its own login: the header `x-user` names who calls.
async fn app_auth(mut req: AxumRequest, next: Next) -> Response {
    let access = match req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        Some("admin") => Some(Access::Full),
        Some("viewer") => Some(Access::ReadOnly),
        _ => None,
    };
    if let Some(access) = access {
        req.extensions_mut().insert(access);
    }
    next.run(req).await
}

#[tokio::test]
async fn the_applications_own_authentication_decides_who_gets_in_and_csrf_still_holds() {
    let (db, job) = database().await;
    let app = app(&db, Auth::upstream()).layer(middleware::from_fn(app_auth));
    let viewer = vec![("x-user", "viewer".to_string())];
    let admin = vec![("x-user", "admin".to_string())];

    // Nobody the application vouches for: refused, and not sent to a login form that could
    // accept nothing.
    let r = send(&app, Method::GET, &format!("{PREFIX}/jobs"), &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let page = send(&app, Method::GET, &format!("{PREFIX}/jobs/{job}"), &viewer, "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("read-only") && !page.body.contains("Log out"), "{}", page.body);
    let r = send(&app, Method::POST, &format!("{PREFIX}/jobs/{job}/cancel"), &viewer, "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let page = send(&app, Method::GET, &format!("{PREFIX}/jobs/{job}"), &admin, "").await;
    assert!(page.body.contains(&format!("action=\"{PREFIX}/jobs/{job}/cancel\"")), "{}", page.body);
    let csrf = csrf_of(&page.body);
    // A forged form (no token, or another access level's token) changes nothing.
    let r = send(&app, Method::POST, &format!("{PREFIX}/jobs/{job}/cancel"), &admin, "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r =
        send(&app, Method::POST, &format!("{PREFIX}/jobs/{job}/cancel"), &admin, &format!("csrf={csrf}x"))
            .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(db.engine().get_job(job).await.unwrap().unwrap().state, JobState::Available);

    let r = send(&app, Method::POST, &format!("{PREFIX}/jobs/{job}/cancel"), &admin, &format!("csrf={csrf}"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(db.engine().get_job(job).await.unwrap().unwrap().state, JobState::Cancelled);
}

#[tokio::test]
async fn tokens_still_work_beside_the_applications_authentication_and_serve_needs_them() {
    let (db, _) = database().await;
    let app =
        app(&db, Auth::upstream().with_token(TOKEN, Access::ReadOnly)).layer(middleware::from_fn(app_auth));
    let bearer = vec![("authorization", format!("Bearer {TOKEN}"))];
    let r = send(&app, Method::GET, PREFIX, &bearer, "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("read-only"));
    // With tokens configured, a browser nobody vouched for gets the login form again.
    let r = send(&app, Method::GET, PREFIX, &[], "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    // Served on its own address nothing stands in front, so the application's word is no credential.
    let refused =
        jobsmith_web::serve(db.engine().clone(), "127.0.0.1:0".parse().unwrap(), Auth::upstream()).await;
    assert!(refused.is_err());
}
