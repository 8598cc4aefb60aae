//! `jobsmith status`: queues, nodes, leader.

use std::collections::BTreeMap;
use std::time::Duration;

use jobsmith::engine::Engine;
use jobsmith::{JobState, QueueSettings};
use serde_json::{Map, Value, json};

use crate::error::Failure;
use crate::output::{self, Table};

/// A node counts as live here when it heartbeated within this time. Nodes heartbeat far more
/// often, so a node missing from the list has stopped or lost the database.
const NODE_TTL: Duration = Duration::from_secs(30);

/// One queue's line: job counts per state (in [`JobState::ALL`] order) and persisted settings.
#[derive(Debug, Default)]
struct QueueView {
    counts: [i64; JobState::ALL.len()],
    settings: QueueSettings,
}

/// Prints the status of the cluster.
pub(crate) async fn run(engine: &dyn Engine, json: bool) -> Result<(), Failure> {
    let counts = engine.count_by_state().await?;
    let settings = engine.queue_settings().await?;
    let nodes = engine.live_nodes(NODE_TTL).await?;
    let leader = engine.leader().await?;
    // Heartbeats are stamped with the database's clock: measure their age with the same clock.
    let now = engine.now().await?;

    // A queue shows up if it has jobs, persisted settings, or a live node running it.
    let mut queues: BTreeMap<String, QueueView> = BTreeMap::new();
    for count in counts {
        let slot = JobState::ALL.iter().position(|s| *s == count.state).unwrap_or_default();
        queues.entry(count.queue).or_default().counts[slot] += count.count;
    }
    for s in settings {
        let name = s.name.clone();
        queues.entry(name).or_default().settings = s;
    }
    for queue in nodes.iter().flat_map(|n| &n.queues) {
        queues.entry(queue.clone()).or_default();
    }

    if json {
        let queues: Vec<Value> = queues
            .iter()
            .map(|(name, q)| {
                let counts: Map<String, Value> =
                    JobState::ALL.iter().zip(q.counts).map(|(s, n)| (s.as_str().into(), n.into())).collect();
                json!({
                    "name": name,
                    "paused": q.settings.paused.unwrap_or(false),
                    "concurrency": q.settings.concurrency,
                    "global_limit": q.settings.global_limit,
                    "rate_limit": q.settings.rate_limit.map(|r| json!({"limit": r.limit, "window_ms": r.window_ms(), "per_partition": r.per_partition})),
                    "partition_limit": q.settings.partition_limit,
                    "sequence": q.settings.sequence.map(|p| p.as_str()),
                    "counts": counts,
                    "total": q.counts.iter().sum::<i64>(),
                })
            })
            .collect();
        let nodes: Vec<Value> = nodes
            .iter()
            .map(|n| {
                json!({
                    "name": n.name,
                    "queues": n.queues,
                    "started_at": output::json_time(n.started_at),
                    "heartbeat_at": output::json_time(n.heartbeat_at),
                    "heartbeat_age_seconds": (now - n.heartbeat_at).num_seconds().max(0),
                })
            })
            .collect();
        output::print_json(&json!({
            "engine": engine.name(),
            "queues": queues,
            "nodes": nodes,
            "leader": leader,
        }));
        return Ok(());
    }

    if queues.is_empty() {
        println!("no queues: no jobs, no queue settings, no live nodes");
    } else {
        let mut table = Table::new(
            ["QUEUE", "PAUSED", "CONCURRENCY", "GLOBAL LIMIT", "RATE LIMIT", "PARTITION LIMIT"]
                .into_iter()
                .map(String::from)
                .chain(JobState::ALL.iter().map(|s| s.as_str().to_uppercase())),
        );
        for (name, q) in &queues {
            let mut cells = vec![
                name.clone(),
                if q.settings.paused == Some(true) { "yes" } else { "no" }.to_string(),
                // `-`: no cluster-wide value, each node uses its own configuration.
                q.settings.concurrency.map_or_else(|| "-".into(), |n| n.to_string()),
                q.settings.global_limit.map_or_else(|| "-".into(), |n| n.to_string()),
                q.settings.rate_limit.map_or_else(|| "-".into(), |r| r.to_string()),
                q.settings.partition_limit.map_or_else(|| "-".into(), |n| n.to_string()),
            ];
            cells.extend(q.counts.iter().map(i64::to_string));
            table.row(cells);
        }
        print!("{}", table.render());
    }
    println!();
    if nodes.is_empty() {
        println!("no live nodes (none heartbeated in the last {}s)", NODE_TTL.as_secs());
    } else {
        let mut table = Table::new(["NODE", "QUEUES", "STARTED (UTC)", "LAST HEARTBEAT"]);
        for n in &nodes {
            table.row(vec![
                n.name.clone(),
                n.queues.join(","),
                output::time(n.started_at),
                output::ago(n.heartbeat_at, now),
            ]);
        }
        print!("{}", table.render());
    }
    println!();
    println!("leader: {}", leader.as_deref().unwrap_or("none"));
    Ok(())
}
