//! Bulk actions on the job list and the args field search: a count and a confirmation before
//! anything changes, the ticked rows or every job the filter selects, only the states an action
//! may touch, and clear refusals for what cannot be selected.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use axum::http::{Method, Request, StatusCode};
use jobsmith::{Db, InsertBuilder, JobState};
use jobsmith_web::{Auth, router};
use tower::ServiceExt;

const TOKEN: &str = "bulk-actions-token-77c2a9";

/// Renders a report; never run here, only stored.
#[jobsmith::job(queue = "reports")]
async fn render_report(title: String, clinic: i64) -> Result<(), String> {
    let _ = (title, clinic);
    Ok(())
}

async fn send(app: &Router, method: Method, uri: &str, body: &str) -> (StatusCode, Option<String>, String) {
    let mut req =
        Request::builder().method(method.clone()).uri(uri).header(AUTHORIZATION, format!("Bearer {TOKEN}"));
    if method == Method::POST {
        req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let response = app.clone().oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let status = response.status();
    let location = response.headers().get(LOCATION).map(|v| v.to_str().unwrap().to_string());
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, location, String::from_utf8_lossy(&bytes).into_owned())
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a form with a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_string()
}

async fn states(db: &Db, ids: &[i64]) -> Vec<JobState> {
    let mut out = Vec::new();
    for id in ids {
        out.push(db.engine().get_job(*id).await.unwrap().map_or(JobState::Cancelled, |j| j.state));
    }
    out
}

struct Fixture {
    app: Router,
    db: Db,
    reports: Vec<i64>,
    mail: i64,
    csrf: String,
}

async fn fixture() -> Fixture {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let mut reports = Vec::new();
    for clinic in 1..=5 {
        let job = RenderReport { title: format!("r{clinic}"), clinic };
        reports.push(db.insert(job).await.unwrap().job.id);
    }
    let mail = db
        .insert(InsertBuilder::from(RenderReport { title: "m".into(), clinic: 1 }).queue("mail"))
        .await
        .unwrap()
        .job
        .id;
    let app = router(db.engine().clone(), Auth::token(TOKEN));
    let csrf = csrf_of(&send(&app, Method::GET, "/jobs", "").await.2);
    Fixture { app, db, reports, mail, csrf }
}

#[tokio::test]
async fn a_bulk_action_on_the_filter_asks_with_a_count_then_changes_only_what_it_may() {
    let f = fixture().await;
    // The list offers the bulk bar with a tick box per row.
    let list = send(&f.app, Method::GET, "/jobs?queue=reports", "").await.2;
    assert!(list.contains("id=\"bulk-bar\"") && list.matches("name=\"id\"").count() == 5, "{list}");

    let form = format!("action=cancel&scope=filter&queue=reports&csrf={}", f.csrf);
    let (status, _, confirm) = send(&f.app, Method::POST, "/jobs/bulk", &form).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        confirm.contains("Cancel 5 jobs?") && confirm.contains("name=\"confirm\" value=\"yes\""),
        "{confirm}"
    );
    assert_eq!(
        states(&f.db, &f.reports).await,
        vec![JobState::Available; 5],
        "nothing changes before the confirmation"
    );

    let (status, location, _) =
        send(&f.app, Method::POST, "/jobs/bulk", &format!("{form}&confirm=yes")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = location.unwrap();
    assert_eq!(location, "/jobs?queue=reports&done=bulk-cancel&n=5");
    assert!(send(&f.app, Method::GET, &location, "").await.2.contains("Cancelled 5 jobs."));
    assert_eq!(states(&f.db, &f.reports).await, vec![JobState::Cancelled; 5]);
    assert_eq!(states(&f.db, &[f.mail]).await, vec![JobState::Available], "another queue is untouched");

    // Ticked rows: two of the cancelled ones are retried; retry touches only cancelled or
    // discarded jobs, so the ticked available one is counted out.
    let ticked = format!("id={}&id={}&id={}", f.reports[0], f.reports[1], f.mail);
    let form = format!("action=retry&scope=checked&{ticked}&csrf={}", f.csrf);
    let confirm = send(&f.app, Method::POST, "/jobs/bulk", &form).await.2;
    assert!(
        confirm.contains("Retry 2 jobs?") && confirm.contains("Of the 3 ticked jobs, 2 can be changed"),
        "{confirm}"
    );
    let (_, location, _) = send(&f.app, Method::POST, "/jobs/bulk", &format!("{form}&confirm=yes")).await;
    assert_eq!(location.unwrap(), "/jobs?done=bulk-retry&n=2");
    let after = states(&f.db, &f.reports).await;
    assert_eq!(after[..2], [JobState::Available, JobState::Available]);
    assert_eq!(after[2..], [JobState::Cancelled; 3]);

    // Nothing to do: the confirmation says 0 and its button is disabled.
    let form = format!("action=retry&scope=filter&queue=mail&csrf={}", f.csrf);
    let confirm = send(&f.app, Method::POST, "/jobs/bulk", &form).await.2;
    assert!(confirm.contains("Retry 0 jobs?") && confirm.contains("disabled"), "{confirm}");
}

