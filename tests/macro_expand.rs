//! What `#[job]` generates, checked without a database: the struct, its serde form, the `Job`
//! impl's constants and `perform`, the custom backoff, and the registration.
//!
//! Every job in this binary is registered with `inventory`, so every name here must be unique.

use std::fmt;
use std::time::Duration;

use jobsmith::{Job, JobContext, JobOptions, JobState, Outcome, Registry, UniqueOptions, WorkerEntry, job};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Which reminder to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReminderKind {
    /// The day before.
    DayBefore,
    /// Two hours before.
    HoursBefore,
}

/// The error of the jobs below.
#[derive(Debug)]
pub struct ReminderError(String);

impl fmt::Display for ReminderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reminder failed: {}", self.0)
    }
}

/// Sends a reminder; fails for appointment 0, naming the attempt it was on.
#[job(queue = "events", max_attempts = 3)]
pub async fn send_reminder(
    ctx: JobContext,
    appointment_id: i64,
    kind: ReminderKind,
) -> Result<(), ReminderError> {
    if appointment_id == 0 {
        return Err(ReminderError(format!("no appointment (attempt {})", ctx.attempt)));
    }
    let _ = kind;
    Ok(())
}

/// Ten seconds per attempt.
fn linear_backoff(attempt: u32) -> Duration {
    Duration::from_secs(10 * u64::from(attempt))
}

