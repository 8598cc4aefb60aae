//! `jobsmith queue pause|resume|scale|rate-limit|partition-limit|sequence|partition-weight(s)|
//! sequence-polic(y|ies)`:
//! cluster-wide queue settings.

use jobsmith::QueueSettingsChange;
use jobsmith::engine::{Engine, SettingsUpdate};
use serde_json::json;

use crate::args::QueueCommand;
use crate::error::Failure;
use crate::output;

/// Changes one queue's persisted settings; the engine tells running nodes, and nodes started
/// later read them at start.
pub(crate) async fn run(engine: &dyn Engine, command: QueueCommand, json: bool) -> Result<(), Failure> {
    let command = match command {
        QueueCommand::PartitionWeight { queue, partition, weight } => {
            engine.set_partition_weight(&queue, &partition, weight.0).await?;
            if json {
                output::print_json(&json!({"queue": queue, "partition": partition, "weight": weight.0}));
            } else {
                match weight.0 {
                    Some(w) => println!("partition `{partition}` of queue `{queue}` has weight {w}"),
                    None => println!("partition `{partition}` of queue `{queue}` has no weight (1)"),
                }
            }
            return Ok(());
        }
        QueueCommand::PartitionWeights { queue } => {
            let weights = engine.partition_weights(queue.as_deref()).await?;
            if json {
                output::print_json(&json!(weights));
            } else {
                let mut table = output::Table::new(["QUEUE", "PARTITION", "WEIGHT"]);
                for w in &weights {
                    table.row(vec![w.queue.clone(), w.partition.clone(), w.weight.to_string()]);
                }
                print!("{}", table.render());
            }
            return Ok(());
        }
        QueueCommand::SequencePolicy { queue, partition, policy } => {
            engine.set_sequence_policy(&queue, &partition, policy.0).await?;
            if json {
                output::print_json(&json!({"queue": queue, "partition": partition, "policy": policy.0}));
            } else {
                match policy.0 {
                    Some(p) => println!("sequence `{partition}` of queue `{queue}` has policy {p}"),
                    None => println!("sequence `{partition}` of queue `{queue}` follows the queue's policy"),
                }
            }
            return Ok(());
        }
        QueueCommand::SequencePolicies { queue } => {
            let policies = engine.sequence_policies(queue.as_deref()).await?;
            if json {
                output::print_json(&json!(policies));
            } else {
                let mut table = output::Table::new(["QUEUE", "SEQUENCE", "POLICY"]);
                for p in &policies {
                    table.row(vec![p.queue.clone(), p.partition.clone(), p.policy.to_string()]);
                }
                print!("{}", table.render());
            }
            return Ok(());
        }
        other => other,
    };
    let no_change = QueueSettingsChange::default();
    let (queue, create, change, done) = match command {
        QueueCommand::Pause { queue, create } => (
            queue,
            create,
            QueueSettingsChange { paused: Some(true), ..no_change },
            "paused on every node".to_string(),
        ),
        QueueCommand::Resume { queue, create } => (
            queue,
            create,
            QueueSettingsChange { paused: Some(false), ..no_change },
            "resumed on every node".to_string(),
        ),
        QueueCommand::Scale { queue, concurrency, create } => (
            queue,
            create,
            QueueSettingsChange { concurrency: Some(Some(concurrency)), ..no_change },
            format!("runs up to {concurrency} jobs at once on each node"),
        ),
        QueueCommand::RateLimit { queue, rate, create } => (
            queue,
            create,
            QueueSettingsChange { rate_limit: Some(rate.0), ..no_change },
            match rate.0 {
                Some(rate) => format!("starts at most {rate} across all nodes"),
                None => "has no rate limit".to_string(),
            },
        ),
        QueueCommand::PartitionLimit { queue, limit, create } => (
            queue,
            create,
            QueueSettingsChange { partition_limit: Some(limit.0), ..no_change },
            match limit.0 {
                Some(n) => format!(
                    "runs at most {n} jobs of one partition at once across all nodes, partitions in turn"
                ),
                None => "has no partition limit".to_string(),
            },
        ),
        QueueCommand::Sequence { queue, policy, create } => (
            queue,
            create,
            QueueSettingsChange { sequence: Some(policy.0), ..no_change },
            match policy.0 {
                Some(p) => {
                    format!("runs each partition as a sequence, one job at a time in order (on discard: {p})")
                }
                None => "is not sequenced".to_string(),
            },
        ),
        QueueCommand::PartitionWeight { .. }
        | QueueCommand::PartitionWeights { .. }
        | QueueCommand::SequencePolicy { .. }
        | QueueCommand::SequencePolicies { .. } => {
            unreachable!("answered above")
        }
    };
    // Only this field is written, in one statement: settings this command does not touch (the
    // global limit, say) stay as stored, even if another operator changes them at the same time.
    let settings = match engine
        .update_queue_settings(&SettingsUpdate { queue: &queue, change, allow_unknown: create })
        .await
    {
        Ok(settings) => settings,
        Err(jobsmith::Error::UnknownQueue(queue)) => {
            return Err(Failure::new(format!(
                "queue `{queue}` is not run by any node and has no jobs or stored settings (a typo?); \
                 pass --create to store settings for a queue that nodes will run later"
            )));
        }
        Err(e) => return Err(e.into()),
    };

    if json {
        output::print_json(&json!({
            "queue": settings.name,
            "paused": settings.paused.unwrap_or(false),
            "concurrency": settings.concurrency,
            "global_limit": settings.global_limit,
            "rate_limit": settings.rate_limit.map(|r| json!({"limit": r.limit, "window_ms": r.window_ms(), "per_partition": r.per_partition})),
            "partition_limit": settings.partition_limit,
            "sequence": settings.sequence.map(|p| p.as_str()),
        }));
    } else {
        println!("queue `{}` {done}", settings.name);
    }
    Ok(())
}
