//! A job fn may take its transaction, with the context, state and args around it, and return a
//! value or an outcome.
use jobsmith::{JobContext, JobTx, Outcome, State, job};

#[derive(Clone)]
struct Rates(i64);

#[job(queue = "ledger")]
async fn record_payment(ctx: JobContext, tx: &mut JobTx, State(rates): State<Rates>, cents: i64) -> Result<i64, String> {
    let _ = (ctx.id, &mut *tx);
    let saved: i64 = tx
        .step("convert", move |_tx| Box::pin(async move { Ok::<_, String>(cents * rates.0) }))
        .await
        .map_err(|e| e.to_string())?;
    Ok(saved)
}

#[job]
async fn settle(account: i64, tx: &mut JobTx) -> Result<Outcome, String> {
    let _ = (account, tx);
    Ok(Outcome::Complete)
}

fn main() {
    let _ = RecordPayment { cents: 1 };
    let _ = Settle { account: 1 };
}
