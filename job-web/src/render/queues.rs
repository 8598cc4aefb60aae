//! The queues overview.

use std::fmt::Write as _;

use axum::response::Html;
use jobsmith_runtime::{JobState, QueueSettings};

use super::{Nav, action_button, esc, jobs_url, notice, page as layout};
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
    let mut b = String::new();
    b.push_str("<h1>Queues</h1>");
    b.push_str(&notice(done));
    if queues.is_empty() {
        b.push_str("<p class=\"muted\">No queue has jobs, settings or a live node yet.</p>");
        return layout("Queues", Nav::Queues, who, &b);
    }
    b.push_str("<table id=\"queues\"><thead><tr><th>Queue</th>");
    for state in JobState::ALL {
        let _ = write!(b, "<th>{state}</th>");
    }
    b.push_str("<th>Status</th><th>Concurrency</th><th>Global limit</th><th>Rate limit</th><th>Partition limit</th><th>Nodes</th>");
    if who.can_act() {
        b.push_str("<th>Controls</th>");
    }
    b.push_str("</tr></thead><tbody>");
    for q in queues {
        let name = esc(&q.name);
        let _ = write!(
            b,
            "<tr data-queue=\"{name}\"><td><a href=\"{}\">{name}</a></td>",
            esc(&jobs_url(&[("queue", &q.name)]))
        );
        for (state, count) in JobState::ALL.iter().zip(q.counts) {
            let href = jobs_url(&[("queue", &q.name), ("state", state.as_str())]);
            let _ = write!(b, "<td class=\"n\"><a href=\"{}\">{count}</a></td>", esc(&href));
        }
        let paused = q.settings.paused == Some(true);
        let status = if paused { "<span class=\"paused\">paused</span>" } else { "<span>running</span>" };
        let or_default = |v: Option<u32>, default: &str| v.map_or(default.to_string(), |v| v.to_string());
        let _ = write!(
            b,
            "<td class=\"status\">{status}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            or_default(q.settings.concurrency, "node's own"),
            or_default(q.settings.global_limit, "none"),
            q.settings.rate_limit.map_or("none".to_string(), |r| r.to_string()),
            or_default(q.settings.partition_limit, "none"),
            q.nodes
        );
        if who.can_act() {
            let field = format!("<input type=\"hidden\" name=\"queue\" value=\"{name}\">");
            b.push_str("<td>");
            b.push_str(&if paused {
                action_button(who, "/queues/resume", &field, "Resume", "", None)
            } else {
                action_button(who, "/queues/pause", &field, "Pause", "", None)
            });
            let current = q.settings.concurrency.map(|c| c.to_string()).unwrap_or_default();
            let scale_fields = format!(
                "{field}<input type=\"number\" name=\"concurrency\" min=\"1\" max=\"10000\" required \
                 value=\"{current}\" aria-label=\"Concurrency of {name}\">"
            );
            b.push_str(&action_button(who, "/queues/scale", &scale_fields, "Scale", "", None));
            b.push_str("</td>");
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table>");
    b.push_str(
        "<p class=\"muted\">Pause, resume and scale are stored and reach every node, including nodes \
         started later. Concurrency is per node.</p>",
    );
    layout("Queues", Nav::Queues, who, &b)
}
