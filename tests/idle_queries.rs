//! An idle node's cost is bounded by construction: one fetch per queue and one staging query per
//! poll interval, plus the heartbeat, leadership and maintenance on their own timers. This counts
//! the engine calls of an idle node (every call is one `jobsmith.engine` span) so a busy loop, or
//! a producer that stopped polling, fails here. Its own binary: it installs the global subscriber.

#![allow(unreachable_pub, dead_code, unused_macros)]

#[path = "conformance/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobsmith::Db;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Engine calls by operation.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<HashMap<String, usize>>>);

impl Calls {
    fn take(&self) -> HashMap<String, usize> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Op(Option<String>);

impl Visit for Op {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "op" {
            self.0 = Some(value.to_string());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "op" {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_string());
        }
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Calls {
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, _: &tracing::span::Id, _: Context<'_, S>) {
        if attrs.metadata().name() == "jobsmith.engine" {
            let mut op = Op(None);
            attrs.record(&mut op);
            *self.0.lock().unwrap().entry(op.0.unwrap_or_default()).or_default() += 1;
        }
    }
}

const QUEUES: [&str; 3] = ["default", "events", "mailers"];
const POLL: Duration = Duration::from_millis(200);
const WINDOW: Duration = Duration::from_secs(3);

/// Runs an idle node on `db` and returns its engine calls during `WINDOW`, after a warm-up.
async fn idle_calls(db: &Db, calls: &Calls) -> HashMap<String, usize> {
    let mut builder = db.runtime().poll_interval(POLL);
    for q in QUEUES {
        builder = builder.queue(q, 10);
    }
    let rt = builder.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await; // start-up: migrations check, election
    calls.take();
    // A fixed wait is the point here: the test measures what happens in a span of idle time.
    tokio::time::sleep(WINDOW).await;
    let seen = calls.take();
    rt.shutdown().await.unwrap();
    seen
}

fn check(engine: &str, seen: &HashMap<String, usize>) {
    let polls = (WINDOW.as_millis() / POLL.as_millis()) as usize; // 15
    let total: usize = seen.values().sum();
    eprintln!("{engine}: {seen:?}");
    let fetches = seen.get("fetch").copied().unwrap_or(0);
    // Per poll: one fetch per queue and one stage; per second a heartbeat, a lease renewal and
    // a little maintenance. Twice that is the bound; a busy loop makes thousands.
    let bound = 2 * ((QUEUES.len() + 1) * polls + 5 * WINDOW.as_secs() as usize);
    assert!(
        total <= bound,
        "{engine}: an idle node made {total} engine calls in {WINDOW:?} (bound {bound}): {seen:?}"
    );
    // And it still polls: every queue fetched in most intervals.
    assert!(
        fetches >= QUEUES.len() * polls / 2,
        "{engine}: only {fetches} fetches in {WINDOW:?}; the producers stopped polling: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_node_makes_a_bounded_number_of_queries() {
    let calls = Calls::default();
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("off,jobsmith=debug"))
        .with(calls.clone())
        .init();

    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let seen = idle_calls(&db, &calls).await;
    check("sqlite", &seen);

    let pool = harness::new_pg_database().await;
    let db = Db::postgres(pool, "jobsmith").unwrap();
    db.migrate().await.unwrap();
    let seen = idle_calls(&db, &calls).await;
    check("postgres", &seen);
}
