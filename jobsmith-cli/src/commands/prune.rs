//! `jobsmith prune`: delete finished jobs past their retention.

use jobsmith::Retention;
use jobsmith::engine::Engine;
use serde_json::json;

use crate::args::PruneArgs;
use crate::duration;
use crate::error::Failure;
use crate::output;

/// Rows deleted per statement: small enough that no statement holds locks for long.
const BATCH: u32 = 10_000;

/// Deletes in batches until a batch comes back short, and prints how many rows went.
pub(crate) async fn run(engine: &dyn Engine, args: &PruneArgs, json: bool) -> Result<(), Failure> {
    let retention = Retention {
        completed: args.completed_older_than,
        cancelled: args.cancelled_older_than,
        discarded: args.discarded_older_than,
    };
    let mut deleted = 0;
    loop {
        let n = engine.prune(&retention, BATCH).await?;
        deleted += n;
        if n < u64::from(BATCH) {
            break;
        }
    }
    if json {
        output::print_json(&json!({ "deleted": deleted }));
    } else {
        println!(
            "deleted {deleted} job{} (kept completed jobs younger than {}, cancelled younger than {}, discarded younger than {})",
            if deleted == 1 { "" } else { "s" },
            duration::format(retention.completed),
            duration::format(retention.cancelled),
            duration::format(retention.discarded),
        );
    }
    Ok(())
}
