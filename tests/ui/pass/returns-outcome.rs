//! A job fn that returns `Result<Outcome, E>` to choose how it ends.
#![deny(warnings)]

use std::time::Duration;

use jobsmith::{JobContext, Outcome, job};

#[job(queue = "net")]
pub(crate) async fn poll_feed(ctx: JobContext, url: String) -> Result<Outcome, String> {
    let _ = (ctx, url);
    Ok(Outcome::Snooze(Duration::from_secs(60)))
}

fn main() {
    let _ = PollFeed { url: String::new() };
}
