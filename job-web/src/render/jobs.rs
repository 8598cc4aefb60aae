//! The job list with its filter form.

use std::fmt::Write as _;

use axum::response::Html;
use jobsmith_runtime::{JobRow, JobState};

use super::{Nav, esc, jobs_url, notice, page as layout, state_badge, time_el};
use crate::auth::Principal;
use crate::routes::jobs::{DEFAULT_LIMIT, Listing};

/// How much of the args a row shows.
const ARGS_PREVIEW_CHARS: usize = 120;

pub(crate) fn page(who: &Principal, listing: &Listing, rows: &[JobRow], done: Option<&str>) -> Html<String> {
    let f = &listing.filter;
    let (queue, worker, tag, search) = (
        f.queue.as_deref().unwrap_or(""),
        f.worker.as_deref().unwrap_or(""),
        f.tag.as_deref().unwrap_or(""),
        f.search.as_deref().unwrap_or(""),
    );
    let state = listing.state.map(JobState::as_str).unwrap_or("");
    let mut b = String::from("<h1>Jobs</h1>");
    b.push_str(&notice(done));
    b.push_str("<form class=\"filters\" method=\"get\" action=\"/jobs\" id=\"filters\"><label>State <select name=\"state\">");
    b.push_str("<option value=\"\">any</option>");
    for s in JobState::ALL {
        let selected = if s.as_str() == state { " selected" } else { "" };
        let _ = write!(b, "<option value=\"{s}\"{selected}>{s}</option>");
    }
    b.push_str("</select></label>");
    for (name, label, value) in [
        ("queue", "Queue", queue),
        ("worker", "Worker", worker),
        ("tag", "Tag", tag),
        ("q", "Id or args text", search),
    ] {
        let _ = write!(
            b,
            "<label>{label} <input type=\"text\" name=\"{name}\" value=\"{}\"></label>",
            esc(value)
        );
    }
    b.push_str("<button type=\"submit\" id=\"filter\">Filter</button> <a href=\"/jobs\">clear</a></form>");

    if rows.is_empty() {
        b.push_str("<p class=\"muted\">No jobs match.</p>");
    } else {
        b.push_str(
            "<table id=\"jobs\"><thead><tr><th>Id</th><th>State</th><th>Queue</th><th>Worker</th><th>Args</th>\
             <th>Attempt</th><th>Inserted</th><th>Scheduled</th></tr></thead><tbody>",
        );
        for job in rows {
            let _ = write!(
                b,
                "<tr><td><a href=\"/jobs/{id}\" class=\"job\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td>\
                 <td><code>{}</code></td><td class=\"n\">{}/{}</td><td>{}</td><td>{}</td></tr>",
                state_badge(job.state, false),
                esc(&job.queue),
                esc(&job.worker),
                esc(&preview(&job.args)),
                job.attempt,
                job.max_attempts,
                time_el(job.inserted_at),
                time_el(job.scheduled_at),
                id = job.id,
            );
        }
        b.push_str("</tbody></table>");
    }

    // Keyset paging: "older" continues below the last id shown, with the same filters.
    let mut links = Vec::new();
    if listing.page.before_id.is_some() {
        let newest =
            jobs_url(&[("state", state), ("queue", queue), ("worker", worker), ("tag", tag), ("q", search)]);
        links.push(format!("<a href=\"{}\" id=\"newest\">newest</a>", esc(&newest)));
    }
    if let Some(last) = rows.last().filter(|_| rows.len() as u32 >= listing.page.limit) {
        let before = last.id.to_string();
        let limit = listing.page.limit.to_string();
        let older = jobs_url(&[
            ("state", state),
            ("queue", queue),
            ("worker", worker),
            ("tag", tag),
            ("q", search),
            ("before_id", &before),
            ("limit", if listing.page.limit == DEFAULT_LIMIT { "" } else { &limit }),
        ]);
        links.push(format!("<a href=\"{}\" id=\"older\">older</a>", esc(&older)));
    }
    if !links.is_empty() {
        let _ = write!(b, "<p>{}</p>", links.join(" · "));
    }
    layout("Jobs", Nav::Jobs, who, &b)
}

/// The args as compact JSON, cut to a preview length on a character boundary.
fn preview(args: &serde_json::Value) -> String {
    let text = args.to_string();
    match text.char_indices().nth(ARGS_PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::preview;

    #[test]
    fn previews_cut_on_char_boundaries() {
        let long = serde_json::json!({ "text": "é".repeat(300) });
        let p = preview(&long);
        assert!(p.ends_with('…'));
        assert_eq!(p.chars().count(), super::ARGS_PREVIEW_CHARS + 1);
        assert_eq!(preview(&serde_json::json!({"a": 1})), "{\"a\":1}");
    }
}
