//! Throughput over the last hour, the live nodes and the leader.

use std::time::Duration;

use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};

use crate::auth::Principal;
use crate::render;
use crate::routes::queues::NODE_TTL;
use crate::routes::{AppState, WebError};

/// The chart's window.
const WINDOW: Duration = Duration::from_secs(3600);

pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, WebError> {
    let now = state.engine.now().await?;
    let stats = state.engine.throughput(WINDOW, None).await?;
    let nodes = state.engine.live_nodes(NODE_TTL).await?;
    let leader = state.engine.leader().await?;
    Ok(render::cluster::page(&who, now, &stats, &nodes, leader.as_deref()).into_response())
}
