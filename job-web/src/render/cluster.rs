//! The cluster page: throughput chart, nodes, leader.

use axum::response::Html;
use chrono::{DateTime, Utc};
use jobsmith_runtime::{MinuteStats, NodeRow};
use maud::html;

use super::{Nav, page as layout, time_el};
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
    let body = html! {
        h1 { "Cluster" }
        div #cluster-live data-live {
        h2 { "Throughput, last hour" }
        p {
            span #completed-total { (completed) } " completed, "
            span #failed-total { (failed) } " failed attempts."
        }
        (chart::svg(&minutes))
        h2 { "Leader" }
        @match leader {
            Some(name) => p #leader { strong { (name) } " holds the lease." },
            None => p #leader .muted { "No node holds the leader lease." },
        }
        h2 { "Nodes" }
        @if nodes.is_empty() {
            p.muted { "No node has sent a heartbeat in the last minute." }
        } @else {
            table #nodes {
                thead { tr { th { "Node" } th { "Queues" } th { "Started" } th { "Last heartbeat" } th {} } }
                tbody {
                    @for node in nodes {
                        @let age = (now - node.heartbeat_at).num_seconds().max(0);
                        tr {
                            td { (node.name) }
                            td { (node.queues.join(", ")) }
                            td { (time_el(node.started_at)) }
                            td {
                                (time_el(node.heartbeat_at)) " " span.muted { "(" (age) " s ago)" }
                                @if age > LATE_AFTER_SECS { " " span.paused { "late" } }
                            }
                            td { @if Some(node.name.as_str()) == leader { "leader" } }
                        }
                    }
                }
            }
        }
        }
    };
    layout("Cluster", Nav::Cluster, who, body)
}
