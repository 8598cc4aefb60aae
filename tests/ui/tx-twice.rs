use jobsmith::{JobTx, job};

#[job]
async fn record_payment(tx: &mut JobTx, again: &mut JobTx, cents: i64) -> Result<(), String> {
    let _ = (tx, again, cents);
    Ok(())
}

fn main() {}
