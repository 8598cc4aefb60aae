//! Wraps any engine so every call gets one tracing span (`jobsmith.engine`, with the operation
//! and the engine's name), instead of each engine instrumenting itself.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Ack, Engine, FetchedJob, JobRow, Signal, StageReport, StateCount};
use crate::error::Result;
use crate::insert::{InsertedJob, NewJob};
use crate::state::JobState;

/// An engine whose calls are traced.
pub struct Instrumented(pub Arc<dyn Engine>);

macro_rules! traced {
    ($self:ident, $op:literal, $call:expr) => {{
        let span = tracing::debug_span!("jobsmith.engine", op = $op, engine = $self.0.name());
        $call.instrument(span).await
    }};
}

#[async_trait]
impl Engine for Instrumented {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    async fn migrate(&self) -> Result<()> {
        traced!(self, "migrate", self.0.migrate())
    }
    async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<InsertedJob>> {
        traced!(self, "insert", self.0.insert(jobs))
    }
    async fn fetch(&self, queue: &str, limit: u32, node: &str) -> Result<Vec<FetchedJob>> {
        traced!(self, "fetch", self.0.fetch(queue, limit, node))
    }
    async fn ack(&self, acks: &[Ack]) -> Result<u64> {
        traced!(self, "ack", self.0.ack(acks))
    }
    async fn stage(&self, limit: u32) -> Result<StageReport> {
        traced!(self, "stage", self.0.stage(limit))
    }
    async fn cancel_job(&self, id: i64) -> Result<Option<JobState>> {
        traced!(self, "cancel_job", self.0.cancel_job(id))
    }
    async fn retry_job(&self, id: i64) -> Result<bool> {
        traced!(self, "retry_job", self.0.retry_job(id))
    }
    async fn get_job(&self, id: i64) -> Result<Option<JobRow>> {
        traced!(self, "get_job", self.0.get_job(id))
    }
    async fn count_by_state(&self) -> Result<Vec<StateCount>> {
        traced!(self, "count_by_state", self.0.count_by_state())
    }
    async fn listen(&self, signals: mpsc::UnboundedSender<Signal>, stop: CancellationToken) {
        self.0.listen(signals, stop).await
    }
}
