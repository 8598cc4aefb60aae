use jobsmith::{JobTx, job};

#[job]
async fn record_payment(tx: JobTx, cents: i64) -> Result<(), String> {
    let _ = (tx, cents);
    Ok(())
}

fn main() {}
