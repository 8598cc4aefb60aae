//! The cluster page: throughput chart, nodes, leader.

use std::fmt::Write as _;

use axum::response::Html;
use chrono::{DateTime, Utc};
use jobsmith_runtime::{MinuteStats, NodeRow};

use super::{Nav, esc, page as layout, time_el};
use crate::auth::Principal;
use crate::chart;

/// A heartbeat older than this is shown as late: the runtime's default node TTL is 10 s and
/// nodes beat every second.
const LATE_AFTER_SECS: i64 = 10;

pub(crate) fn page(
    who: &Principal,
    now: DateTime<Utc>,
    stats: &[MinuteStats],
    nodes: &[NodeRow],
    leader: Option<&str>,
) -> Html<String> {
    let minutes = chart::last_hour(now, stats);
    let completed: i64 = minutes.iter().map(|m| m.completed).sum();
    let failed: i64 = minutes.iter().map(|m| m.failed).sum();
    let mut b = String::from("<h1>Cluster</h1><h2>Throughput, last hour</h2>");
    let _ = write!(
        b,
        "<p><span id=\"completed-total\">{completed}</span> completed, <span id=\"failed-total\">{failed}</span> \
         failed attempts.</p>"
    );
    b.push_str(&chart::svg(&minutes));

    b.push_str("<h2>Leader</h2>");
    match leader {
        Some(name) => {
            let _ = write!(b, "<p id=\"leader\"><strong>{}</strong> holds the lease.</p>", esc(name));
        }
        None => b.push_str("<p id=\"leader\" class=\"muted\">No node holds the leader lease.</p>"),
    }

    b.push_str("<h2>Nodes</h2>");
    if nodes.is_empty() {
        b.push_str("<p class=\"muted\">No node has sent a heartbeat in the last minute.</p>");
    } else {
        b.push_str(
            "<table id=\"nodes\"><thead><tr><th>Node</th><th>Queues</th><th>Started</th><th>Last heartbeat</th>\
             <th></th></tr></thead><tbody>",
        );
        for node in nodes {
            let age = (now - node.heartbeat_at).num_seconds().max(0);
            let late = if age > LATE_AFTER_SECS { " <span class=\"paused\">late</span>" } else { "" };
            let is_leader = if Some(node.name.as_str()) == leader { "leader" } else { "" };
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} <span class=\"muted\">({age} s ago)</span>{late}</td>\
                 <td>{is_leader}</td></tr>",
                esc(&node.name),
                esc(&node.queues.join(", ")),
                time_el(node.started_at),
                time_el(node.heartbeat_at),
            );
        }
        b.push_str("</tbody></table>");
    }
    layout("Cluster", Nav::Cluster, who, &b)
}
