//! Integration tests against a real PostgreSQL. Each test gets a database of its own.
//!
//! Run them with `bash scripts/test.sh`, which makes sure a server is there.

#![allow(unreachable_pub)]

mod harness;
mod insert;
mod jobs;
mod probe;
mod runtime;
mod schema;
mod unique;
