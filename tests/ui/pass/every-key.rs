//! A job with every key of `#[job(...)]`.
#![deny(warnings)]

use std::time::Duration;

use jobsmith::{Job, JobContext, JobState, job};

fn linear_backoff(attempt: u32) -> Duration {
    Duration::from_secs(10 * u64::from(attempt))
}

/// Charges an invoice.
#[job(
    queue = "billing",
    max_attempts = 5,
    priority = 9,
    weight = 3,
    partition = "invoice_id",
    timeout = "1h30m",
    tags = ["billing", "invoices"],
    unique(
        period = "5m",
        by = [worker, queue, args],
        keys = ["invoice_id"],
        states = [available, scheduled, executing, retryable, completed, discarded, cancelled],
    ),
    name = "charge_invoice",
    crate = "::jobsmith",
    backoff = linear_backoff,
)]
pub async fn charge_invoice(ctx: JobContext, invoice_id: i64, note: Option<String>) -> Result<(), String> {
    let _ = (ctx, invoice_id, note);
    Ok(())
}

fn main() {
    let job = ChargeInvoice { invoice_id: 7, note: None };
    let _ = format!("{job:?}");
    let _ = job.clone();
    assert_eq!(ChargeInvoice::NAME, "charge_invoice");
    assert_eq!(ChargeInvoice::OPTIONS.partition_by, Some("invoice_id"));
    assert_eq!(ChargeInvoice::OPTIONS.timeout, Some(Duration::from_secs(5400)));
    let unique = ChargeInvoice::OPTIONS.unique.unwrap();
    assert_eq!(unique.states.len(), JobState::ALL.len());
}
