//! The queues overview.

use axum::response::Html;
use jobsmith_runtime::{JobState, QueueSettings};
use maud::{Markup, html};

use super::{Nav, action_button, jobs_url, notice, page as layout};
use crate::auth::Principal;

/// One queue's row.
#[derive(Debug, Clone)]
pub(crate) struct QueueView {
    pub(crate) name: String,
    /// Jobs per state, in [`JobState::ALL`] order.
    pub(crate) counts: [i64; 7],
    pub(crate) settings: QueueSettings,
    /// Live nodes running it.
    pub(crate) nodes: usize,
}

impl QueueView {
    pub(crate) fn new(name: &str) -> Self {
        QueueView {
            name: name.to_string(),
            counts: [0; 7],
            settings: QueueSettings { name: name.to_string(), ..QueueSettings::default() },
            nodes: 0,
        }
    }

    pub(crate) fn add(&mut self, state: JobState, count: i64) {
        if let Some(i) = JobState::ALL.iter().position(|s| *s == state) {
            self.counts[i] += count;
        }
    }
}

pub(crate) fn page(who: &Principal, queues: &[QueueView], done: Option<&str>) -> Html<String> {
    let body = html! {
        h1 { "Queues" }
        (notice(done))
        @if queues.is_empty() {
            p.muted { "No queue has jobs, settings or a live node yet." }
        } @else {
            table #queues data-live {
                thead {
                    tr {
                        th { "Queue" }
                        @for state in JobState::ALL { th { (state) } }
                        th { "Status" } th { "Concurrency" } th { "Global limit" } th { "Rate limit" }
                        th { "Partition limit" } th { "Nodes" }
                        @if who.can_act() { th { "Controls" } }
                    }
                }
                tbody { @for q in queues { (row(who, q)) } }
            }
            p.muted {
                "Pause, resume and scale are stored and reach every node, including nodes started \
                 later. Concurrency is per node."
            }
        }
    };
    layout("Queues", Nav::Queues, who, body)
}

fn row(who: &Principal, q: &QueueView) -> Markup {
    let paused = q.settings.paused == Some(true);
    let or_default = |v: Option<u32>, default: &str| v.map_or(default.to_string(), |v| v.to_string());
    let field = html! { input type="hidden" name="queue" value=(q.name); };
    let current = q.settings.concurrency.map(|c| c.to_string()).unwrap_or_default();
    html! {
        tr data-queue=(q.name) {
            td { a href=(queue_url(&q.name)) { (q.name) } }
            @for (state, count) in JobState::ALL.iter().zip(q.counts) {
                td.n { a href=(jobs_url(&[("queue", &q.name), ("state", state.as_str())])) { (count) } }
            }
            td.status {
                @if paused { span.paused { "paused" } } @else { span { "running" } }
            }
            td.n { (or_default(q.settings.concurrency, "node's own")) }
            td.n { (or_default(q.settings.global_limit, "none")) }
            td.n { (q.settings.rate_limit.map_or("none".to_string(), |r| r.to_string())) }
            td.n { (or_default(q.settings.partition_limit, "none")) }
            td.n { (q.nodes) }
            @if who.can_act() {
                td {
                    @if paused {
                        (action_button(who, "/queues/resume", field.clone(), "Resume", "", None))
                    } @else {
                        (action_button(who, "/queues/pause", field.clone(), "Pause", "", None))
                    }
                    (action_button(who, "/queues/scale", html! {
                        (field)
                        input type="number" name="concurrency" min="1" max="10000" required
                            value=(current) aria-label={ "Concurrency of " (q.name) };
                    }, "Scale", "", None))
                }
            }
        }
    }
}

/// The link to queue `name`'s page.
pub(crate) fn queue_url(name: &str) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("name", name).finish();
    super::url(&format!("/queue?{query}"))
}
