use jobsmith::job;

#[job(unique(on_conflict = "replace"))]
async fn quoted(n: i64) -> Result<(), String> {
    let _ = n;
    Ok(())
}

#[job(unique(on_conflict = overwrite))]
async fn unknown(n: i64) -> Result<(), String> {
    let _ = n;
    Ok(())
}

fn main() {}
