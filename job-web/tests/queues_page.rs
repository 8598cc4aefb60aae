//! The queues overview shows each queue's stored cluster-wide limits, and a job page its weight.

use axum::body::{Body, to_bytes};
use axum::http::header::AUTHORIZATION;
use axum::http::{Request, StatusCode};
use jobsmith::{Db, RateLimit};
use jobsmith_web::{Auth, router};
use tower::ServiceExt;

/// The dashboard's page at `path`, as a caller with a full token sees it (it must answer 200).
async fn page(db: &Db, path: &str) -> String {
    let app = router(db.engine().clone(), Auth::token("t0ken-for-the-test"));
    let request =
        Request::get(path).header(AUTHORIZATION, "Bearer t0ken-for-the-test").body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    String::from_utf8(to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap()
}

#[tokio::test]
async fn the_queues_page_shows_each_queues_rate_global_and_partition_limit() {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let runtime = db
        .runtime()
        .queue("benefits", 5)
        .rate_limit("benefits", RateLimit::new(10, std::time::Duration::from_millis(1500)))
        .queue("partner_api", 5)
        .global_limit("partner_api", 3)
        .queue("reminders", 5)
        .partition_limit("reminders", 2)
        .start()
        .await
        .unwrap();
    let body = page(&db, "/").await;
    runtime.shutdown().await.unwrap();

    assert!(body.contains("<th>Rate limit</th>"), "{body}");
    let row = |queue: &str| {
        let start = body.find(&format!("<tr data-queue=\"{queue}\">")).unwrap_or_else(|| panic!("{body}"));
        body[start..start + body[start..].find("</tr>").unwrap()].to_string()
    };
    let (benefits, partner, reminders) = (row("benefits"), row("partner_api"), row("reminders"));
    // Columns in order: status, concurrency, global limit, rate limit, partition limit, nodes.
    assert!(
        benefits.contains(
            "<td class=\"n\">none</td><td class=\"n\">10 per 1s 500ms</td><td class=\"n\">none</td>"
        ),
        "{benefits}"
    );
    assert!(partner.contains("<td class=\"n\">3</td><td class=\"n\">none</td>"), "{partner}");
    assert!(body.contains("<th>Partition limit</th>"), "{body}");
    assert!(reminders.contains("<td class=\"n\">none</td><td class=\"n\">2</td>"), "{reminders}");
}

/// A report, never run here, only stored.
#[jobsmith::job(queue = "reports", weight = 5)]
async fn clinic_report(clinic_id: i64) -> Result<(), String> {
    let _ = clinic_id;
    Ok(())
}

#[tokio::test]
async fn a_job_page_shows_the_jobs_weight() {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let id = db.insert(ClinicReport { clinic_id: 1 }).await.unwrap().job.id;
    let body = page(&db, &format!("/jobs/{id}")).await;
    assert!(body.contains("<tr><th>Weight</th><td>5</td></tr>"), "{body}");
}
