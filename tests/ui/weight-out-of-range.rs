use jobsmith::job;

#[job(weight = 0)]
async fn light_report(clinic_id: i64) -> Result<(), String> {
    let _ = clinic_id;
    Ok(())
}

#[job(weight = 1001)]
async fn heavy_report(clinic_id: i64) -> Result<(), String> {
    let _ = clinic_id;
    Ok(())
}

fn main() {}
