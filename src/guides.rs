//! Guides: how to use jobsmith, one topic per module. Every example in them is compiled, and most
//! run, as doctests against an in-memory SQLite database.
//!
//! Start with [`getting_started`].

#[doc = include_str!("../docs/guides/getting-started.md")]
pub mod getting_started {}

#[doc = include_str!("../docs/guides/defining-jobs.md")]
pub mod defining_jobs {}

#[doc = include_str!("../docs/guides/inserting.md")]
pub mod inserting {}

#[doc = include_str!("../docs/guides/queues.md")]
pub mod queues {}

#[doc = include_str!("../docs/guides/flow-control.md")]
pub mod flow_control {}

#[doc = include_str!("../docs/guides/errors-and-retries.md")]
pub mod errors_and_retries {}

#[doc = include_str!("../docs/guides/cron.md")]
pub mod cron {}

#[doc = include_str!("../docs/guides/many-nodes.md")]
pub mod many_nodes {}

#[doc = include_str!("../docs/guides/sqlite-vs-postgres.md")]
pub mod sqlite_vs_postgres {}

#[doc = include_str!("../docs/guides/jobs-and-your-application.md")]
pub mod jobs_and_your_application {}

#[doc = include_str!("../docs/guides/results-and-waiting.md")]
pub mod results_and_waiting {}

#[doc = include_str!("../docs/guides/testing.md")]
pub mod testing {}

#[doc = include_str!("../docs/guides/observability.md")]
pub mod observability {}

#[doc = include_str!("../docs/guides/coming-from-oban.md")]
pub mod coming_from_oban {}
