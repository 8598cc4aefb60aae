//! The job list, the job page, and retry, cancel and delete.

use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use jobsmith_runtime::engine::{JobMatch, QueryOp, QueryOutput};
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
    /// An args field and its value: `appointment_id = 7` (the value as JSON, or else as text).
    pub(crate) arg: Option<String>,
    pub(crate) before_id: Option<String>,
    pub(crate) limit: Option<String>,
    pub(crate) done: Option<String>,
    /// How many jobs a bulk action changed, for its notice.
    pub(crate) n: Option<String>,
}

/// The parsed list query.
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) state: Option<JobState>,
    pub(crate) filter: JobFilter,
    /// The args field filter as typed, and parsed.
    pub(crate) arg_text: Option<String>,
    pub(crate) arg: Option<(String, serde_json::Value)>,
    pub(crate) page: Page,
    /// For an args field search: the lowest id this page looked at (see [`ARGS_SEARCH_WINDOW`]).
    pub(crate) searched_from: Option<i64>,
}

impl Listing {
    /// The filter as a typed query's match, which bulk actions and the args field search use;
    /// `None` when it has free text, which a match cannot express (`q` that is not a job id).
    pub(crate) fn job_match(&self) -> Option<JobMatch> {
        let f = &self.filter;
        let ids = match &f.search {
            None => None,
            Some(text) => Some(vec![text.trim().parse::<i64>().ok()?]),
        };
        Some(JobMatch {
            workers: f.worker.iter().cloned().collect(),
            args: self.arg.iter().cloned().collect(),
            ids,
            states: f.states.clone(),
            queues: f.queue.iter().cloned().collect(),
            tags: f.tag.iter().cloned().collect(),
            ..JobMatch::default()
        })
    }
}

/// `field = value`: the value as JSON when it parses (`7`, `true`, `"7"`), else as text.
fn parse_arg(text: &str) -> Result<(String, serde_json::Value), WebError> {
    JobMatch::parse_field(text).map_err(|why| WebError::BadRequest(format!("The args field search: {why}.")))
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
        let arg_text = non_empty(&self.arg);
        let arg = arg_text.as_deref().map(parse_arg).transpose()?;
        let listing =
            Listing { state, filter, arg_text, arg, page: Page { limit, before_id }, searched_from: None };
        if listing.arg.is_some() && listing.job_match().is_none() {
            return Err(WebError::BadRequest(
                "Search either by args text or by an args field, not both at once.".into(),
            ));
        }
        Ok(listing)
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let mut listing = query.parse()?;
    let rows = match (&listing.arg, listing.job_match()) {
        // An args field: the engine's JSON operators, through the typed query's match, over a
        // window of ids at a time (no index serves a value inside the args, and a rare one would
        // scan every row: 340 ms at 1,000,000 rows on PostgreSQL).
        (Some(_), Some(mut m)) => {
            let top = match listing.page.before_id {
                Some(before) => before,
                None => newest_id(&state).await?.map_or(0, |id| id + 1),
            };
            let floor = (top - ARGS_SEARCH_WINDOW).max(1);
            m.min_id = Some(floor);
            listing.searched_from = Some(floor);
            let page = Page { before_id: Some(top), ..listing.page };
            match state.engine.run_query(&m, QueryOp::List(page)).await? {
                QueryOutput::Rows(rows) => rows,
                other => return Err(WebError::Engine(unexpected(other))),
            }
        }
        _ => state.engine.list_jobs(&listing.filter, listing.page).await?,
    };
    let n = query.n.as_deref().and_then(|n| n.parse().ok());
    Ok(render::jobs::page(&who, &listing, &rows, query.done.as_deref(), n).into_response())
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

/// How many ids an args field search looks through per page (measured: a value no row has takes
/// 340 ms over 1,000,000 rows on PostgreSQL, and a window of this size a tenth of that).
pub(crate) const ARGS_SEARCH_WINDOW: i64 = 100_000;

/// The newest job's id, if there is a job.
async fn newest_id(state: &AppState) -> Result<Option<i64>, WebError> {
    match state
        .engine
        .run_query(&JobMatch::default(), QueryOp::List(Page { limit: 1, before_id: None }))
        .await?
    {
        QueryOutput::Rows(rows) => Ok(rows.first().map(|r| r.id)),
        other => Err(WebError::Engine(unexpected(other))),
    }
}

fn unexpected(output: QueryOutput) -> jobsmith_runtime::Error {
    jobsmith_runtime::Error::Unexpected(format!("a query answered {output:?}"))
}

/// What a bulk action does, and the states it may touch (a count shows how many it will).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bulk {
    Retry,
    Cancel,
    Delete,
}

