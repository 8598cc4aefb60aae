//! State parameters anywhere after the context, destructured or not, several types; the job
//! struct has the args only, and the fn stays callable with its state.
use std::sync::{Arc, Mutex};

use jobsmith::{Job, JobContext, State, job};

#[derive(Clone)]
pub struct App {
    pub calls: Arc<Mutex<u32>>,
}

#[derive(Clone)]
pub struct Http(pub String);

#[job(queue = "benefits")]
async fn sync_benefits(
    ctx: JobContext,
    State(app): State<App>,
    patient_id: i64,
    http: jobsmith::State<Http>,
) -> Result<(), String> {
    *app.calls.lock().unwrap() += 1;
    let _ = (ctx, patient_id, http.0);
    Ok(())
}

fn main() {
    let job = SyncBenefits { patient_id: 3 };
    assert_eq!(SyncBenefits::STATES.len(), 2);
    let _ = job;
    let _call = sync_benefits(
        JobContext::for_tests(),
        State(App { calls: Arc::default() }),
        3,
        State(Http("client".into())),
    );
}
