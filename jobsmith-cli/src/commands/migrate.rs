//! `jobsmith migrate`.

use jobsmith::Db;
use serde_json::json;

use crate::error::Failure;
use crate::output;

/// Applies the pending migrations; running it again changes nothing.
pub(crate) async fn run(db: &Db, json: bool) -> Result<(), Failure> {
    db.migrate().await?;
    let engine = db.engine().name();
    if json {
        output::print_json(&json!({ "migrated": true, "engine": engine }));
    } else {
        println!("the {engine} database is migrated");
    }
    Ok(())
}
