//! The `#[job]` attribute of jobsmith. Use it through the `jobsmith` crate, which re-exports it and
//! provides the paths the generated code names.
//!
//! The macro runs in three stages: parse (`attr` for the attribute's entries and `attr::value` for
//! their values, `model` for the fn), check (`rules` for the keys, `signature` for the fn, errors
//! collected in `ctxt`), and `expand` (the generated code, or stubs beside the errors). `keys` is
//! the one table of the words the attribute accepts.

mod attr;
mod ctxt;
mod expand;
mod keys;
mod model;
mod rules;
mod signature;

use proc_macro::TokenStream;

/// Turns an `async fn` into a typed background job.
///
/// The fn stays as written and callable. Next to it, the macro generates:
///
/// - a struct named after the fn in PascalCase (`send_reminder` → `SendReminder`), with the fn's
///   visibility and doc comments, whose fields are the fn's params (other than the context). It
///   derives `Serialize`, `Deserialize`, `Debug` and `Clone`, so every param type must implement
///   them; jobs are stored as JSON, so params must be owned (`String`, not `&str`);
/// - `impl jobsmith::Job` for the struct, whose `perform` calls the fn with the fields;
/// - the registration of the job, so `Registry::from_inventory()` finds it by name.
///
/// The fn may take a `JobContext` as its first parameter. It must return `Result<(), E>`, or
/// `Result<jobsmith::Outcome, E>` to snooze, cancel or discard, with `E: Display`; an `Err` is a
/// failed attempt, retried with backoff.
///
/// ```text
/// /// Sends a reminder.
/// #[job(queue = "events", max_attempts = 3)]
/// pub async fn send_reminder(ctx: JobContext, appointment_id: i64, kind: ReminderKind) -> Result<(), MyError> {
///     // ...
/// }
///
/// // generates `pub struct SendReminder { pub appointment_id: i64, pub kind: ReminderKind }`
/// ```
///
/// # Keys
///
/// All keys are optional; each may be given once.
///
/// | key | value | default |
/// |-----|-------|---------|
/// | `queue` | non-empty string: `queue = "emails"` | `"default"` |
/// | `max_attempts` | integer ≥ 1, counting the first run: `max_attempts = 5` | `20` |
/// | `priority` | integer from 0 (runs first) to 9: `priority = 1` | `0` |
/// | `weight` | integer from 1 to 1000: how many of its queue's slots one run takes (`weight = 5` of a queue's 10 lets two run at once) | `1` |
/// | `partition` | the name of an arg: its value is the job's partition (a tenant, an insurer), for a queue with a partition limit | none |
/// | `timeout` | duration longer than zero, in a string: `"250ms"`, `"30s"`, `"5m"`, `"1h30m"` | no limit |
/// | `tags` | list of strings: `tags = ["billing", "email"]` | none |
/// | `unique` | `unique`, or `unique(...)` with the keys below | not unique |
/// | `name` | string: the worker name stored with each job | `concat!(module_path!(), "::SendReminder")` |
/// | `crate` | path of the `jobsmith` crate, in a string: `crate = "my_crate::jobsmith"` | `"::jobsmith"` |
/// | `backoff` | path of a `fn(u32) -> Duration`: `backoff = my_backoff` | `jobsmith::default_backoff` |
/// | `cron` | a schedule on which every runtime's leader inserts this job, checked at compile time: `cron = "0 2 * * *"` (five fields, optional leading seconds, or `@daily` and friends); only for fns without args | none |
/// | `timezone` | IANA time zone of `cron`: `timezone = "America/New_York"` | `"UTC"` |
///
/// Keys of `unique(...)`, all optional (bare `unique` uses every default):
///
/// | key | value | default |
/// |-----|-------|---------|
/// | `period` | duration in a string: unique within each time bucket of this length | as long as a job is in `states` |
/// | `by` | any of `[worker, queue, args]`: what makes two jobs the same | all three |
/// | `keys` | list of arg names: only these args count (needs `args` in `by`) | all args |
/// | `states` | any of `[available, scheduled, executing, retryable, completed, discarded, cancelled]` | all but `discarded` and `cancelled` |
///
/// ```text
/// #[job(
///     queue = "billing",
///     max_attempts = 5,
///     priority = 1,
///     timeout = "2m",
///     tags = ["billing"],
///     unique(period = "1h", by = [worker, args], keys = ["invoice_id"]),
///     name = "charge_invoice",
///     backoff = linear_backoff,
/// )]
/// async fn charge_invoice(ctx: JobContext, invoice_id: i64, note: String) -> Result<Outcome, BillingError> {
///     // ...
/// }
/// ```
///
/// Mistakes are reported at compile time, at the offending tokens: an unknown or repeated key,
/// a value of the wrong type or out of range, a fn that is not `async`, is generic, takes `self`,
/// patterns, `impl Trait` or borrowed params, or returns something else than a job result.
#[proc_macro_attribute]
pub fn job(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::job(attr.into(), item.into()).into()
}
