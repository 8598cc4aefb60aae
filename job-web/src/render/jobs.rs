//! The job list with its filter form.

use axum::response::Html;
use jobsmith_runtime::{JobRow, JobState};
use maud::{Markup, html};

use super::{Nav, jobs_url, notice_with_count, page as layout, state_badge, time_el, url};
use crate::auth::Principal;
use crate::routes::jobs::{ARGS_SEARCH_WINDOW, Bulk, BulkForm, DEFAULT_LIMIT, Listing};

/// How much of the args a row shows.
const ARGS_PREVIEW_CHARS: usize = 120;

pub(crate) fn page(
    who: &Principal,
    listing: &Listing,
    rows: &[JobRow],
    done: Option<&str>,
    n: Option<u64>,
) -> Html<String> {
    let f = &listing.filter;
    let (queue, worker, tag, search) = (
        f.queue.as_deref().unwrap_or(""),
        f.worker.as_deref().unwrap_or(""),
        f.tag.as_deref().unwrap_or(""),
        f.search.as_deref().unwrap_or(""),
    );
    let state = listing.state.map(JobState::as_str).unwrap_or("");
    let arg = listing.arg_text.as_deref().unwrap_or("");
    let filter_fields =
        [("state", state), ("queue", queue), ("worker", worker), ("tag", tag), ("q", search), ("arg", arg)];
    // Bulk actions on the whole filter need a typed match: free text cannot be one.
    let filter_selectable = listing.job_match().is_some();
    // Keyset paging: "older" continues below the last id shown, with the same filters.
    let newest = listing.page.before_id.is_some().then(|| jobs_url(&filter_fields));
    // A full page continues below its last row; an args field search that looked through its
    // window of ids without filling the page continues below the window.
    let continue_below = match (rows.last(), listing.searched_from) {
        (Some(last), _) if rows.len() as u32 >= listing.page.limit => Some(last.id),
        (_, Some(floor)) if floor > 1 => Some(floor),
        _ => None,
    };
    let older = continue_below.map(|below| {
        let before = below.to_string();
        let limit = listing.page.limit.to_string();
        jobs_url(&[
            ("state", state),
            ("queue", queue),
            ("worker", worker),
            ("tag", tag),
            ("q", search),
            ("arg", arg),
            ("before_id", &before),
            ("limit", if listing.page.limit == DEFAULT_LIMIT { "" } else { &limit }),
        ])
    });
    let body = html! {
        h1 { "Jobs" }
        (notice_with_count(done, n))
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
                ("arg", "Args field (field = value)", arg),
            ] {
                label { (label) " " input type="text" name=(name) value=(value); }
            }
            button type="submit" id="filter" { "Filter" }
            " "
            a href=(url("/jobs")) { "clear" }
        }
        @if rows.is_empty() {
            p.muted { "No jobs match." }
        } @else if who.can_act() {
            form #bulk method="post" action=(url("/jobs/bulk")) {
                (super::csrf_field(who))
                @for (name, value) in filter_fields {
                    @if !value.is_empty() { input type="hidden" name=(name) value=(value); }
                }
                p.filters #bulk-bar {
                    label {
                        "Bulk action on "
                        select name="scope" {
                            option value="checked" { "the ticked jobs" }
                            @if filter_selectable {
                                option value="filter" { "every job the filter selects" }
                            }
                        }
                    }
                    button type="submit" name="action" value="retry" id="bulk-retry" { "Retry…" }
                    button type="submit" name="action" value="cancel" id="bulk-cancel" { "Cancel…" }
                    button.danger type="submit" name="action" value="delete" id="bulk-delete" { "Delete…" }
                    span.muted { "Each asks to confirm, with the number of jobs." }
                }
                (table(rows, true))
            }
        } @else {
            (table(rows, false))
        }
        @if let Some(floor) = listing.searched_from {
            p.muted #args-window {
                "An args field has no index, so each page looks through " (ARGS_SEARCH_WINDOW) " ids: this one from "
                (floor) " up. " @if floor > 1 { "\"older\" looks further back." }
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

/// The list's rows, with a tick box each when `ticks` (bulk actions).
fn table(rows: &[JobRow], ticks: bool) -> Markup {
    html! {
        table #jobs data-live {
            thead {
                tr {
                    @if ticks { th { span.muted { "tick" } } }
                    th { "Id" } th { "State" } th { "Queue" } th { "Worker" } th { "Args" }
                    th { "Attempt" } th { "Inserted" } th { "Scheduled" }
                }
            }
            tbody {
                @for job in rows {
                    tr {
                        @if ticks {
                            td { input type="checkbox" name="id" value=(job.id) aria-label={ "Tick job " (job.id) }; }
                        }
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
}

/// The confirmation of a bulk action: what it does to how many jobs, and the same form again
/// with `confirm=yes`.
pub(crate) fn confirm_bulk(who: &Principal, form: &BulkForm, action: Bulk, count: u64) -> Html<String> {
    let l = &form.list;
    let filter: Vec<(&str, String)> = [
        ("state", &l.state),
        ("queue", &l.queue),
        ("worker", &l.worker),
        ("tag", &l.tag),
        ("q", &l.q),
        ("arg", &l.arg),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.clone().filter(|v| !v.trim().is_empty()).map(|v| (name, v)))
    .collect();
    let back: Vec<(&str, &str)> = filter.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let verb = match action {
        Bulk::Retry => "Retry",
        Bulk::Cancel => "Cancel",
        Bulk::Delete => "Delete",
    };
    let states: Vec<&str> = action.states().iter().map(|s| s.as_str()).collect();
    let body = html! {
        h1 { (verb) " " (count) " job" @if count != 1 { "s" } "?" }
        p #bulk-summary {
            @if form.scope == "checked" {
                "Of the " (form.ids.len()) " ticked jobs, " (count) " can be changed (" (verb.to_lowercase())
                " touches " (states.join(", ")) " jobs)."
            } @else {
                (count) " jobs match the filter"
                @for (name, value) in &filter { " " code { (name) "=" (value) } }
                " among " (states.join(", ")) " jobs. Jobs that match by the time you confirm are the ones changed."
            }
        }
        @if action == Bulk::Delete { p.notice.bad { "Deleted jobs are gone for good." } }
        form method="post" action=(url("/jobs/bulk")) #bulk-confirm {
            (super::csrf_field(who))
            @for (name, value) in &filter { input type="hidden" name=(name) value=(value); }
            @for id in &form.ids { input type="hidden" name="id" value=(id); }
            input type="hidden" name="scope" value=(form.scope);
            input type="hidden" name="action" value=(action.as_str());
            input type="hidden" name="confirm" value="yes";
            button.danger[action == Bulk::Delete] type="submit" id="bulk-confirm-button" disabled[count == 0] {
                (verb) " " (count) " job" @if count != 1 { "s" }
            }
            " "
            a href=(jobs_url(&back)) { "Back to the list" }
        }
    };
    layout("Confirm", Nav::Jobs, who, body)
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
