//! A binary whose jobs claim one worker name twice (here an alias that another job already has):
//! every runtime of it refuses to start, naming the alias and both jobs, before touching a row.

use jobsmith::{Db, Error, JobState};

/// Was `reminders::Send` before it was renamed.
#[jobsmith::job(name = "clinic::SendReminder", aliases = ["reminders::Send"])]
async fn send_reminder(appointment_id: i64) -> Result<(), String> {
    let _ = appointment_id;
    Ok(())
}

/// Takes the same old name by mistake.
#[jobsmith::job(name = "clinic::Other", aliases = ["reminders::Send"])]
async fn other(appointment_id: i64) -> Result<(), String> {
    let _ = appointment_id;
    Ok(())
}

#[tokio::test]
async fn a_runtime_refuses_to_start_when_an_alias_is_taken_twice() {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let id = db.insert(SendReminder { appointment_id: 1 }).await.unwrap().job.id;
    let Err(err) = db.runtime().queue("default", 1).start().await else { panic!("started") };
    assert!(matches!(&err, Error::AliasTaken { alias, .. } if alias == "reminders::Send"), "{err}");
    let message = err.to_string();
    assert!(message.contains("clinic::SendReminder") && message.contains("clinic::Other"), "{message}");
    assert_eq!(
        db.engine().get_job(id).await.unwrap().map(|j| j.state),
        Some(JobState::Available),
        "nothing ran"
    );
}
