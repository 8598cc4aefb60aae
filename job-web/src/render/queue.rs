//! One queue's page: counts by state, settings (with the flow-control ones), the live nodes that
//! run it, its running jobs with how long each has run, partition weights and sequence policies,
//! and its completed and failed jobs per minute.

use axum::response::Html;
use chrono::{DateTime, Utc};
use jobsmith_runtime::{JobRow, JobState, MinuteStats, NodeRow, PartitionWeight, SequenceOverride};
use maud::html;

use super::queues::QueueView;
use super::{Nav, action_button, jobs_url, notice, page as layout, time_el};
use crate::auth::Principal;
use crate::chart;

/// What the page shows of one queue.
pub(crate) struct QueuePage<'a> {
    pub(crate) view: &'a QueueView,
    pub(crate) now: DateTime<Utc>,
    pub(crate) nodes: &'a [NodeRow],
    pub(crate) running: &'a [JobRow],
    pub(crate) weights: &'a [PartitionWeight],
    pub(crate) policies: &'a [SequenceOverride],
    pub(crate) stats: &'a [MinuteStats],
}

pub(crate) fn page(who: &Principal, q: &QueuePage<'_>, done: Option<&str>) -> Html<String> {
    let v = q.view;
    let s = &v.settings;
    let minutes = chart::last_hour(q.now, q.stats);
    let or = |v: Option<u32>, default: &str| v.map_or(default.to_string(), |v| v.to_string());
    let field = html! { input type="hidden" name="queue" value=(v.name); };
    let paused = s.paused == Some(true);
    let body = html! {
        h1 { "Queue " (v.name) }
        (notice(done))
        div #queue-live data-live {
            table #queue-counts {
                thead { tr { @for state in JobState::ALL { th { (state) } } } }
                tbody {
                    tr {
                        @for (state, count) in JobState::ALL.iter().zip(v.counts) {
                            td.n { a href=(jobs_url(&[("queue", &v.name), ("state", state.as_str())])) { (count) } }
                        }
                    }
                }
            }
            h2 { "Settings" }
            table #queue-settings {
                tbody {
                    tr { th { "Status" } td { @if paused { span.paused { "paused" } } @else { "running" } } }
                    tr { th { "Concurrency" } td { (or(s.concurrency, "each node's own")) " per node" } }
                    tr { th { "Global limit" } td { (or(s.global_limit, "none")) } }
                    tr { th { "Rate limit" } td { (s.rate_limit.map_or("none".to_string(), |r| r.to_string())) } }
                    tr { th { "Partition limit" } td { (or(s.partition_limit, "none")) } }
                    tr { th { "Sequenced" } td { (s.sequence.map_or("no".to_string(), |p| p.to_string())) } }
                }
            }
            @if who.can_act() {
                p #queue-actions {
                    @if paused {
                        (action_button(who, "/queues/resume", field.clone(), "Resume", "", None))
                    } @else {
                        (action_button(who, "/queues/pause", field.clone(), "Pause", "", None))
                    }
                }
            }
            h2 { "Nodes running it" }
            @if q.nodes.is_empty() {
                p.muted { "No live node runs this queue." }
            } @else {
                table #queue-nodes {
                    thead { tr { th { "Node" } th { "Running here" } th { "Last heartbeat" } } }
                    tbody {
                        @for n in q.nodes {
                            @let here = q.running.iter().filter(|j| j.attempted_by.as_deref() == Some(n.name.as_str())).count();
                            tr { td { (n.name) } td.n { (here) } td { (time_el(n.heartbeat_at)) } }
                        }
                    }
                }
            }
            h2 { "Running jobs" }
            @if q.running.is_empty() {
                p.muted { "Nothing is running." }
            } @else {
                table #queue-running {
                    thead { tr { th { "Job" } th { "Worker" } th { "Node" } th { "Attempt" } th { "Running for" } } }
                    tbody {
                        @for j in q.running {
                            tr {
                                td { a.job href=(super::url(&format!("/jobs/{}", j.id))) { (j.id) } }
                                td { (j.worker) }
                                td { (j.attempted_by.as_deref().unwrap_or("?")) }
                                td.n { (j.attempt) "/" (j.max_attempts) }
                                td.n {
                                    @match j.attempted_at {
                                        Some(t) => { ((q.now - t).num_seconds().max(0)) " s" }
                                        None => { "?" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !q.weights.is_empty() || !q.policies.is_empty() {
                h2 { "Partitions" }
                table #queue-partitions {
                    thead { tr { th { "Partition" } th { "Weight" } th { "Sequence policy" } } }
                    tbody {
                        @for w in q.weights {
                            tr { td { (w.partition) } td.n { (w.weight) } td { span.muted { "the queue's" } } }
                        }
                        @for p in q.policies.iter().filter(|p| !q.weights.iter().any(|w| w.partition == p.partition)) {
                            tr { td { (p.partition) } td.n { span.muted { "1" } } td { (p.policy) } }
                        }
                    }
                }
            }
            h2 { "Throughput, last hour" }
            (chart::svg(&minutes))
        }
    };
    layout(&format!("Queue {}", v.name), Nav::Queues, who, body)
}
