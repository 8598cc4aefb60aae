//! Operations only jobsmith's testing helpers use (see [`crate::testing`]). Not part of
//! [`super::Engine`]: nothing but the helpers can reach them, through `Db::test_support`.

use async_trait::async_trait;

use crate::error::Result;
use crate::types::FetchedJob;

/// The testing helpers' operations, implemented by each engine.
#[async_trait]
pub(crate) trait TestSupport: Send + Sync + 'static {
    /// Makes every `scheduled` or `retryable` job of `queue` due now (testing helpers); returns
    /// how many.
    async fn make_due(&self, queue: &str) -> Result<u64>;

    /// Marks these jobs executing by `node` if they are `available`, and returns them (testing
    /// helpers run exactly the jobs they chose).
    async fn claim(&self, ids: &[i64], node: &str) -> Result<Vec<FetchedJob>>;
}
