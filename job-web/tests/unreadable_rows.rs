//! A row whose args nest deeper than JSON decoding allows: the job list and the job page show it,
//! with the reason, instead of answering 500.

use axum::body::{Body, to_bytes};
use axum::http::header::AUTHORIZATION;
use axum::http::{Request, StatusCode};
use jobsmith::{Db, Pool};
use jobsmith_web::{Auth, router};
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

/// Two jobs, the second made unreadable by hand; the pages must show both.
async fn check(db: Db) {
    db.migrate().await.unwrap();
    let good = db.insert(ImportTree { tree: serde_json::json!({"ok": true}) }).await.unwrap().job.id;
    let bad = db.insert(ImportTree { tree: serde_json::json!([]) }).await.unwrap().job.id;
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    match db.pool() {
        Pool::Sqlite(pool) => sqlx::query("UPDATE jobsmith_jobs SET args = ?1 WHERE id = ?2")
            .bind(&deep)
            .bind(bad)
            .execute(pool)
            .await
            .map(drop),
        Pool::Postgres(pool) => sqlx::query("UPDATE jobsmith.jobs SET args = $1::jsonb WHERE id = $2")
            .bind(&deep)
            .bind(bad)
            .execute(pool)
            .await
            .map(drop),
    }
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

#[tokio::test]
async fn an_unreadable_row_is_listed_and_shown_with_its_reason_on_sqlite() {
    check(Db::connect("sqlite::memory:").await.unwrap()).await;
}

/// PostgreSQL stores such JSON from any client: the case met in production. Needs the server of
/// `DATABASE_URL` (else the local default); fails, never skips, without one.
#[tokio::test]
async fn an_unreadable_row_is_listed_and_shown_with_its_reason_on_postgres() {
    use sqlx::Connection;
    let base = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("this test needs PostgreSQL at {base} ({e}); run `bash scripts/test.sh`"));
    let name = format!("jobsmith_t_web_{}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
    check(Db::connect(&url).await.unwrap()).await;
}