impl Bulk {
    fn parse(text: &str) -> Result<Self, WebError> {
        match text {
            "retry" => Ok(Bulk::Retry),
            "cancel" => Ok(Bulk::Cancel),
            "delete" => Ok(Bulk::Delete),
            other => Err(WebError::BadRequest(format!("There is no bulk action `{other}`."))),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Bulk::Retry => "retry",
            Bulk::Cancel => "cancel",
            Bulk::Delete => "delete",
        }
    }

    /// The states this action changes (the others it leaves alone).
    pub(crate) fn states(self) -> &'static [JobState] {
        self.op().bulk_states()
    }

    fn op(self) -> QueryOp {
        match self {
            Bulk::Retry => QueryOp::Retry,
            Bulk::Cancel => QueryOp::Cancel,
            Bulk::Delete => QueryOp::Delete,
        }
    }
}

/// The most rows one can tick on a page (the largest page).
const MAX_TICKED: usize = MAX_LIMIT as usize;

/// A bulk action's form: the list's filter (so the filter scope and the way back keep it), the
/// action, the scope (`checked` rows or the whole `filter`), the ticked ids, and `confirm`.
#[derive(Debug, Default)]
pub(crate) struct BulkForm {
    pub(crate) list: ListQuery,
    pub(crate) action: String,
    pub(crate) scope: String,
    pub(crate) ids: Vec<i64>,
    pub(crate) confirm: bool,
}

impl BulkForm {
    fn from_body(body: &[u8]) -> Result<Self, WebError> {
        let mut form = BulkForm::default();
        for (name, value) in form_urlencoded::parse(body) {
            let value = value.into_owned();
            let l = &mut form.list;
            match name.as_ref() {
                "state" => l.state = Some(value),
                "queue" => l.queue = Some(value),
                "worker" => l.worker = Some(value),
                "tag" => l.tag = Some(value),
                "q" => l.q = Some(value),
                "arg" => l.arg = Some(value),
                "action" => form.action = value,
                "scope" => form.scope = value,
                "confirm" => form.confirm = value == "yes",
                "id" => form.ids.push(
                    value.parse().map_err(|_| WebError::BadRequest(format!("`{value}` is not a job id.")))?,
                ),
                _ => {}
            }
        }
        if form.ids.len() > MAX_TICKED {
            return Err(WebError::BadRequest(format!("At most {MAX_TICKED} ticked jobs at once.")));
        }
        Ok(form)
    }
}

/// Retry, cancel or delete the ticked jobs or every job the filter selects: first a page that
/// says how many jobs it will touch and asks to confirm, then (with `confirm=yes`) the action,
/// back to the list with the number done. Free-text search cannot select for a bulk action (a
/// typed match cannot express it); ticked rows always can.
pub(crate) async fn bulk(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Response, WebError> {
    let form = BulkForm::from_body(&body)?;
    let action = Bulk::parse(&form.action)?;
    let listing = form.list.parse()?;
    let mut m = match form.scope.as_str() {
        "checked" => {
            if form.ids.is_empty() {
                return Err(WebError::BadRequest("Tick the jobs first, or choose every job the filter selects.".into()));
            }
            JobMatch { ids: Some(form.ids.clone()), ..JobMatch::default() }
        }
        "filter" => listing.job_match().ok_or_else(|| {
            WebError::BadRequest(
                "A free-text search cannot select jobs for a bulk action: filter by state, queue, worker, tag or \
                 an args field, or tick the rows."
                    .into(),
            )
        })?,
        other => return Err(WebError::BadRequest(format!("There is no scope `{other}`."))),
    };
    // The filter's states the action may change. None of them (a cancel of completed jobs, say)
    // is nothing to do: an empty list would mean "any state" to the query.
    m.states = m.states_within(action.states());
    let nothing = m.states.is_empty();
    if !form.confirm {
        let count = if nothing {
            0
        } else {
            match state.engine.run_query(&m, QueryOp::Count).await? {
                QueryOutput::Count(n) => n,
                other => return Err(WebError::Engine(unexpected(other))),
            }
        };
        return Ok(render::jobs::confirm_bulk(&who, &form, action, count).into_response());
    }
    let done = if nothing {
        0
    } else {
        match state.engine.run_query(&m, action.op()).await? {
            QueryOutput::Count(n) => n,
            other => return Err(WebError::Engine(unexpected(other))),
        }
    };
    let n = done.to_string();
    let l = &form.list;
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let back = render::jobs_path(&[
        ("state", &v(&l.state)),
        ("queue", &v(&l.queue)),
        ("worker", &v(&l.worker)),
        ("tag", &v(&l.tag)),
        ("q", &v(&l.q)),
        ("arg", &v(&l.arg)),
        ("done", &format!("bulk-{}", action.as_str())),
        ("n", &n),
    ]);
    Ok(render::see_other(&back))
}
