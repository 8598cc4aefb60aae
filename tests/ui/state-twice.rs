use jobsmith::{State, job};

#[derive(Clone)]
pub struct App;

#[job]
async fn sync_benefits(app: State<App>, patient_id: i64, again: State<App>) -> Result<(), String> {
    let _ = (app, patient_id, again);
    Ok(())
}

fn main() {}
