use jobsmith::{State, job};

/// A pool handle that is not `Clone`: job state must be.
pub struct Pool;

#[job]
async fn sync_benefits(State(pool): State<Pool>, patient_id: i64) -> Result<(), String> {
    let _ = (pool, patient_id);
    Ok(())
}

fn main() {}
