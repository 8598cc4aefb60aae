//! `jobsmith jobs show ID`.

use jobsmith::JobRow;
use jobsmith::engine::Engine;
use serde_json::Value;

use crate::error::Failure;
use crate::output::{self, Table};

/// Prints everything stored about one job.
pub(crate) async fn run(engine: &dyn Engine, id: i64, json: bool) -> Result<(), Failure> {
    let job = engine.get_job(id).await?.ok_or(Failure::no_job(id))?;
    if json {
        output::print_json(&output::job_json(&job));
    } else {
        print!("{}", render(&job));
    }
    Ok(())
}

/// The job as text: fields, then args, meta and errors as indented blocks.
fn render(job: &JobRow) -> String {
    // A two-column table whose "header" is the first field: it aligns the values for free.
    let mut fields = Table::new(["id", &job.id.to_string()]);
    let mut field = |name: &str, value: String| fields.row(vec![name.to_string(), value]);
    field("state", job.state.to_string());
    field("queue", job.queue.clone());
    field("worker", job.worker.clone());
    field("attempt", format!("{} of {}", job.attempt, job.max_attempts));
    field("priority", job.priority.to_string());
    field("tags", if job.tags.is_empty() { "-".into() } else { job.tags.join(", ") });
    field("inserted at", output::time(job.inserted_at));
    field("scheduled at", output::time(job.scheduled_at));
    field("attempted at", output::opt_time(job.attempted_at));
    field("attempted by", job.attempted_by.clone().unwrap_or_else(|| "-".into()));
    field("completed at", output::opt_time(job.completed_at));
    field("discarded at", output::opt_time(job.discarded_at));
    field("cancelled at", output::opt_time(job.cancelled_at));

    let mut out = fields.render();
    out.push_str("(times in UTC)\n\nargs:\n");
    out.push_str(&indent(&pretty(&job.args)));
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
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
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
