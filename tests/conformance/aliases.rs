//! `#[job(aliases = [...])]`: rows stored under an earlier worker name run with the job that now
//! lists it. That names and aliases together are unique is tested in `tests/alias_conflict.rs`:
//! a conflict among the `#[job]`s of a binary stops every runtime of it from starting.

use jobsmith::prelude::*;
use jobsmith::{JobState, Registry, WorkerEntry};

use super::state::Seen;

/// Renamed twice: rows of both earlier names still run here.
#[jobsmith::job(queue = "renamed", name = "clinic::SendReminderV3", aliases = ["clinic::SendReminder", "reminders::Send"])]
pub async fn send_reminder_v3(
    ctx: JobContext,
    State(seen): State<Seen>,
    appointment_id: i64,
) -> Result<(), String> {
    seen.push(format!("{} {appointment_id}", ctx.worker));
    Ok(())
}

conformance! {
    /// A row stored under an alias runs with the job that lists it; the context shows the stored
    /// name, so the job can tell old rows apart.
    async fn rows_stored_under_an_alias_run_with_the_renamed_job(db) {
        let mut ids = Vec::new();
        for (n, stored_as) in [(1, "clinic::SendReminder"), (2, "reminders::Send"), (3, "clinic::SendReminderV3")] {
            let id = db.insert(SendReminderV3 { appointment_id: n }).await.unwrap().job.id;
            db.exec(&format!("UPDATE {{jobs}} SET worker = '{stored_as}' WHERE id = {id}")).await;
            ids.push(id);
        }
        let seen = Seen::default();
        let registry = Registry::from_entries([WorkerEntry::of::<SendReminderV3>()]).unwrap();
        let rt = db.runtime().registry(registry).queue("renamed", 2).state(seen.clone()).start().await.unwrap();
        db.wait_state_count(JobState::Completed, 3).await;
        rt.shutdown().await.unwrap();
        let mut lines = seen.lines();
        lines.sort();
        assert_eq!(lines, ["clinic::SendReminder 1", "clinic::SendReminderV3 3", "reminders::Send 2"]);
    }
}
