//! The job list with its filter form.

use axum::response::Html;
use jobsmith_runtime::{JobRow, JobState};
use maud::html;

use super::{Nav, jobs_url, notice, page as layout, state_badge, time_el, url};
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
    // Keyset paging: "older" continues below the last id shown, with the same filters.
    let newest = listing.page.before_id.is_some().then(|| {
        jobs_url(&[("state", state), ("queue", queue), ("worker", worker), ("tag", tag), ("q", search)])
    });
    let older = rows.last().filter(|_| rows.len() as u32 >= listing.page.limit).map(|last| {
        let before = last.id.to_string();
        let limit = listing.page.limit.to_string();
        jobs_url(&[
            ("state", state),
            ("queue", queue),
            ("worker", worker),
            ("tag", tag),
            ("q", search),
            ("before_id", &before),
            ("limit", if listing.page.limit == DEFAULT_LIMIT { "" } else { &limit }),
        ])
    });
    let body = html! {
        h1 { "Jobs" }
        (notice(done))
        form.filters method="get" action=(url("/jobs")) id="filters" {
            label {
                "State "
                select name="state" {
                    option value="" { "any" }
                    @for s in JobState::ALL {
                        option value=(s) selected[s.as_str() == state] { (s) }
                    }
                }
            }
            @for (name, label, value) in [
                ("queue", "Queue", queue),
                ("worker", "Worker", worker),
                ("tag", "Tag", tag),
                ("q", "Id or args text", search),
            ] {
                label { (label) " " input type="text" name=(name) value=(value); }
            }
            button type="submit" id="filter" { "Filter" }
            " "
            a href=(url("/jobs")) { "clear" }
        }
        @if rows.is_empty() {
            p.muted { "No jobs match." }
        } @else {
            table #jobs {
                thead {
                    tr {
                        th { "Id" } th { "State" } th { "Queue" } th { "Worker" } th { "Args" }
                        th { "Attempt" } th { "Inserted" } th { "Scheduled" }
                    }
                }
                tbody {
                    @for job in rows {
                        tr {
                            td { a.job href=(url(&format!("/jobs/{}", job.id))) { (job.id) } }
                            td { (state_badge(job.state, false)) }
                            td { (job.queue) }
                            td { (job.worker) }
                            td { code { (preview(&job.args)) } }
                            td.n { (job.attempt) "/" (job.max_attempts) }
                            td { (time_el(job.inserted_at)) }
                            td { (time_el(job.scheduled_at)) }
                        }
                    }
                }
            }
        }
        @if newest.is_some() || older.is_some() {
            p {
                @if let Some(newest) = &newest { a #newest href=(newest) { "newest" } }
                @if newest.is_some() && older.is_some() { " · " }
                @if let Some(older) = &older { a #older href=(older) { "older" } }
            }
        }
    };
    layout("Jobs", Nav::Jobs, who, body)
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
