//! Persisted queue settings under concurrent changes. Each test runs on both engines.

use jobsmith::engine::{Engine, SettingsUpdate};
use jobsmith::prelude::*;
use jobsmith::{QueueSettings, QueueSettingsChange};

use super::jobs::WithDefaults;

/// What the runtime's `*_everywhere` methods, the dashboard and the CLI do with one change.
async fn change(
    engine: &dyn Engine,
    queue: &str,
    change: QueueSettingsChange,
) -> jobsmith::Result<QueueSettings> {
    engine.update_queue_settings(&SettingsUpdate { queue, change, allow_unknown: false }).await
}

conformance! {
    /// Many operators changing one queue at once, each a different field: every change survives.
    /// A read of the whole row followed by a write of it would put back the value another writer
    /// had just replaced. Each round writes new values, so a stale write shows as last round's.
    async fn concurrent_changes_of_different_fields_all_survive(db) {
        db.insert(WithDefaults { to: "x".into() }.on_queue("shared")).await.unwrap();
        for round in 1..=10_u32 {
            let writers: Vec<_> = (0..50)
                .map(|i| {
                    let engine = db.engine().clone();
                    let change_of_field = match i % 3 {
                        0 => QueueSettingsChange { concurrency: Some(Some(round)), ..Default::default() },
                        1 => QueueSettingsChange { global_limit: Some(Some(100 + round)), ..Default::default() },
                        _ => QueueSettingsChange { paused: Some(round % 2 == 0), ..Default::default() },
                    };
                    tokio::spawn(async move { change(&*engine, "shared", change_of_field).await })
                })
                .collect();
            for writer in writers {
                writer.await.unwrap().unwrap();
            }
            let stored = db.engine().queue_settings().await.unwrap();
            let shared = stored.iter().find(|s| s.name == "shared").unwrap();
            assert_eq!(
                (shared.paused, shared.concurrency, shared.global_limit),
                (Some(round % 2 == 0), Some(round), Some(100 + round)),
                "round {round}: a change was lost"
            );
        }
        // Clearing one field leaves the others.
        let after = change(&**db.engine(), "shared", QueueSettingsChange { global_limit: Some(None), ..Default::default() })
            .await
            .unwrap();
        assert_eq!((after.paused, after.concurrency, after.global_limit), (Some(true), Some(10), None));
    }
}
