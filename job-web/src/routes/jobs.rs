//! The job list, the job page, and retry, cancel and delete.

use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use jobsmith_runtime::{JobFilter, JobState, Page, preview};
use serde::Deserialize;

use crate::auth::Principal;
use crate::render;
use crate::routes::{AppState, WebError, non_empty};

/// Rows per page unless `limit` says otherwise, and the most it may say.
pub(crate) const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

/// The job list's query: filters (blank means any), the page, and a notice.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    pub(crate) state: Option<String>,
    pub(crate) queue: Option<String>,
    pub(crate) worker: Option<String>,
    pub(crate) tag: Option<String>,
    /// A job id, or text in the args.
    pub(crate) q: Option<String>,
    pub(crate) before_id: Option<String>,
    pub(crate) limit: Option<String>,
    pub(crate) done: Option<String>,
}

/// The parsed list query.
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) state: Option<JobState>,
    pub(crate) filter: JobFilter,
    pub(crate) page: Page,
}

impl ListQuery {
    fn parse(&self) -> Result<Listing, WebError> {
        let state = non_empty(&self.state)
            .map(|s| s.parse::<JobState>().map_err(WebError::BadRequest))
            .transpose()?;
        let before_id = non_empty(&self.before_id)
            .map(|s| s.parse::<i64>().map_err(|_| WebError::BadRequest("before_id must be a job id.".into())))
            .transpose()?;
        let limit = non_empty(&self.limit)
            .map(|s| s.parse::<u32>().map_err(|_| WebError::BadRequest("limit must be a number.".into())))
            .transpose()?
            .unwrap_or(DEFAULT_LIMIT)
            .clamp(1, MAX_LIMIT);
        let filter = JobFilter {
            states: state.into_iter().collect(),
            queue: non_empty(&self.queue),
            worker: non_empty(&self.worker),
            tag: non_empty(&self.tag),
            search: non_empty(&self.q),
        };
        Ok(Listing { state, filter, page: Page { limit, before_id } })
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let listing = query.parse()?;
    let rows = state.engine.list_jobs(&listing.filter, listing.page).await?;
    Ok(render::jobs::page(&who, &listing, &rows, query.done.as_deref()).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct Done {
    done: Option<String>,
}

/// Job `id`, or the page that says there is none.
async fn find_job(state: &AppState, id: i64) -> Result<jobsmith_runtime::JobRow, WebError> {
    state.engine.get_job(id).await?.ok_or_else(|| WebError::NotFound(format!("There is no job {id}.")))
}

pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<Done>,
) -> Result<Response, WebError> {
    let job = find_job(&state, id).await?;
    let result = state.engine.get_result(id).await?;
    Ok(render::job::page(&who, &job, result.as_ref(), q.done.as_deref()).into_response())
}

/// The whole args of a job as a JSON file (the job page shows only their start when they are
/// large). A download rather than a page: browsers save it instead of rendering megabytes, and
/// nothing in it is ever interpreted as HTML.
pub(crate) async fn args_json(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let job = find_job(&state, id).await?;
    let disposition = format!("attachment; filename=\"job-{id}-args.json\"");
    let headers = [(CONTENT_TYPE, "application/json".to_string()), (CONTENT_DISPOSITION, disposition)];
    Ok((headers, preview::pretty_json(&job.args)).into_response())
}

/// The action forms carry only the CSRF field (checked by the guard) and, for delete, `confirm`.
#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    confirm: Option<String>,
}

pub(crate) async fn retry(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Response, WebError> {
    let done = if state.engine.retry_job(id).await? { "retried" } else { "retry-refused" };
    Ok(render::see_other(&format!("/jobs/{id}?done={done}")))
}

pub(crate) async fn cancel(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Response, WebError> {
    let done = if state.engine.cancel_job(id).await?.is_some() { "cancelled" } else { "cancel-refused" };
    Ok(render::see_other(&format!("/jobs/{id}?done={done}")))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Form(form): Form<ActionForm>,
) -> Result<Response, WebError> {
    // A deleted job is gone for good: the form has a checkbox that must be ticked.
    if form.confirm.as_deref() != Some("yes") {
        return Err(WebError::BadRequest("Tick the box to confirm the deletion.".into()));
    }
    if state.engine.delete_job(id).await? {
        Ok(render::see_other("/jobs?done=deleted"))
    } else {
        Ok(render::see_other(&format!("/jobs/{id}?done=delete-refused")))
    }
}
