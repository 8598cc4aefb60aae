//! A job with 10 MiB of args: its page and the job list stay small and say how big the args are,
//! and the whole args are one link away.

use axum::body::{Body, to_bytes};
use axum::http::header::{AUTHORIZATION, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{Request, StatusCode};
use jobsmith::Db;
use jobsmith::JobExt;
use jobsmith_web::{Auth, router};
use tower::ServiceExt;

const TOKEN: &str = "large-args-token-2c9d";

/// Imports a document; never run here, only stored.
#[jobsmith::job(queue = "imports")]
async fn import_document(body: String) -> Result<(), String> {
    let _ = body;
    Ok(())
}

/// GETs `uri` with the token: status, content type, content disposition, body.
async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String, String, Vec<u8>) {
    let req = Request::get(uri).header(AUTHORIZATION, format!("Bearer {TOKEN}")).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(req).await.unwrap();
    let header =
        |name| response.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let (status, content_type, disposition) =
        (response.status(), header(CONTENT_TYPE), header(CONTENT_DISPOSITION));
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
    (status, content_type, disposition, body)
}

#[tokio::test]
async fn a_large_args_job_has_a_small_page_and_a_download_link() {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    // Markup at the start (it must come out escaped), then plain text up to 10 MiB.
    let body = format!("<b>&{}", "x".repeat(10 * 1024 * 1024 - 4));
    let id = db.insert(ImportDocument { body: body.clone() }).await.unwrap().job.id;
    let app = router(db.engine().clone(), Auth::token(TOKEN));

    let (status, _, _, page) = get(&app, &format!("/jobs/{id}")).await;
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(page.len() < 200_000, "the job page is {} bytes", page.len());
    let link = format!("href=\"/jobs/{id}/args.json\"");
    for part in ["Large args: showing the first 64.0 KiB of 10.0 MiB", &link, "&lt;b&gt;&amp;xxx"] {
        assert!(page.contains(part), "{part:?} missing from the job page");
    }

    let (status, content_type, disposition, whole) = get(&app, &format!("/jobs/{id}/args.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json");
    assert_eq!(disposition, format!("attachment; filename=\"job-{id}-args.json\""));
    let args: serde_json::Value = serde_json::from_slice(&whole).unwrap();
    assert_eq!(args, serde_json::json!({ "body": body }), "the download is the whole args");
    let (status, _, _, _) = get(&app, "/jobs/999999/args.json").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _, _, list) = get(&app, "/jobs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.len() < 200_000, "the job list is {} bytes", list.len());
    assert!(String::from_utf8(list).unwrap().contains(&format!("href=\"/jobs/{id}\"")));
}

/// Builds a report; its result is what the job page shows.
#[jobsmith::job(queue = "reports")]
async fn build_report(month: u32) -> Result<serde_json::Value, String> {
    Ok(serde_json::json!({ "month": month, "title": "<no-shows>" }))
}

#[tokio::test]
async fn a_job_page_shows_the_recorded_result() {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let done = db.insert(BuildReport { month: 11 }).await.unwrap().job.id;
    let waiting = db
        .insert(BuildReport { month: 12 }.schedule_in(std::time::Duration::from_secs(3600)))
        .await
        .unwrap()
        .job
        .id;
    let report = jobsmith::testing::drain_queue(&db, "reports", Default::default()).await.unwrap();
    assert_eq!(report.completed, 1);
    let app = router(db.engine().clone(), Auth::token(TOKEN));

    let (status, _, _, page) = get(&app, &format!("/jobs/{done}")).await;
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<h2>Result</h2>"), "{page}");
    assert!(page.contains("&lt;no-shows&gt;"), "escaped: {page}");
    let (_, _, _, page) = get(&app, &format!("/jobs/{waiting}")).await;
    assert!(!String::from_utf8(page).unwrap().contains("<h2>Result</h2>"), "no result before it ran");
}
