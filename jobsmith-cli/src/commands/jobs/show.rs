//! `jobsmith jobs show ID`.

use jobsmith::JobRow;
use jobsmith::engine::Engine;
use jobsmith::preview::{self, ARGS_PREVIEW_BYTES};
use serde_json::Value;

use crate::error::Failure;
use crate::output::{self, Table};

/// Prints everything stored about one job; large args only in part unless `full`. JSON is for
/// scripts, which want the data itself, so it is always whole.
pub(crate) async fn run(engine: &dyn Engine, id: i64, full: bool, json: bool) -> Result<(), Failure> {
    let job = engine.get_job(id).await?.ok_or(Failure::no_job(id))?;
    let result = engine.get_result(id).await?;
    if json {
        let mut value = output::job_json(&job);
        if let Value::Object(fields) = &mut value {
            fields.insert("result".into(), result.unwrap_or(Value::Null));
        }
        output::print_json(&value);
    } else {
        print!("{}", render(&job, full));
        if let Some(result) = &result {
            print!("\nresult:\n{}", indent(&preview_of(result, full)));
        }
    }
    Ok(())
}

/// A recorded result, pretty, and bounded like args unless `full`.
fn preview_of(result: &Value, full: bool) -> String {
    let text = pretty(result);
    let shown = preview::prefix_within(&text, ARGS_PREVIEW_BYTES, char::len_utf8);
    if full || shown.len() == text.len() {
        return text;
    }
    format!("{shown}\n... ({} in all; --full shows everything)", preview::format_bytes(text.len()))
}

/// The job as text: fields, then args, meta and errors as indented blocks.
fn render(job: &JobRow, full: bool) -> String {
    // A two-column table whose "header" is the first field: it aligns the values for free.
    let mut fields = Table::new(["id", &job.id.to_string()]);
    let mut field = |name: &str, value: String| fields.row(vec![name.to_string(), value]);
    field("state", job.state.to_string());
    field("queue", job.queue.clone());
    field("worker", job.worker.clone());
    field("attempt", format!("{} of {}", job.attempt, job.max_attempts));
    field("priority", job.priority.to_string());
    field("weight", job.weight.to_string());
    field("tags", if job.tags.is_empty() { "-".into() } else { job.tags.join(", ") });
    field("inserted at", output::time(job.inserted_at));
    field("scheduled at", output::time(job.scheduled_at));
    field("attempted at", output::opt_time(job.attempted_at));
    field("attempted by", job.attempted_by.clone().unwrap_or_else(|| "-".into()));
    field("completed at", output::opt_time(job.completed_at));
    field("discarded at", output::opt_time(job.discarded_at));
    field("cancelled at", output::opt_time(job.cancelled_at));
    if let Some(reason) = &job.unreadable {
        field("unreadable", reason.clone());
    }

    let mut out = fields.render();
    out.push_str("(times in UTC)\n\nargs:\n");
    out.push_str(&args(job, full));
    out.push_str("\nmeta:\n");
    out.push_str(&indent(&pretty(&job.meta)));
    out.push_str("\nerrors:\n");
    if job.errors.is_empty() {
        out.push_str("  none\n");
    }
    for entry in &job.errors {
        out.push_str(&indent(&error_entry(entry)));
    }
    out
}

/// One `{"attempt", "at", "error"}` entry as `attempt N at TIME: message`; anything else
/// (written by another version) as its JSON.
fn error_entry(entry: &Value) -> String {
    match (entry.get("attempt"), entry.get("at").and_then(Value::as_str), entry.get("error")) {
        (Some(attempt), Some(at), Some(Value::String(error))) => {
            format!("attempt {attempt} at {at}: {error}")
        }
        _ => entry.to_string(),
    }
}

/// A JSON value over several lines.
fn pretty(value: &Value) -> String {
    preview::pretty_json(value)
}

/// The args, indented: whole when `full` or small, else their first [`ARGS_PREVIEW_BYTES`] and a
/// line saying how much that is and how to get the rest. A terminal scrolled through megabytes
/// of args hides everything else the command printed.
fn args(job: &JobRow, full: bool) -> String {
    let text = pretty(&job.args);
    let shown = if full { &text } else { preview::prefix_within(&text, ARGS_PREVIEW_BYTES, char::len_utf8) };
    if shown.len() == text.len() {
        return indent(&text);
    }
    format!(
        "{}  …\n  (showing the first {} of {}; `jobsmith jobs show {} --full` prints all of it)\n",
        indent(shown),
        preview::format_bytes(shown.len()),
        preview::format_bytes(text.len()),
        job.id
    )
}

/// Every line of `text` indented by two spaces, each ending in a newline.
fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn error_entries_read_as_sentences() {
        let entry = json!({"attempt": 2, "at": "2024-01-01T00:00:00Z", "error": "boom"});
        assert_eq!(error_entry(&entry), "attempt 2 at 2024-01-01T00:00:00Z: boom");
        assert_eq!(error_entry(&json!({"other": 1})), r#"{"other":1}"#);
    }

    #[test]
    fn indent_keeps_every_line() {
        assert_eq!(indent("a\nb"), "  a\n  b\n");
    }
}
