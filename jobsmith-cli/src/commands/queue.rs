//! `jobsmith queue pause|resume|scale`: cluster-wide queue settings.

use jobsmith::QueueSettings;
use jobsmith::engine::Engine;
use serde_json::json;

use crate::args::QueueCommand;
use crate::error::Failure;
use crate::output;

/// Changes one queue's persisted settings; the engine tells running nodes, and nodes started
/// later read them at start.
pub(crate) async fn run(engine: &dyn Engine, command: QueueCommand, json: bool) -> Result<(), Failure> {
    let (queue, done) = match &command {
        QueueCommand::Pause { queue } => (queue, "paused on every node".to_string()),
        QueueCommand::Resume { queue } => (queue, "resumed on every node".to_string()),
        QueueCommand::Scale { queue, concurrency } => {
            (queue, format!("runs up to {concurrency} jobs at once on each node"))
        }
    };
    // Read-modify-write keeps the settings this command does not touch (e.g. the global limit).
    let mut settings = engine
        .queue_settings()
        .await?
        .into_iter()
        .find(|s| s.name == *queue)
        .unwrap_or_else(|| QueueSettings { name: queue.clone(), ..QueueSettings::default() });
    match command {
        QueueCommand::Pause { .. } => settings.paused = Some(true),
        QueueCommand::Resume { .. } => settings.paused = Some(false),
        QueueCommand::Scale { concurrency, .. } => settings.concurrency = Some(concurrency),
    }
    engine.set_queue_settings(&settings).await?;

    if json {
        output::print_json(&json!({
            "queue": settings.name,
            "paused": settings.paused.unwrap_or(false),
            "concurrency": settings.concurrency,
            "global_limit": settings.global_limit,
        }));
    } else {
        println!("queue `{}` {done}", settings.name);
    }
    Ok(())
}
