//! The generated query type: a method per arg taking the arg's type, every forwarded filter and
//! operation (so the macro's list and `__query_method!`'s arms agree), and an arg named like a
//! filter (`queue`, `id`) taking the name, with the filter still reachable through `into_query`.
use jobsmith::{Change, JobState, Page, Query, job};

#[job]
async fn send_reminder(appointment_id: i64, kind: String, note: Option<String>) -> Result<(), String> {
    let _ = (appointment_id, kind, note);
    Ok(())
}

#[job]
async fn route(queue: String, id: i64, count: u32) -> Result<(), String> {
    let _ = (queue, id, count);
    Ok(())
}

#[allow(dead_code)]
async fn uses(pool: sqlx::SqlitePool) -> jobsmith::Result<()> {
    let q = SendReminder::query()
        .appointment_id(7)
        .kind("day-before")
        .note(None)
        .id(1)
        .ids([2, 3])
        .states([JobState::Scheduled])
        .queue("events")
        .tag("vip")
        .meta("clinic", "north")
        .meta_key("clinic")
        .scheduled_from(chrono::Utc::now())
        .scheduled_before(chrono::Utc::now())
        .schema("jobsmith");
    let _: u64 = q.count(&pool).await?;
    let _: Vec<jobsmith::TypedJob<SendReminder>> = q.list(&pool, Page::default()).await?;
    let _: u64 = q.cancel(&pool).await?;
    let _: u64 = q.retry(&pool).await?;
    let _: u64 = q.delete(&pool).await?;
    let _: jobsmith::Updated = q.update(&pool, Change::new().run_now()).await?;
    let mut tx = pool.begin().await?;
    let _ = SendReminder::query().appointment_id(7).cancel(&mut *tx).await?;
    tx.commit().await?;

    let by_arg = Route::query().queue("north").id(5).count(7);
    let _: Query<Route> = by_arg.into_query().queue("routes").id(9);
    Ok(())
}

fn main() {}
