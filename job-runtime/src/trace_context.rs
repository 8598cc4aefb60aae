//! Trace context across the queue (feature `otel`): an insert records the inserting span's
//! OpenTelemetry context in the job's meta as W3C `traceparent` (and `tracestate` when there is
//! one), and the job's `jobsmith.job` span continues that trace as a child of the inserting
//! span. A web request and the jobs it caused then show as one trace in any OpenTelemetry
//! backend.
//!
//! It needs the application's `tracing` subscriber to carry
//! [`tracing-opentelemetry`](https://docs.rs/tracing-opentelemetry)'s layer (that is where spans
//! get their trace ids); without it, or without the feature, nothing is recorded. The W3C format
//! is written and read by `opentelemetry_sdk`'s `TraceContextPropagator` rather than by hand,
//! and always that format whatever global propagator the application installed, so jobs inserted
//! by one service and run by another agree. A `traceparent` the caller put in the meta itself is
//! kept.
//!
//! Off-switch: [`set_enabled(false)`](set_enabled) stops both recording and continuing, for the
//! whole process (as the OpenTelemetry tracer provider itself is process-wide).
//!
//! ```no_run
//! // Keep job traces apart from the requests that inserted them:
//! jobsmith::trace_context::set_enabled(false);
//! ```

use std::sync::atomic::{AtomicBool, Ordering};

/// The meta key holding the W3C trace parent.
pub const TRACEPARENT: &str = "traceparent";
/// The meta key holding the W3C trace state, when the trace has one.
pub const TRACESTATE: &str = "tracestate";

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns trace propagation on or off for this process (on by default; it only acts with the
/// `otel` feature).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether trace propagation is on (see [`set_enabled`]).
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Adds the current span's trace context to `meta` (an object), unless propagation is off, the
/// current span has no valid trace context, or `meta` already names a parent.
#[cfg(feature = "otel")]
pub(crate) fn record(meta: &mut serde_json::Value) {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let Some(object) = meta.as_object_mut() else { return };
    if !is_enabled() || object.contains_key(TRACEPARENT) {
        return;
    }
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return;
    }
    let mut fields = std::collections::HashMap::<String, String>::new();
    opentelemetry_sdk::propagation::TraceContextPropagator::new().inject_context(&context, &mut fields);
    for (key, value) in fields.into_iter().filter(|(_, v)| !v.is_empty()) {
        object.insert(key, serde_json::Value::String(value));
    }
}

/// Without the `otel` feature there is no trace context to record.
#[cfg(not(feature = "otel"))]
pub(crate) fn record(_meta: &mut serde_json::Value) {}

/// Makes `span` (a job's span, not yet entered) a child of the trace context in `meta`, if it
/// holds a valid one and propagation is on. A malformed `traceparent` is ignored: the job runs in
/// a trace of its own.
#[cfg(feature = "otel")]
pub(crate) fn continue_in(span: &tracing::Span, meta: &serde_json::Value) {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    if !is_enabled() {
        return;
    }
    let Some(parent) = meta.get(TRACEPARENT).and_then(|v| v.as_str()) else { return };
    let mut fields = std::collections::HashMap::<String, String>::new();
    fields.insert(TRACEPARENT.to_string(), parent.to_string());
    if let Some(state) = meta.get(TRACESTATE).and_then(|v| v.as_str()) {
        fields.insert(TRACESTATE.to_string(), state.to_string());
    }
    let context = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&fields);
    if context.span().span_context().is_valid() {
        // Fails only when the subscriber has no OpenTelemetry layer: then there is no trace to join.
        let _ = span.set_parent(context);
    }
}

/// Without the `otel` feature a job's span starts its own trace.
#[cfg(not(feature = "otel"))]
pub(crate) fn continue_in(_span: &tracing::Span, _meta: &serde_json::Value) {}

/// Removes a recorded trace context from `meta`: a cron entry's template is built once (inside
/// whatever span saved it) and must not make every job it inserts later a child of that span.
pub(crate) fn forget(meta: &mut serde_json::Value) {
    if let Some(object) = meta.as_object_mut() {
        object.remove(TRACEPARENT);
        object.remove(TRACESTATE);
    }
}