#[job(
    queue = "billing",
    max_attempts = 5,
    priority = 9,
    weight = 7,
    timeout = "1h30m",
    tags = ["billing", "invoices"],
    unique(
        period = "250ms",
        by = [worker, args],
        keys = ["invoice_id", "type"],
        states = [available, scheduled, executing, retryable, cancelled],
        on_conflict = reschedule,
    ),
    name = "macro_expand_charge_invoice",
    backoff = linear_backoff,
)]
async fn charge_invoice(invoice_id: i64, r#type: String, note: Option<String>) -> Result<Outcome, String> {
    match (invoice_id, note) {
        (0, _) => Ok(Outcome::Discard(format!("no invoice of type {}", r#type))),
        (_, Some(note)) => Ok(Outcome::Cancel(note)),
        (_, None) => Ok(Outcome::Snooze(Duration::from_secs(60))),
    }
}

/// No args, no context, bare `unique`.
#[job(unique, timeout = "250ms")]
async fn heartbeat() -> Result<(), String> {
    Ok(())
}

mod nested {
    use jobsmith::job;

    #[job(priority = 0)]
    pub(crate) async fn nested_cleanup(days: u32) -> Result<(), std::io::Error> {
        let _ = days;
        Ok(())
    }
}

#[test]
fn struct_has_the_args_as_fields_and_round_trips_through_json() {
    let job = SendReminder { appointment_id: 7, kind: ReminderKind::HoursBefore };
    let value = serde_json::to_value(&job).unwrap();
    assert_eq!(value, json!({ "appointment_id": 7, "kind": "HoursBefore" }));

    let back: SendReminder = serde_json::from_value(value).unwrap();
    assert_eq!(back.appointment_id, 7);
    assert_eq!(back.kind, ReminderKind::HoursBefore);

    // `Debug` and `Clone` are derived too.
    let copy = back.clone();
    assert_eq!(format!("{copy:?}"), "SendReminder { appointment_id: 7, kind: HoursBefore }");
}

#[test]
fn raw_names_are_stored_without_r_hash_and_a_missing_option_decodes_as_none() {
    let job = ChargeInvoice { invoice_id: 1, r#type: "card".into(), note: Some("hi".into()) };
    assert_eq!(serde_json::to_value(&job).unwrap(), json!({ "invoice_id": 1, "type": "card", "note": "hi" }));

    // An older row without `note` still decodes, as with a plain `#[derive(Deserialize)]`.
    let old: ChargeInvoice = serde_json::from_value(json!({ "invoice_id": 2, "type": "card" })).unwrap();
    assert_eq!(old.note, None);
    // A missing required arg is still an error that names it.
    let err = serde_json::from_value::<ChargeInvoice>(json!({ "invoice_id": 2 })).unwrap_err();
    assert!(err.to_string().contains("missing field `type`"), "{err}");
}

#[test]
fn a_job_without_args_is_an_empty_struct() {
    assert_eq!(serde_json::to_value(Heartbeat {}).unwrap(), json!({}));
    let _: Heartbeat = serde_json::from_value(json!({})).unwrap();
}

#[test]
fn name_defaults_to_the_module_path_and_struct_name() {
    assert_eq!(SendReminder::NAME, "macro_expand::SendReminder");
    assert_eq!(nested::NestedCleanup::NAME, "macro_expand::nested::NestedCleanup");
    assert_eq!(ChargeInvoice::NAME, "macro_expand_charge_invoice");
}

#[test]
fn options_reflect_the_given_keys_and_default_the_rest() {
    assert_eq!(SendReminder::OPTIONS, JobOptions { queue: "events", max_attempts: 3, ..JobOptions::DEFAULT },);
    assert_eq!(nested::NestedCleanup::OPTIONS, JobOptions::DEFAULT);

    let options = ChargeInvoice::OPTIONS;
    assert_eq!(options.queue, "billing");
    assert_eq!(options.max_attempts, 5);
    assert_eq!(options.priority, 9);
    assert_eq!(options.weight, 7);
    assert_eq!(SendReminder::OPTIONS.weight, 1, "1 unless given");
    assert_eq!(options.timeout, Some(Duration::from_millis(5_400_000)));
    assert_eq!(options.tags, &["billing", "invoices"]);
    assert_eq!(
        options.unique,
        Some(UniqueOptions {
            period: Some(Duration::from_millis(250)),
            by_worker: true,
            by_queue: false,
            by_args: true,
            keys: &["invoice_id", "type"],
            states: &[
                JobState::Available,
                JobState::Scheduled,
                JobState::Executing,
                JobState::Retryable,
                JobState::Cancelled
            ],
            on_conflict: jobsmith::OnConflict::Reschedule,
        }),
    );

    let bare = Heartbeat::OPTIONS;
    assert_eq!(bare.unique, Some(UniqueOptions::DEFAULT));
    assert_eq!(bare.timeout, Some(Duration::from_millis(250)));
    assert_eq!(bare.max_attempts, 20);
}

#[tokio::test]
async fn the_original_fn_is_still_callable() {
    send_reminder(JobContext::for_tests(), 1, ReminderKind::DayBefore).await.unwrap();
    let outcome = charge_invoice(3, "card".into(), None).await.unwrap();
    assert_eq!(outcome, Outcome::Snooze(Duration::from_secs(60)));
    nested::nested_cleanup(30).await.unwrap();
}

#[tokio::test]
async fn perform_runs_the_fn_and_converts_its_result() {
    let ok = SendReminder { appointment_id: 1, kind: ReminderKind::DayBefore };
    assert_eq!(Job::perform(ok, JobContext::for_tests()).await, Ok(Outcome::Complete));

    // The error's `Display` text, and the context reaches the fn (`for_tests` is attempt 1).
    let failing = SendReminder { appointment_id: 0, kind: ReminderKind::DayBefore };
    assert_eq!(
        Job::perform(failing, JobContext::for_tests()).await,
        Err("reminder failed: no appointment (attempt 1)".to_owned()),
    );

    // A fn returning `Result<Outcome, E>` chooses its outcome.
    let discard = ChargeInvoice { invoice_id: 0, r#type: "card".into(), note: None };
    assert_eq!(
        Job::perform(discard, JobContext::for_tests()).await,
        Ok(Outcome::Discard("no invoice of type card".into())),
    );
    let cancel = ChargeInvoice { invoice_id: 1, r#type: "card".into(), note: Some("refunded".into()) };
    assert_eq!(Job::perform(cancel, JobContext::for_tests()).await, Ok(Outcome::Cancel("refunded".into())));
    assert_eq!(Job::perform(Heartbeat {}, JobContext::for_tests()).await, Ok(Outcome::Complete));
}

#[test]
fn the_backoff_key_replaces_the_default_backoff() {
    assert_eq!(ChargeInvoice::backoff(1), Duration::from_secs(10));
    assert_eq!(ChargeInvoice::backoff(4), Duration::from_secs(40));
    assert_eq!((WorkerEntry::of::<ChargeInvoice>().backoff)(2), Duration::from_secs(20));
    // Without the key, the default (15 s + 2^attempt s, with jitter of up to 10 %).
    let default = SendReminder::backoff(1).as_secs_f64();
    assert!((17.0 * 0.9..=17.0 * 1.1).contains(&default), "{default}");
}

#[tokio::test]
async fn every_job_is_registered_under_its_name() {
    let registry = Registry::from_inventory().unwrap();
    for name in [
        "macro_expand::SendReminder",
        "macro_expand_charge_invoice",
        "macro_expand::Heartbeat",
        "macro_expand::nested::NestedCleanup",
    ] {
        let entry = registry.get(name).unwrap_or_else(|| panic!("`{name}` is not registered"));
        assert_eq!(entry.name, name);
    }

    // The entry decodes stored args and runs the job.
    let entry = registry.get(SendReminder::NAME).unwrap();
    assert_eq!(entry.options, SendReminder::OPTIONS);
    let args = json!({ "appointment_id": 0, "kind": "DayBefore" });
    let future = (entry.run)(args, JobContext::for_tests()).unwrap();
    assert_eq!(future.await, Err("reminder failed: no appointment (attempt 1)".to_owned()));

    let bad = (entry.run)(json!({ "appointment_id": 1, "kind": "Never" }), JobContext::for_tests());
    let message = bad.err().unwrap();
    assert!(message.contains("kind"), "{message}");
}
