//! The job page lists every attempt with its node, start, duration and outcome.

use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::http::Request;
use axum::http::header::AUTHORIZATION;
use jobsmith::{Db, JobContext, JobState};
use jobsmith_web::{Auth, router};
use tower::ServiceExt;

const TOKEN: &str = "attempts-page-token-1c9e";

/// Fails its first attempt, succeeds on the second.
#[jobsmith::job(queue = "syncs", max_attempts = 3, backoff = quick)]
async fn sync_benefits(ctx: JobContext, insurer: String) -> Result<(), String> {
    if ctx.attempt == 1 {
        return Err(format!("{insurer} answered 503"));
    }
    Ok(())
}

fn quick(_: u32) -> Duration {
    Duration::from_millis(50)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_page_lists_each_attempt_with_its_node_start_duration_and_outcome() {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let rt = db
        .runtime()
        .queue("syncs", 1)
        .node_name("clinic-web-1")
        .poll_interval(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let id = db.insert(SyncBenefits { insurer: "acme <b>".into() }).await.unwrap().job.id;
    let deadline = Instant::now() + Duration::from_secs(60);
    while db.engine().get_job(id).await.unwrap().unwrap().state != JobState::Completed {
        assert!(Instant::now() < deadline, "the job did not complete");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rt.shutdown().await.unwrap();

    let app = router(db.engine().clone(), Auth::token(TOKEN));
    let req = Request::get(format!("/jobs/{id}"))
        .header(AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let page = String::from_utf8(
        to_bytes(app.oneshot(req).await.unwrap().into_body(), usize::MAX).await.unwrap().to_vec(),
    )
    .unwrap();
    let table = page
        .split("<table id=\"attempts\">")
        .nth(1)
        .expect("an attempts table")
        .split("</table>")
        .next()
        .unwrap();
    let rows: Vec<&str> = table.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), 2, "two attempts: {table}");
    for row in &rows {
        assert!(row.contains("clinic-web-1") && row.contains("<time datetime="), "node and start: {row}");
        assert!(row.contains(" ms</td>") || row.contains(" s</td>"), "a duration: {row}");
    }
    assert!(rows[0].contains("failed: <code>acme &lt;b&gt; answered 503</code>"), "{}", rows[0]);
    assert!(rows[1].contains("state completed"), "{}", rows[1]);
}
