// With a mistake in the attribute, the job struct and its `Job` impl are still generated (as
// stubs), so code elsewhere that imports and uses them reports nothing beyond the one mistake.
mod jobs {
    use jobsmith::job;

    #[job(queue = 3)]
    pub async fn send_reminder(id: i64) -> Result<(), String> {
        let _ = id;
        Ok(())
    }
}

use jobs::SendReminder;
use jobsmith::prelude::*;

fn enqueue() -> jobsmith::Result<jobsmith::NewJob> {
    let job = SendReminder { id: 1 };
    let _ = (job.id, SendReminder::NAME, SendReminder::OPTIONS.queue, job.clone());
    SendReminder { id: 2 }.build()
}

fn main() {
    let _ = enqueue();
}
