//! The cron page: every entry with its schedule in words, next and last slot, the last slot's
//! job and its state, and (for full access) run now, pause/resume, edit and remove, and the form
//! that adds or changes a stored entry.

use axum::response::Html;
use jobsmith_runtime::{CronEntryRow, CronListing, CronSource, WorkerRow};
use maud::{Markup, html};

use super::{Nav, action_button, notice, page as layout, state_badge, time_el, url};
use crate::auth::Principal;
use crate::routes::cron::EntryFields;

/// How much of an entry's args its row shows.
const ARGS_PREVIEW_CHARS: usize = 80;

/// The add/edit form's values.
#[derive(Debug, Clone, Default)]
pub(crate) struct EntryForm {
    pub(crate) name: String,
    pub(crate) expr: String,
    pub(crate) timezone: String,
    pub(crate) worker: String,
    pub(crate) args: String,
    pub(crate) missed: String,
    /// Changing a stored entry (its name is fixed) rather than adding one.
    pub(crate) editing: bool,
}

impl EntryForm {
    /// Filled from a stored entry, to change it.
    pub(crate) fn of(entry: &CronEntryRow) -> Self {
        EntryForm {
            name: entry.name.clone(),
            expr: entry.expr.clone(),
            timezone: entry.timezone.clone(),
            worker: entry.job.worker.clone(),
            args: entry.job.args.to_string(),
            missed: entry.missed.clone(),
            editing: true,
        }
    }

    /// As the user typed it, to show again with the reason it was refused.
    pub(crate) fn from_fields(fields: &EntryFields) -> Self {
        EntryForm {
            name: fields.name.clone(),
            expr: fields.expr.clone(),
            timezone: fields.timezone.clone(),
            worker: fields.worker.clone(),
            args: fields.args.clone(),
            missed: fields.missed.clone(),
            editing: fields.mode == "edit",
        }
    }
}

pub(crate) fn page(
    who: &Principal,
    listed: &[CronListing],
    workers: &[WorkerRow],
    form: &EntryForm,
    done: Option<&str>,
    refused: Option<&str>,
) -> Html<String> {
    let body = html! {
        h1 { "Cron" }
        (notice(done))
        @if let Some(why) = refused {
            div.notice.bad role="alert" id="cron-refused" { (why) }
        }
        @if listed.is_empty() {
            p.muted { "No cron entry: none in the leader's code, and none stored." }
        } @else {
            table #cron data-live {
                thead {
                    tr {
                        th { "Entry" } th { "Schedule" } th { "Time zone" } th { "Next slot" } th { "Last slot" }
                        th { "Last job" } th { "Status" } th { "Job" }
                        @if who.can_act() { th { "Controls" } }
                    }
                }
                tbody { @for l in listed { (row(who, l)) } }
            }
        }
        p.muted {
            "Entries marked " strong { "code" } " are defined in the leader's code: they can be paused, \
             resumed and run now here, and changed only in code. Stored entries are read by the leader \
             every second. A paused entry's slots pass without jobs and are not caught up."
        }
        @if who.can_act() { (entry_form(who, workers, form)) }
    };
    layout("Cron", Nav::Cron, who, body)
}

fn row(who: &Principal, l: &CronListing) -> Markup {
    let e = &l.entry;
    let name = html! { input type="hidden" name="name" value=(e.name); };
    let args = e.job.args.to_string();
    let args = match args.char_indices().nth(ARGS_PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &args[..cut]),
        None => args,
    };
    html! {
        tr data-cron=(e.name) {
            td {
                strong { (e.name) }
                @if e.source == CronSource::Code {
                    " " span.state title="Defined in the leader's code: change it there" { "code" }
                }
            }
            td { code { (e.expr) } br; span.muted { (l.description) } }
            td { (e.timezone) }
            td { @match l.next_slot { Some(t) => (time_el(t)), None => span.muted { "none" } } }
            td { @match e.last_slot { Some(t) => (time_el(t)), None => span.muted { "never" } } }
            td {
                @match e.last_job {
                    Some((id, state)) => {
                        a href=(url(&format!("/jobs/{id}"))) { (id) } " "
                        @match state { Some(s) => (state_badge(s, false)), None => span.muted { "pruned" } }
                    }
                    None => span.muted { "none yet" },
                }
            }
            td.status {
                @if let Some(error) = &e.error {
                    span.paused title=(error) { "cannot run" } br; span.muted { (error) }
                } @else if e.paused {
                    span.paused { "paused" }
                } @else {
                    span { "enabled" }
                }
            }
            td { (e.job.worker) " on " (e.job.queue) br; code { (args) } }
            @if who.can_act() {
                td {
                    (action_button(who, "/cron/run", name.clone(), "Run now", "", None))
                    @if e.paused {
                        (action_button(who, "/cron/resume", name.clone(), "Resume", "", None))
                    } @else {
                        (action_button(who, "/cron/pause", name.clone(), "Pause", "", None))
                    }
                    @if e.source == CronSource::Database {
                        a href=(url(&format!("/cron?edit={}", form_urlencoded::byte_serialize(e.name.as_bytes()).collect::<String>()))) { "Edit" }
                        " "
                        (action_button(who, "/cron/remove", html! {
                            (name)
                            label { input type="checkbox" name="confirm" value="yes" required; " sure" }
                        }, "Remove", "danger", None))
                    }
                }
            }
        }
    }
}

fn entry_form(who: &Principal, workers: &[WorkerRow], form: &EntryForm) -> Markup {
    let missed_options = [("run-once", "run the newest missed slot once"), ("skip", "skip missed slots")];
    html! {
        h2 { @if form.editing { "Change " (form.name) } @else { "Add a stored entry" } }
        @if workers.is_empty() {
            p.muted { "No leader has published its job types yet: an entry can be added once a node runs." }
        }
        {
            form.filters method="post" action=(url("/cron/save")) id="cron-form" {
                (super::csrf_field(who))
                input type="hidden" name="mode" value=(if form.editing { "edit" } else { "add" });
                label {
                    "Name "
                    @if form.editing {
                        input type="text" name="name" value=(form.name) readonly;
                    } @else {
                        input type="text" name="name" value=(form.name) required;
                    }
                }
                label { "Expression " input type="text" name="expr" value=(form.expr) placeholder="0 2 * * *" required; }
                label { "Time zone " input type="text" name="timezone" value=(form.timezone) placeholder="UTC"; }
                label {
                    "Job type "
                    @if workers.is_empty() {
                        input type="text" name="worker" value=(form.worker) required;
                    } @else {
                        select name="worker" required {
                            @for w in workers {
                                option value=(w.name) selected[w.name == form.worker] { (w.name) " (" (w.queue) ")" }
                            }
                        }
                    }
                }
                label { "Args (JSON) " input type="text" name="args" value=(form.args) placeholder="{}" size="40"; }
                label {
                    "Missed slots "
                    select name="missed" {
                        @for (value, text) in missed_options {
                            option value=(value) selected[form.missed == value] { (text) }
                        }
                        @if form.missed.starts_with("run-all") {
                            option value=(form.missed) selected { (form.missed) }
                        }
                    }
                }
                button type="submit" id="cron-save" { @if form.editing { "Save" } @else { "Add" } }
                @if form.editing { " " a href=(url("/cron")) { "cancel" } }
            }
        }
    }
}
