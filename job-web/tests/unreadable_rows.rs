//! A row whose args nest deeper than JSON decoding allows: the job list and the job page show it,
//! with the reason, instead of answering 500.

use axum::body::{Body, to_bytes};
use axum::http::header::AUTHORIZATION;
use axum::http::{Request, StatusCode};
use job_web::{Auth, router};
use jobsmith::{Db, Pool};
use tower::ServiceExt;

const TOKEN: &str = "unreadable-token-5e1b";

/// Stored only, never run.
#[jobsmith::job(queue = "imports")]
async fn import_tree(tree: serde_json::Value) -> Result<(), String> {
    let _ = tree;
    Ok(())
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
    let req = Request::get(uri).header(AUTHORIZATION, format!("Bearer {TOKEN}")).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn an_unreadable_row_is_listed_and_shown_with_its_reason() {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let good = db.insert(ImportTree { tree: serde_json::json!({"ok": true}) }).await.unwrap().job.id;
    let bad = db.insert(ImportTree { tree: serde_json::json!([]) }).await.unwrap().job.id;
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let Pool::Sqlite(pool) = db.pool() else { unreachable!("an in-memory SQLite database") };
    sqlx::query("UPDATE jobsmith_jobs SET args = ?1 WHERE id = ?2")
        .bind(&deep)
        .bind(bad)
        .execute(pool)
        .await
        .unwrap();
    let app = router(db.engine().clone(), Auth::token(TOKEN));

    let (status, list) = get(&app, "/jobs").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert!(
        list.contains(&format!("href=\"/jobs/{bad}\"")) && list.contains(&format!("href=\"/jobs/{good}\""))
    );
    let (status, page) = get(&app, &format!("/jobs/{bad}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("id=\"unreadable\""), "{page}");
    assert!(page.contains("column `args` could not be read"), "{page}");
    assert!(page.contains("[[[[[[[["), "the stored text is shown");
}
