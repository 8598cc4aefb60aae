//! One job: details, args and meta, errors by attempt, timeline, actions.

use std::fmt::Write as _;

use axum::response::Html;
use chrono::{DateTime, Utc};
use jobsmith_runtime::{JobRow, JobState, preview};

use super::{Nav, action_button, esc, escaped_len, jobs_url, notice, page as layout, state_badge, time_el};
use crate::auth::Principal;

pub(crate) fn page(
    who: &Principal,
    job: &JobRow,
    result: Option<&serde_json::Value>,
    done: Option<&str>,
) -> Html<String> {
    let mut b = String::new();
    let _ = write!(b, "<h1>Job {} {}</h1>", job.id, state_badge(job.state, true));
    b.push_str(&notice(done));
    if let Some(reason) = &job.unreadable {
        // The row is shown as stored; the runtime discards such a job (ADR 10).
        let _ = write!(
            b,
            "<p id=\"unreadable\" class=\"notice bad\">This row could not be read: {}</p>",
            esc(reason)
        );
    }

    if who.can_act() {
        b.push_str("<p id=\"actions\">");
        b.push_str(&actions(who, job));
        b.push_str("</p>");
    }

    let tags = if job.tags.is_empty() {
        "<span class=\"muted\">none</span>".to_string()
    } else {
        job.tags
            .iter()
            .map(|t| format!("<a href=\"{}\">{}</a>", esc(&jobs_url(&[("tag", t)])), esc(t)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = write!(
        b,
        "<table id=\"details\"><tbody>\
         <tr><th>Queue</th><td><a href=\"{}\">{}</a></td></tr>\
         <tr><th>Worker</th><td><a href=\"{}\">{}</a></td></tr>\
         <tr><th>Attempt</th><td>{} of {}</td></tr>\
         <tr><th>Priority</th><td>{}</td></tr>\
         <tr><th>Weight</th><td>{}</td></tr>\
         <tr><th>Tags</th><td>{tags}</td></tr>\
         <tr><th>Last run by</th><td>{}</td></tr>\
         </tbody></table>",
        esc(&jobs_url(&[("queue", &job.queue)])),
        esc(&job.queue),
        esc(&jobs_url(&[("worker", &job.worker)])),
        esc(&job.worker),
        job.attempt,
        job.max_attempts,
        job.priority,
        job.weight,
        job.attempted_by
            .as_deref()
            .map_or_else(|| "<span class=\"muted\">never ran</span>".to_string(), |n| esc(n).to_string()),
    );

    b.push_str(&args(job));
    if let Some(result) = result {
        b.push_str(&result_section(result));
    }
    let _ = write!(b, "<h2>Meta</h2><pre id=\"meta\">{}</pre>", esc(&pretty(&job.meta)));

    b.push_str("<h2>Errors</h2>");
    if job.errors.is_empty() {
        b.push_str("<p class=\"muted\">No attempt failed.</p>");
    } else {
        b.push_str(
            "<table id=\"errors\"><thead><tr><th>Attempt</th><th>At</th><th>Error</th></tr></thead><tbody>",
        );
        for e in &job.errors {
            let entry = ErrorEntry::from(e);
            let _ = write!(
                b,
                "<tr><td class=\"n\">{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
                entry.attempt_text(),
                entry.at_html(),
                esc(&entry.error)
            );
        }
        b.push_str("</tbody></table>");
    }

    b.push_str("<h2>Timeline</h2><ol class=\"timeline\" id=\"timeline\">");
    for event in timeline(job) {
        let _ = write!(
            b,
            "<li>{} {}</li>",
            event.at.map_or_else(|| "<time>?</time>".to_string(), time_el),
            event.html
        );
    }
    b.push_str("</ol>");
    layout(&format!("Job {}", job.id), Nav::Jobs, who, &b)
}

/// Retry, cancel and delete, each disabled with the reason when it does not apply.
fn actions(who: &Principal, job: &JobRow) -> String {
    let id = job.id;
    let retry = matches!(job.state, JobState::Discarded | JobState::Cancelled);
    let cancel = !job.state.is_final();
    let delete = job.state != JobState::Executing;
    let mut out = action_button(
        who,
        &format!("/jobs/{id}/retry"),
        "",
        "Retry",
        "",
        (!retry).then_some("Only discarded or cancelled jobs can be retried"),
    );
    out.push_str(&action_button(
        who,
        &format!("/jobs/{id}/cancel"),
        "",
        "Cancel",
        "",
        (!cancel).then_some("The job has finished"),
    ));
    out.push_str(&action_button(
        who,
        &format!("/jobs/{id}/delete"),
        "<label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> sure</label>",
        "Delete",
        "danger",
        (!delete).then_some("Executing jobs cannot be deleted; cancel it first"),
    ));
    out
}

fn pretty(value: &serde_json::Value) -> String {
    preview::pretty_json(value)
}

/// The args section: all of them when small; else their start, cut so the escaped text stays
/// within [`preview::ARGS_PREVIEW_BYTES`] however many characters need escaping, with their size.
/// Either way a link downloads the whole.
fn args(job: &JobRow) -> String {
    let text = pretty(&job.args);
    let shown = preview::prefix_within(&text, preview::ARGS_PREVIEW_BYTES, escaped_len);
    let download = format!("<a href=\"/jobs/{}/args.json\" id=\"args-download\">download</a>", job.id);
    if shown.len() == text.len() {
        return format!(
            "<h2>Args</h2><pre id=\"args\">{}</pre><p class=\"muted\">{} · {download}</p>",
            esc(&text),
            preview::format_bytes(text.len())
        );
    }
    format!(
        "<h2>Args</h2><p class=\"notice\" id=\"args-cut\">Large args: showing the first {} of {}; {download} \
         all of them as JSON.</p><pre id=\"args\">{}…</pre>",
        preview::format_bytes(shown.len()),
        preview::format_bytes(text.len()),
        esc(shown)
    )
}

/// The recorded result, bounded like args.
fn result_section(result: &serde_json::Value) -> String {
    let text = pretty(result);
    let shown = preview::prefix_within(&text, preview::ARGS_PREVIEW_BYTES, escaped_len);
    let more = if shown.len() == text.len() {
        String::new()
    } else {
        format!(
            "<p class=\"notice\" id=\"result-cut\">Large result: showing the first {} of {}.</p>",
            preview::format_bytes(shown.len()),
            preview::format_bytes(text.len())
        )
    };
    format!("<h2>Result</h2>{more}<pre id=\"result\">{}</pre>", esc(shown))
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

    fn at_html(&self) -> String {
        self.at.map_or_else(|| esc(&self.at_raw).to_string(), time_el)
    }
}

struct Event {
    at: Option<DateTime<Utc>>,
    html: String,
}

/// Every recorded moment of the job, oldest first: insert, due time, each failed attempt, the
/// last attempt's start, and how it ended.
fn timeline(job: &JobRow) -> Vec<Event> {
    let mut events = vec![Event { at: Some(job.inserted_at), html: "inserted".into() }];
    if job.scheduled_at != job.inserted_at {
        events.push(Event { at: Some(job.scheduled_at), html: "scheduled to run".into() });
    }
    for e in &job.errors {
        let entry = ErrorEntry::from(e);
        events.push(Event {
            at: entry.at,
            html: format!(
                "attempt {} failed: <code>{}</code>",
                entry.attempt_text(),
                esc(&first_line(&entry.error))
            ),
        });
    }
    if let Some(at) = job.attempted_at {
        let by = job.attempted_by.as_deref().map(|n| format!(" on {}", esc(n))).unwrap_or_default();
        events.push(Event { at: Some(at), html: format!("attempt {} started{by}", job.attempt) });
    }
    for (at, what) in
        [(job.completed_at, "completed"), (job.discarded_at, "discarded"), (job.cancelled_at, "cancelled")]
    {
        if let Some(at) = at {
            events.push(Event { at: Some(at), html: format!("<strong>{what}</strong>") });
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
