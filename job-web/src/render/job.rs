//! One job: details, args and meta, errors by attempt, timeline, actions.

use axum::response::Html;
use chrono::{DateTime, Utc};
use jobsmith_runtime::{JobRow, JobState, preview};
use maud::{Markup, html};

use super::{Nav, action_button, escaped_len, jobs_url, notice, page as layout, state_badge, time_el, url};
use crate::auth::Principal;

pub(crate) fn page(
    who: &Principal,
    job: &JobRow,
    result: Option<&serde_json::Value>,
    done: Option<&str>,
) -> Html<String> {
    let body = html! {
        div #job-live data-live {
        h1 { "Job " (job.id) " " (state_badge(job.state, true)) }
        (notice(done))
        @if let Some(reason) = &job.unreadable {
            // The row is shown as stored; the runtime discards such a job (ADR 10).
            p #unreadable .notice.bad { "This row could not be read: " (reason) }
        }
        @if who.can_act() {
            p #actions { (actions(who, job)) }
        }
        table #details {
            tbody {
                tr { th { "Queue" } td { a href=(jobs_url(&[("queue", &job.queue)])) { (job.queue) } } }
                tr { th { "Worker" } td { a href=(jobs_url(&[("worker", &job.worker)])) { (job.worker) } } }
                tr { th { "Attempt" } td { (job.attempt) " of " (job.max_attempts) } }
                tr { th { "Priority" } td { (job.priority) } }
                tr { th { "Weight" } td { (job.weight) } }
                tr {
                    th { "Tags" }
                    td {
                        @if job.tags.is_empty() { span.muted { "none" } }
                        @for (i, t) in job.tags.iter().enumerate() {
                            @if i > 0 { ", " }
                            a href=(jobs_url(&[("tag", t)])) { (t) }
                        }
                    }
                }
                tr {
                    th { "Last run by" }
                    td {
                        @match &job.attempted_by {
                            Some(node) => (node),
                            None => span.muted { "never ran" },
                        }
                    }
                }
            }
        }
        (args(job))
        @if let Some(result) = result { (result_section(result)) }
        h2 { "Meta" }
        pre #meta { (pretty(&job.meta)) }
        h2 { "Attempts" }
        @let attempts = attempts(job);
        @if attempts.is_empty() {
            p.muted { "Not run yet." }
        } @else {
            table #attempts {
                thead { tr { th { "Attempt" } th { "Node" } th { "Started" } th { "Duration" } th { "Outcome" } } }
                tbody {
                    @for a in &attempts {
                        tr {
                            td.n { (a.number) }
                            td { @match &a.node { Some(n) => (n), None => span.muted { "?" } } }
                            td { @match a.started { Some(t) => (time_el(t)), None => span.muted { "?" } } }
                            td.n { @match a.duration_ms { Some(ms) => (format_duration(ms)), None => span.muted { "" } } }
                            td { (a.outcome) }
                        }
                    }
                }
            }
        }
        @if !job.errors.is_empty() {
            h2 { "Errors" }
            table #errors {
                thead { tr { th { "Attempt" } th { "At" } th { "Error" } } }
                tbody {
                    @for e in &job.errors {
                        @let entry = ErrorEntry::from(e);
                        tr {
                            td.n { (entry.attempt_text()) }
                            td { (entry.at_html()) }
                            td { pre { (entry.error) } }
                        }
                    }
                }
            }
        }
        h2 { "Timeline" }
        ol.timeline #timeline {
            @for event in timeline(job) {
                li {
                    @match event.at {
                        Some(at) => (time_el(at)),
                        None => time { "?" },
                    }
                    " " (event.what)
                }
            }
        }
        }
    };
    layout(&format!("Job {}", job.id), Nav::Jobs, who, body)
}

/// Retry, cancel and delete, each disabled with the reason when it does not apply.
fn actions(who: &Principal, job: &JobRow) -> Markup {
    let id = job.id;
    let retry = matches!(job.state, JobState::Discarded | JobState::Cancelled);
    let cancel = !job.state.is_final();
    let delete = job.state != JobState::Executing;
    let sure = html! { label { input type="checkbox" name="confirm" value="yes" required; " sure" } };
    html! {
        (action_button(who, &format!("/jobs/{id}/retry"), html! {}, "Retry", "",
            (!retry).then_some("Only discarded or cancelled jobs can be retried")))
        (action_button(who, &format!("/jobs/{id}/cancel"), html! {}, "Cancel", "",
            (!cancel).then_some("The job has finished")))
        (action_button(who, &format!("/jobs/{id}/delete"), sure, "Delete", "danger",
            (!delete).then_some("Executing jobs cannot be deleted; cancel it first")))
    }
}

fn pretty(value: &serde_json::Value) -> String {
    preview::pretty_json(value)
}

/// The args section: all of them when small; else their start, cut so the escaped text stays
/// within [`preview::ARGS_PREVIEW_BYTES`] however many characters need escaping, with their size.
/// Either way a link downloads the whole.
fn args(job: &JobRow) -> Markup {
    let text = pretty(&job.args);
    let shown = preview::prefix_within(&text, preview::ARGS_PREVIEW_BYTES, escaped_len);
    let download = html! {
        a href=(url(&format!("/jobs/{}/args.json", job.id))) id="args-download" { "download" }
    };
    html! {
        h2 { "Args" }
        @if shown.len() == text.len() {
            pre #args { (text) }
            p.muted { (preview::format_bytes(text.len())) " · " (download) }
        } @else {
            p.notice #args-cut {
                "Large args: showing the first " (preview::format_bytes(shown.len())) " of "
                (preview::format_bytes(text.len())) "; " (download) " all of them as JSON."
            }
            pre #args { (shown) "…" }
        }
    }
}

