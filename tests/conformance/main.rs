//! Integration tests against real databases. The conformance tests run once per engine
//! (`<test>::postgres` and `<test>::sqlite`); a few are specific to one engine.
//!
//! Run them with `bash scripts/test.sh`, which makes sure a PostgreSQL server is there.

#![allow(unreachable_pub)]

#[macro_use]
mod harness;
mod aliases;
mod claims;
mod cluster;
mod cron_entries;
mod insert;
mod job_tx;
mod jobs;
mod listing;
mod partition_rates;
mod partition_weights;
mod partitions;
mod postgres_only;
mod prefetch;
mod probe;
mod query;
mod queue_settings;
mod rate_limits;
mod refusals;
mod results;
mod runtime;
mod sequences;
mod sqlite_only;
mod state;
mod steps;
mod telemetry;
mod testing_helpers;
mod unique;
mod waiting;
mod weights;
