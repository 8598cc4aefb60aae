//! The cron page and its actions: add, edit, pause, resume, run now and remove (ADR 30).

use axum::extract::{Extension, Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jobsmith_runtime::{CronAdmin, CronEntrySpec, CronSource, MissedSlots};
use serde::Deserialize;

use crate::auth::Principal;
use crate::render::{self, cron::EntryForm};
use crate::routes::{AppState, WebError, non_empty};

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    done: Option<String>,
    /// The stored entry whose values fill the form, to change it.
    edit: Option<String>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let cron = CronAdmin::new(state.engine.as_ref());
    let listed = cron.list().await?;
    let form = match non_empty(&q.edit) {
        Some(name) => {
            let entry = listed
                .iter()
                .find(|l| l.entry.name == name && l.entry.source == CronSource::Database)
                .ok_or_else(|| {
                    WebError::NotFound(format!("There is no stored cron entry `{name}` to edit."))
                })?;
            EntryForm::of(&entry.entry)
        }
        None => EntryForm::default(),
    };
    let workers = state.engine.workers().await?;
    Ok(render::cron::page(&who, &listed, &workers, &form, q.done.as_deref(), None).into_response())
}

/// The add and edit form as posted (every field text, as typed).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EntryFields {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) expr: String,
    #[serde(default)]
    pub(crate) timezone: String,
    #[serde(default)]
    pub(crate) worker: String,
    #[serde(default)]
    pub(crate) args: String,
    #[serde(default)]
    pub(crate) missed: String,
    /// `add` or `edit`.
    #[serde(default)]
    pub(crate) mode: String,
}

impl EntryFields {
    fn spec(&self) -> Result<CronEntrySpec, String> {
        let args = if self.args.trim().is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(&self.args).map_err(|e| format!("The args are not JSON: {e}"))?
        };
        let missed = match self.missed.trim() {
            "" => None,
            text => Some(text.parse::<MissedSlots>().map_err(|e| e.to_string())?),
        };
        let timezone = Some(self.timezone.trim()).filter(|t| !t.is_empty()).map(str::to_owned);
        Ok(CronEntrySpec {
            name: self.name.trim().to_string(),
            expr: self.expr.trim().to_string(),
            timezone,
            missed,
            worker: self.worker.trim().to_string(),
            args,
            ..CronEntrySpec::default()
        })
    }
}

/// Adds (`mode=add`, refused for a taken name) or changes (`mode=edit`) a stored entry. A
/// refusal shows the page again with the form as typed and the reason, so nothing typed is lost.
pub(crate) async fn save(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Form(fields): Form<EntryFields>,
) -> Result<Response, WebError> {
    let cron = CronAdmin::new(state.engine.as_ref());
    let editing = fields.mode == "edit";
    let listed = cron.list().await?;
    let taken = listed.iter().find(|l| l.entry.name == fields.name.trim());
    let refusal = match (editing, taken) {
        (false, Some(_)) => Some(format!("A cron entry named `{}` exists already.", fields.name.trim())),
        (true, None) => Some(format!("There is no cron entry `{}` to change.", fields.name.trim())),
        _ => None,
    };
    let outcome = match refusal {
        Some(why) => Err(why),
        None => match fields.spec() {
            Ok(spec) => cron.save_spec(spec).await.map_err(|e| e.to_string()),
            Err(why) => Err(why),
        },
    };
    match outcome {
        Ok(()) => {
            Ok(render::see_other(if editing { "/cron?done=cron-changed" } else { "/cron?done=cron-added" }))
        }
        Err(why) => {
            let workers = state.engine.workers().await?;
            let form = EntryForm::from_fields(&fields);
            let page = render::cron::page(&who, &listed, &workers, &form, None, Some(&why));
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NameForm {
    #[serde(default)]
    name: String,
    confirm: Option<String>,
}

fn missing(name: &str) -> WebError {
    WebError::NotFound(format!("There is no cron entry `{name}`."))
}

pub(crate) async fn pause(
    State(state): State<AppState>,
    Form(form): Form<NameForm>,
) -> Result<Response, WebError> {
    if !CronAdmin::new(state.engine.as_ref()).pause(&form.name).await? {
        return Err(missing(&form.name));
    }
    Ok(render::see_other("/cron?done=cron-paused"))
}

pub(crate) async fn resume(
    State(state): State<AppState>,
    Form(form): Form<NameForm>,
) -> Result<Response, WebError> {
    if !CronAdmin::new(state.engine.as_ref()).resume(&form.name).await? {
        return Err(missing(&form.name));
    }
    Ok(render::see_other("/cron?done=cron-resumed"))
}

/// Inserts one job now and shows it.
pub(crate) async fn run(
    State(state): State<AppState>,
    Form(form): Form<NameForm>,
) -> Result<Response, WebError> {
    match state.engine.run_cron_entry(&form.name).await? {
        Some(job) => Ok(render::see_other(&format!("/jobs/{}?done=cron-ran", job.job.id))),
        None => Err(missing(&form.name)),
    }
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    Form(form): Form<NameForm>,
) -> Result<Response, WebError> {
    if form.confirm.as_deref() != Some("yes") {
        return Err(WebError::BadRequest("Tick the box to confirm the removal.".into()));
    }
    match CronAdmin::new(state.engine.as_ref()).remove(&form.name).await {
        Ok(true) => Ok(render::see_other("/cron?done=cron-removed")),
        Ok(false) => Err(missing(&form.name)),
        Err(jobsmith_runtime::Error::InvalidOption(why)) => Err(WebError::BadRequest(why)),
        Err(e) => Err(e.into()),
    }
}