/// The recorded result, bounded like args.
fn result_section(result: &serde_json::Value) -> Markup {
    let text = pretty(result);
    let shown = preview::prefix_within(&text, preview::ARGS_PREVIEW_BYTES, escaped_len);
    html! {
        h2 { "Result" }
        @if shown.len() != text.len() {
            p.notice #result-cut {
                "Large result: showing the first " (preview::format_bytes(shown.len())) " of "
                (preview::format_bytes(text.len())) "."
            }
        }
        pre #result { (shown) }
    }
}

/// One attempt as the job page lists it.
struct Attempt {
    number: String,
    node: Option<String>,
    started: Option<DateTime<Utc>>,
    duration_ms: Option<i64>,
    outcome: Markup,
}

/// Every attempt: each one that ended in an error entry (its node and start are recorded there
/// since schema 17; older entries show `?`), then the last attempt if no entry covers it (running,
/// or ended without an error: completed, snoozed).
fn attempts(job: &JobRow) -> Vec<Attempt> {
    let mut out = Vec::new();
    let mut covered = std::collections::HashSet::new();
    for e in &job.errors {
        let entry = ErrorEntry::from(e);
        if let Some(n) = entry.attempt {
            covered.insert(n);
        }
        let started = time_field(&e["started_at"]);
        out.push(Attempt {
            number: entry.attempt_text(),
            node: e["node"].as_str().map(str::to_owned),
            started,
            duration_ms: started.zip(entry.at).map(|(s, at)| (at - s).num_milliseconds()),
            outcome: html! { "failed: " code { (first_line(&entry.error)) } },
        });
    }
    if let Some(started) = job.attempted_at
        && job.attempt > 0
        && !covered.contains(&u64::from(job.attempt))
    {
        let ended = match job.state {
            JobState::Completed => job.completed_at,
            JobState::Discarded => job.discarded_at,
            JobState::Cancelled => job.cancelled_at,
            _ => None,
        };
        let outcome = match job.state {
            JobState::Executing => html! { (state_badge(job.state, false)) " running" },
            state => html! { (state_badge(state, false)) },
        };
        out.push(Attempt {
            number: job.attempt.to_string(),
            node: job.attempted_by.clone(),
            started: Some(started),
            duration_ms: ended.map(|e| (e - started).num_milliseconds()),
            outcome,
        });
    }
    out
}

/// A time in an error entry: RFC 3339 text (PostgreSQL) or milliseconds (SQLite).
fn time_field(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    match value {
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)),
        serde_json::Value::Number(n) => n.as_i64().and_then(DateTime::from_timestamp_millis),
        _ => None,
    }
}

/// `850 ms`, `12.3 s`, `4 min 10 s`.
fn format_duration(ms: i64) -> String {
    match ms {
        ms if ms < 1_000 => format!("{} ms", ms.max(0)),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// One entry of `errors`, read leniently: rows written by other versions may lack a field.
struct ErrorEntry {
    attempt: Option<u64>,
    at: Option<DateTime<Utc>>,
    at_raw: String,
    error: String,
}

impl From<&serde_json::Value> for ErrorEntry {
    fn from(e: &serde_json::Value) -> Self {
        let at = match &e["at"] {
            serde_json::Value::String(s) => {
                DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
            }
            serde_json::Value::Number(n) => n.as_i64().and_then(DateTime::from_timestamp_millis),
            _ => None,
        };
        let at_raw = match &e["at"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        let error = match &e["error"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => e.to_string(),
            other => other.to_string(),
        };
        ErrorEntry { attempt: e["attempt"].as_u64(), at, at_raw, error }
    }
}

impl ErrorEntry {
    fn attempt_text(&self) -> String {
        self.attempt.map_or_else(|| "?".to_string(), |a| a.to_string())
    }

    fn at_html(&self) -> Markup {
        match self.at {
            Some(at) => time_el(at),
            None => html! { (self.at_raw) },
        }
    }
}

struct Event {
    at: Option<DateTime<Utc>>,
    what: Markup,
}

/// Every recorded moment of the job, oldest first: insert, due time, each failed attempt, the
/// last attempt's start, and how it ended.
fn timeline(job: &JobRow) -> Vec<Event> {
    let mut events = vec![Event { at: Some(job.inserted_at), what: html! { "inserted" } }];
    if job.scheduled_at != job.inserted_at {
        events.push(Event { at: Some(job.scheduled_at), what: html! { "scheduled to run" } });
    }
    for e in &job.errors {
        let entry = ErrorEntry::from(e);
        events.push(Event {
            at: entry.at,
            what: html! { "attempt " (entry.attempt_text()) " failed: " code { (first_line(&entry.error)) } },
        });
    }
    if let Some(at) = job.attempted_at {
        events.push(Event {
            at: Some(at),
            what: html! {
                "attempt " (job.attempt) " started"
                @if let Some(node) = &job.attempted_by { " on " (node) }
            },
        });
    }
    for (at, what) in
        [(job.completed_at, "completed"), (job.discarded_at, "discarded"), (job.cancelled_at, "cancelled")]
    {
        if let Some(at) = at {
            events.push(Event { at: Some(at), what: html! { strong { (what) } } });
        }
    }
    // Stable: equal times keep the lifecycle order above; unknown times go last.
    events.sort_by_key(|e| (e.at.is_none(), e.at));
    events
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}