#[tokio::test]
async fn the_args_field_search_finds_a_job_by_value_and_selects_it_for_a_bulk_action() {
    let f = fixture().await;
    let (status, _, list) = send(&f.app, Method::GET, "/jobs?arg=clinic+%3D+3", "").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list.matches("class=\"job\"").count(), 1, "only clinic 3: {list}");
    assert!(list.contains(&format!("href=\"/jobs/{}\"", f.reports[2])), "{list}");
    // Text values need no quotes; JSON ones may have them.
    for arg in ["title+%3D+r4", "title%3D%22r4%22"] {
        let list = send(&f.app, Method::GET, &format!("/jobs?arg={arg}"), "").await.2;
        assert!(
            list.contains(&format!("href=\"/jobs/{}\"", f.reports[3]))
                && list.matches("class=\"job\"").count() == 1,
            "{arg}: {list}"
        );
    }
    // The args field selects for a bulk action too; here a delete of clinic 1's jobs (two queues).
    let form = format!("action=delete&scope=filter&arg=clinic%3D1&csrf={}", f.csrf);
    assert!(send(&f.app, Method::POST, "/jobs/bulk", &form).await.2.contains("Delete 2 jobs?"));
    let (_, location, _) = send(&f.app, Method::POST, "/jobs/bulk", &format!("{form}&confirm=yes")).await;
    assert_eq!(location.unwrap(), "/jobs?arg=clinic%3D1&done=bulk-delete&n=2");
    assert!(f.db.engine().get_job(f.reports[0]).await.unwrap().is_none());
    assert!(f.db.engine().get_job(f.mail).await.unwrap().is_none());
    assert!(f.db.engine().get_job(f.reports[1]).await.unwrap().is_some());
}

#[tokio::test]
async fn what_cannot_be_selected_is_refused_with_the_reason() {
    let f = fixture().await;
    let refused = |form: String| {
        let app = f.app.clone();
        async move { send(&app, Method::POST, "/jobs/bulk", &form).await }
    };
    let csrf = &f.csrf;
    let (status, _, body) = refused(format!("action=cancel&scope=filter&q=r1&csrf={csrf}&confirm=yes")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("free-text search cannot select"), "{body}");
    let (status, _, body) = refused(format!("action=cancel&scope=checked&csrf={csrf}&confirm=yes")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("Tick the jobs first"), "{body}");
    let many: String = (1..=501).map(|i| format!("&id={i}")).collect();
    let (status, _, body) = refused(format!("action=cancel&scope=checked{many}&csrf={csrf}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("At most 500 ticked jobs"), "{body}");
    let (status, _, _) = refused(format!("action=explode&scope=filter&csrf={csrf}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(states(&f.db, &f.reports).await, vec![JobState::Available; 5], "nothing changed");
    // A free-text search and an args field at once are refused for the list too.
    let (status, _, body) = send(&f.app, Method::GET, "/jobs?q=r1&arg=clinic%3D1", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("not both"), "{body}");
    // A state the action cannot change selects nothing (not "any state"): no job is touched.
    let form = format!("action=cancel&scope=filter&state=completed&csrf={csrf}");
    assert!(refused(form.clone()).await.2.contains("Cancel 0 jobs?"));
    let (_, location, _) = refused(format!("{form}&confirm=yes")).await;
    assert_eq!(location.unwrap(), "/jobs?state=completed&done=bulk-cancel&n=0");
    assert_eq!(states(&f.db, &f.reports).await, vec![JobState::Available; 5], "nothing cancelled");
    // An id is not free text: a bulk action on `q=<id>` selects that job.
    let form = format!("action=cancel&scope=filter&q={}&csrf={csrf}", f.reports[4]);
    assert!(refused(form).await.2.contains("Cancel 1 job?"));
}

#[tokio::test]
async fn an_args_field_search_looks_through_a_window_of_ids_at_a_time_and_goes_further_back() {
    let f = fixture().await;
    // The newest job gets an id far above the others: the first page's window of 100,000 ids
    // holds it alone, and "older" continues below the window, where clinic 1's older job is.
    let jobsmith::Pool::Sqlite(pool) = f.db.pool() else { unreachable!("an in-memory SQLite database") };
    sqlx::query("UPDATE jobsmith_jobs SET id = 300000 WHERE id = ?1")
        .bind(f.mail)
        .execute(pool)
        .await
        .unwrap();
    let first = send(&f.app, Method::GET, "/jobs?arg=clinic%3D1", "").await.2;
    assert_eq!(first.matches("class=\"job\"").count(), 1, "{first}");
    assert!(first.contains("href=\"/jobs/300000\"") && first.contains("id=\"args-window\""), "{first}");
    assert!(first.contains("this one from 200001 up"), "{first}");
    let older = first.split("id=\"older\" href=\"").nth(1).expect("an older link");
    let href = older.split('"').next().unwrap().replace("&amp;", "&");
    assert_eq!(href, "/jobs?arg=clinic%3D1&before_id=200001");
    // The next window (100,001 to 200,000) has no match and says so, still offering older ids.
    let second = send(&f.app, Method::GET, &href, "").await.2;
    assert!(second.contains("No jobs match.") && second.contains("this one from 100001 up"), "{second}");
    assert!(second.contains("before_id=100001"), "{second}");
    let third = send(&f.app, Method::GET, "/jobs?arg=clinic%3D1&before_id=100001", "").await.2;
    assert!(third.contains(&format!("href=\"/jobs/{}\"", f.reports[0])), "clinic 1's older job: {third}");
    assert_eq!(third.matches("class=\"job\"").count(), 1, "{third}");
    assert!(!third.contains("id=\"older\""), "nothing older than id 1: {third}");
}
