//! The queues overview and the cluster-wide pause, resume and scale actions.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Extension, Form, Query, State};
use axum::response::{IntoResponse, Response};
use jobsmith_runtime::engine::SettingsUpdate;
use jobsmith_runtime::{JobFilter, JobState, Page, QueueSettingsChange};
use serde::Deserialize;

use crate::auth::Principal;
use crate::render::{self, queues::QueueView};
use crate::routes::{AppState, WebError};

/// Nodes whose heartbeat is younger than this count as running a queue.
pub(crate) const NODE_TTL: Duration = Duration::from_secs(60);

/// The most concurrency the form accepts: a typo of 10000000 should not reach every node.
const MAX_CONCURRENCY: u32 = 10_000;

#[derive(Debug, Deserialize)]
pub(crate) struct Done {
    done: Option<String>,
}

pub(crate) async fn overview(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    let counts = state.engine.count_by_state().await?;
    let settings = state.engine.queue_settings().await?;
    let nodes = state.engine.live_nodes(NODE_TTL).await?;
    // Every queue anyone knows of: with jobs, with settings, or run by a live node.
    let mut queues: BTreeMap<String, QueueView> = BTreeMap::new();
    let names = counts
        .iter()
        .map(|c| c.queue.as_str())
        .chain(settings.iter().map(|s| s.name.as_str()))
        .chain(nodes.iter().flat_map(|n| n.queues.iter().map(String::as_str)));
    for name in names {
        queues.entry(name.to_string()).or_insert_with(|| QueueView::new(name));
    }
    for c in counts {
        if let Some(view) = queues.get_mut(&c.queue) {
            view.add(c.state, c.count);
        }
    }
    for s in settings {
        if let Some(view) = queues.get_mut(&s.name) {
            view.settings = s;
        }
    }
    for n in &nodes {
        for q in &n.queues {
            if let Some(view) = queues.get_mut(q) {
                view.nodes += 1;
            }
        }
    }
    let views: Vec<QueueView> = queues.into_values().collect();
    Ok(render::queues::page(&who, &views, q.done.as_deref()).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct QueueQuery {
    #[serde(default)]
    name: String,
    done: Option<String>,
}

/// The chart's window.
const WINDOW: Duration = Duration::from_secs(3600);

/// How many running jobs the queue page lists.
const RUNNING_SHOWN: u32 = 200;

/// One queue's page (`/queue?name=...`: any queue name fits a query string).
pub(crate) async fn queue_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<QueueQuery>,
) -> Result<Response, WebError> {
    let name = q.name.as_str();
    let mut view = QueueView::new(name);
    let mut known = false;
    for c in state.engine.count_by_state().await?.into_iter().filter(|c| c.queue == name) {
        view.add(c.state, c.count);
        known = true;
    }
    if let Some(s) = state.engine.queue_settings().await?.into_iter().find(|s| s.name == name) {
        view.settings = s;
        known = true;
    }
    let nodes: Vec<_> = state
        .engine
        .live_nodes(NODE_TTL)
        .await?
        .into_iter()
        .filter(|n| n.queues.iter().any(|q| q == name))
        .collect();
    view.nodes = nodes.len();
    if !known && nodes.is_empty() {
        return Err(WebError::NotFound(format!(
            "There is no queue `{name}`: no jobs, settings or live node."
        )));
    }
    let filter = JobFilter {
        states: vec![JobState::Executing],
        queue: Some(name.to_string()),
        ..JobFilter::default()
    };
    let running = state.engine.list_jobs(&filter, Page { limit: RUNNING_SHOWN, before_id: None }).await?;
    let page = render::queue::QueuePage {
        view: &view,
        now: state.engine.now().await?,
        nodes: &nodes,
        running: &running,
        weights: &state.engine.partition_weights(Some(name)).await?,
        policies: &state.engine.sequence_policies(Some(name)).await?,
        stats: &state.engine.throughput(WINDOW, Some(name)).await?,
    };
    Ok(render::queue::page(&who, &page, q.done.as_deref()).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct QueueForm {
    #[serde(default)]
    queue: String,
    concurrency: Option<String>,
}

pub(crate) async fn pause(
    State(state): State<AppState>,
    Form(form): Form<QueueForm>,
) -> Result<Response, WebError> {
    update(&state, &form.queue, QueueSettingsChange { paused: Some(true), ..Default::default() }).await?;
    Ok(render::see_other("/?done=paused"))
}

pub(crate) async fn resume(
    State(state): State<AppState>,
    Form(form): Form<QueueForm>,
) -> Result<Response, WebError> {
    update(&state, &form.queue, QueueSettingsChange { paused: Some(false), ..Default::default() }).await?;
    Ok(render::see_other("/?done=resumed"))
}

pub(crate) async fn scale(
    State(state): State<AppState>,
    Form(form): Form<QueueForm>,
) -> Result<Response, WebError> {
    let concurrency = form
        .concurrency
        .as_deref()
        .map(str::trim)
        .and_then(|c| c.parse::<u32>().ok())
        .filter(|c| (1..=MAX_CONCURRENCY).contains(c))
        .ok_or_else(|| {
            WebError::BadRequest(format!("Concurrency must be a whole number from 1 to {MAX_CONCURRENCY}."))
        })?;
    let change = QueueSettingsChange { concurrency: Some(Some(concurrency)), ..Default::default() };
    update(&state, &form.queue, change).await?;
    Ok(render::see_other("/?done=scaled"))
}

/// Changes the named fields of the queue's persisted settings in one atomic write (which tells
/// every node), so two operators changing different fields at once both keep their change.
/// Only known queues: a typo in a hand-made request must not store a phantom queue, and the
/// dashboard offers no way to create one on purpose (the CLI's `--create` does).
async fn update(state: &AppState, queue: &str, change: QueueSettingsChange) -> Result<(), WebError> {
    let queue = queue.trim();
    if queue.is_empty() {
        return Err(WebError::BadRequest("Which queue? The form names none.".into()));
    }
    match state.engine.update_queue_settings(&SettingsUpdate { queue, change, allow_unknown: false }).await {
        Ok(_) => Ok(()),
        Err(jobsmith_runtime::Error::UnknownQueue(queue)) => Err(WebError::BadRequest(format!(
            "There is no queue `{queue}`: no node runs it, and it has no jobs and no stored settings. The \
             dashboard changes known queues only; to store settings for a queue that nodes will run \
             later, use `jobsmith queue pause|resume|scale {queue} ... --create`."
        ))),
        Err(e) => Err(e.into()),
    }
}
