use jobsmith::{JobContext, State, job};

#[derive(Clone)]
pub struct App;

#[job]
async fn sync_benefits(app: State<App>, ctx: JobContext, patient_id: i64) -> Result<(), String> {
    let _ = (app, ctx, patient_id);
    Ok(())
}

fn main() {}
