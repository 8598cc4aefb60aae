use jobsmith::job;

#[job(queue = "benefits", partition = "insurer")]
async fn sync_benefits(insurer_id: i64, patient_id: i64) -> Result<(), String> {
    let _ = (insurer_id, patient_id);
    Ok(())
}

#[job(queue = "benefits", partition = "insurer_id")]
async fn sync_all() -> Result<(), String> {
    Ok(())
}

fn main() {}
