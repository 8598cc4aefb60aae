//! Trace context across the queue (feature `otel`): the job's span is a child of the span that
//! inserted it, through a W3C `traceparent` in the job's meta, with OpenTelemetry's in-memory
//! exporter standing in for a backend. Its own binary: it installs the global subscriber and flips
//! the process-wide switch.

#![allow(unreachable_pub)]

use std::time::{Duration, Instant};

use jobsmith::{Db, InsertBuilder, JobState, job};
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[job]
async fn ping(n: i64) -> Result<(), String> {
    let _ = n;
    Ok(())
}

const DEADLINE: Duration = Duration::from_secs(60);

async fn wait_completed(db: &Db, id: i64) -> serde_json::Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let job = db.engine().get_job(id).await.unwrap().unwrap();
        if job.state == JobState::Completed {
            return job.meta;
        }
        assert!(Instant::now() < deadline, "job {id} did not complete: {:?}", job.state);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The exported span of job `id`'s run, once it has ended.
async fn job_span(exporter: &InMemorySpanExporter, id: i64) -> SpanData {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let found = exporter.get_finished_spans().unwrap().into_iter().find(|s| {
            s.name == "jobsmith.job"
                && s.attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == "job.id" && kv.value.as_str() == id.to_string())
        });
        if let Some(span) = found {
            return span;
        }
        assert!(Instant::now() < deadline, "no span for job {id}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn request_span(exporter: &InMemorySpanExporter, name: &str) -> SpanData {
    exporter.get_finished_spans().unwrap().into_iter().find(|s| s.name == name).expect("the request's span")
}

/// Inserts a ping inside a span called `name` (standing in for a web request), then ends it.
async fn insert_in_span(db: &Db, name: &'static str, job: InsertBuilder<Ping>) -> i64 {
    let span = tracing::info_span!("request", otel.name = name);
    async { db.insert(job).await.unwrap().job.id }.instrument(span).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_span_is_a_child_of_the_span_that_inserted_it_unless_switched_off() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let rt = db.runtime().queue("default", 2).start().await.unwrap();

    // Inserted inside a request: the meta carries its context, and the job's span joins its trace
    // as its child.
    let id = insert_in_span(&db, "POST /appointments", InsertBuilder::from(Ping { n: 1 })).await;
    let meta = wait_completed(&db, id).await;
    let parent = meta["traceparent"].as_str().expect("a traceparent in the meta").to_string();
    let parts: Vec<&str> = parent.split('-').collect();
    assert_eq!(parts.len(), 4, "{parent}");
    assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("00", 32, 16), "{parent}");
    let request = request_span(&exporter, "POST /appointments");
    let run = job_span(&exporter, id).await;
    assert_eq!(run.span_context.trace_id(), request.span_context.trace_id(), "one trace");
    assert_eq!(run.parent_span_id, request.span_context.span_id(), "the job's span is the request's child");
    assert_eq!(parts[1], request.span_context.trace_id().to_string());
    assert_eq!(parts[2], request.span_context.span_id().to_string());

    // Inserted outside any span: nothing recorded, and the job's span starts its own trace.
    let id = db.insert(Ping { n: 2 }).await.unwrap().job.id;
    let meta = wait_completed(&db, id).await;
    assert!(meta.get("traceparent").is_none(), "{meta}");
    assert_eq!(job_span(&exporter, id).await.parent_span_id, SpanId::INVALID);

    // A traceparent the caller set (from an incoming message, say) is kept and joined.
    let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let job = InsertBuilder::from(Ping { n: 3 }).meta(serde_json::json!({ "traceparent": given }));
    let id = insert_in_span(&db, "consumer", job).await;
    assert_eq!(wait_completed(&db, id).await["traceparent"], given);
    let run = job_span(&exporter, id).await;
    assert_eq!(run.span_context.trace_id(), TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap());
    assert_eq!(run.parent_span_id, SpanId::from_hex("00f067aa0ba902b7").unwrap());

    // A malformed one harms nothing: the job runs in a trace of its own.
    let job =
        InsertBuilder::from(Ping { n: 4 }).meta(serde_json::json!({ "traceparent": "00-not-a-trace-01" }));
    let id = db.insert(job).await.unwrap().job.id;
    wait_completed(&db, id).await;
    assert_eq!(job_span(&exporter, id).await.parent_span_id, SpanId::INVALID);

    // A cron entry saved inside a request does not make its future jobs children of it.
    let save = async {
        let entry = jobsmith::CronEntry::new("0 3 * * *", Ping { n: 7 }).unwrap().named("nightly-ping");
        db.cron().save(entry).await.unwrap();
    };
    save.instrument(tracing::info_span!("request", otel.name = "POST /cron")).await;
    let stored =
        db.cron().list().await.unwrap().into_iter().find(|l| l.entry.name == "nightly-ping").unwrap();
    assert!(stored.entry.job.meta.get("traceparent").is_none(), "{}", stored.entry.job.meta);
    let ran = db.cron().run_now("nightly-ping").await.unwrap();
    assert!(ran.job.meta.get("traceparent").is_none(), "{}", ran.job.meta);

    // Switched off: nothing recorded at insert, and a traceparent already stored is not joined.
    jobsmith::trace_context::set_enabled(false);
    let id = insert_in_span(&db, "POST /quiet", InsertBuilder::from(Ping { n: 5 })).await;
    let meta = wait_completed(&db, id).await;
    assert!(meta.get("traceparent").is_none(), "{meta}");
    let run = job_span(&exporter, id).await;
    assert_ne!(run.span_context.trace_id(), request_span(&exporter, "POST /quiet").span_context.trace_id());
    let job = InsertBuilder::from(Ping { n: 6 }).meta(serde_json::json!({ "traceparent": given }));
    let id = db.insert(job).await.unwrap().job.id;
    wait_completed(&db, id).await;
    assert_eq!(job_span(&exporter, id).await.parent_span_id, SpanId::INVALID);
    jobsmith::trace_context::set_enabled(true);

    rt.shutdown().await.unwrap();
}
