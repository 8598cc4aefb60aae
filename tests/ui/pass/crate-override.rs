//! `crate = "..."` makes the generated code name jobsmith through a re-export.
#![deny(warnings)]

mod reexport {
    pub use jobsmith;
}

use reexport::jobsmith::{Job, JobContext};

#[reexport::jobsmith::job(crate = "reexport::jobsmith", queue = "elsewhere", unique)]
pub async fn through_reexport(ctx: JobContext, id: u64) -> Result<(), String> {
    let _ = (ctx, id);
    Ok(())
}

fn main() {
    assert_eq!(ThroughReexport::OPTIONS.queue, "elsewhere");
    let _ = ThroughReexport { id: 1 };
}
