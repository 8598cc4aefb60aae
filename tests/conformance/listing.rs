//! Listing, searching, deleting and bulk-retrying jobs, and throughput: what the CLI and the
//! dashboard show. Each test runs on both engines.

use std::time::Duration;

use jobsmith::prelude::*;
use jobsmith::{JobFilter, JobState, Page};

use super::jobs::{A, B, WithDefaults};

conformance! {
    async fn listings_filter_search_and_page_newest_first(db) {
        let mut ids = Vec::new();
        for i in 0..30 {
            ids.push(db.insert(A { n: i }).await.unwrap().job.id);
        }
        let b = db.insert(B { s: "needle-in-args".into() }).await.unwrap().job.id;
        let tagged = db.insert(WithDefaults { to: "x".into() }).await.unwrap().job.id;
        let e = db.engine();

        let first = e.list_jobs(&JobFilter::default(), Page { limit: 10, before_id: None }).await.unwrap();
        assert_eq!(first.len(), 10);
        assert_eq!(first[0].id, tagged, "newest first");
        let next = e.list_jobs(&JobFilter::default(), Page { limit: 10, before_id: Some(first[9].id) }).await.unwrap();
        assert!(next[0].id < first[9].id);

        let by_queue = e.list_jobs(&JobFilter { queue: Some("other".into()), ..Default::default() }, Page::default()).await.unwrap();
        assert_eq!(by_queue.iter().map(|j| j.id).collect::<Vec<_>>(), vec![b]);
        let by_tag = e.list_jobs(&JobFilter { tag: Some("mail".into()), ..Default::default() }, Page::default()).await.unwrap();
        assert_eq!(by_tag.iter().map(|j| j.id).collect::<Vec<_>>(), vec![tagged]);
        let by_worker = e
            .list_jobs(&JobFilter { worker: Some(<A as jobsmith::Job>::NAME.into()), ..Default::default() }, Page { limit: 100, before_id: None })
            .await
            .unwrap();
        assert_eq!(by_worker.len(), 30);
        let by_text = e.list_jobs(&JobFilter { search: Some("needle".into()), ..Default::default() }, Page::default()).await.unwrap();
        assert_eq!(by_text.iter().map(|j| j.id).collect::<Vec<_>>(), vec![b]);
        let by_id = e.list_jobs(&JobFilter { search: Some(ids[3].to_string()), ..Default::default() }, Page::default()).await.unwrap();
        assert!(by_id.iter().any(|j| j.id == ids[3]));
        let wildcard = e.list_jobs(&JobFilter { search: Some("%".into()), ..Default::default() }, Page::default()).await.unwrap();
        assert!(wildcard.is_empty(), "LIKE wildcards are searched literally");
        let by_state = e
            .list_jobs(&JobFilter { states: vec![JobState::Discarded, JobState::Cancelled], ..Default::default() }, Page::default())
            .await
            .unwrap();
        assert!(by_state.is_empty());
    }
}

conformance! {
    async fn delete_and_bulk_retry(db) {
        let e = db.engine().clone();
        let ids: Vec<i64> = db.insert_all((0..5).map(|n| A { n }.build().unwrap()).collect()).await.unwrap().iter().map(|j| j.job.id).collect();
        for id in &ids[..3] {
            e.cancel_job(*id).await.unwrap();
        }
        db.exec(&format!("UPDATE {{jobs}} SET state = 'executing' WHERE id = {}", ids[4])).await;
        assert!(!e.delete_job(ids[4]).await.unwrap(), "an executing job is not deleted");
        assert!(e.delete_job(ids[3]).await.unwrap());
        assert!(!e.delete_job(ids[3]).await.unwrap(), "already gone");
        let retried = e.retry_jobs(&JobFilter { states: vec![JobState::Cancelled], ..Default::default() }).await.unwrap();
        assert_eq!(retried, 3);
        assert_eq!(db.count_state(JobState::Available).await, 3);
        assert_eq!(e.retry_jobs(&JobFilter::default()).await.unwrap(), 0, "nothing left to retry");
    }
}

conformance! {
    async fn throughput_counts_completions_and_failures_per_minute(db) {
        let e = db.engine().clone();
        let ids: Vec<i64> = db.insert_all((0..4).map(|n| A { n }.build().unwrap()).collect()).await.unwrap().iter().map(|j| j.job.id).collect();
        let rt = db.runtime().queue("default", 4).start().await.unwrap();
        db.wait_state_count(JobState::Completed, 4).await;
        rt.shutdown().await.unwrap();
        let _ = ids;
        let stats = e.throughput(Duration::from_secs(3600), None).await.unwrap();
        assert!(stats.len() >= 60, "one row per minute of the hour: {}", stats.len());
        assert_eq!(stats.iter().map(|s| s.completed).sum::<i64>(), 4);
        assert_eq!(stats.iter().map(|s| s.failed).sum::<i64>(), 0);
        assert!(stats.windows(2).all(|w| w[0].minute < w[1].minute));
        // One queue's: the jobs ran on `default`, none on `other`.
        let default = e.throughput(Duration::from_secs(3600), Some("default")).await.unwrap();
        assert_eq!(default.iter().map(|s| s.completed).sum::<i64>(), 4);
        let other = e.throughput(Duration::from_secs(3600), Some("other")).await.unwrap();
        assert_eq!(other.iter().map(|s| s.completed).sum::<i64>(), 0);
    }
}

conformance! {
    /// The gauges' frequent count gives the same numbers as counting every state, without the
    /// finished ones.
    async fn counting_unfinished_jobs_matches_counting_by_state(db) {
        for n in 0..5 {
            db.insert(A { n }).await.unwrap();
        }
        for i in 0..3 {
            db.insert(B { s: format!("{i}") }.schedule_in(Duration::from_secs(600))).await.unwrap();
        }
        let rt = db.runtime().queue("default", 2).start().await.unwrap();
        db.wait_state_count(JobState::Completed, 5).await;
        rt.shutdown().await.unwrap();
        db.insert(A { n: 9 }).await.unwrap();

        let mut all = db.engine().count_by_state().await.unwrap();
        all.retain(|c| !c.state.is_final());
        let mut unfinished = db.engine().count_unfinished().await.unwrap();
        all.sort_by(|a, b| (&a.queue, a.state.as_str()).cmp(&(&b.queue, b.state.as_str())));
        unfinished.sort_by(|a, b| (&a.queue, a.state.as_str()).cmp(&(&b.queue, b.state.as_str())));
        assert_eq!(unfinished, all);
        assert_eq!(unfinished.iter().map(|c| c.count).sum::<i64>(), 4, "{unfinished:?}");
    }
}
