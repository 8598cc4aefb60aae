//! Cron entries managed at run time (ADR 30): stored entries fire without a restart, change,
//! pause and go away at run time; code entries are listed and can be paused but not edited;
//! "run now" inserts one job outside the schedule; an entry the leader cannot run says why and
//! harms no other. Each test runs on both engines.

use std::collections::HashSet;
use std::time::Duration;

use jobsmith::prelude::*;
use jobsmith::{CronEntry, CronEntrySpec, CronSource, Error, JobState, MissedSlots, RuntimeBuilder};

use super::harness::{LONG, TestDb, wait_for};
use super::jobs::Record;
use super::probe::Probe;

/// A node whose leader is elected quickly.
fn node(db: &TestDb) -> RuntimeBuilder {
    db.runtime()
        .poll_interval(Duration::from_millis(200))
        .heartbeat_interval(Duration::from_millis(100))
        .leader_lease(Duration::from_millis(1000))
        .queue("default", 4)
}

fn every_second(probe: &str, label: &str) -> CronEntry {
    CronEntry::new("* * * * * *", Record { probe: probe.to_string(), label: label.into(), sleep_ms: 0 })
        .unwrap()
        .missed(MissedSlots::Skip)
}

/// The labels of the jobs entry `name` inserted, in insertion order.
async fn labels_of(db: &TestDb, name: &str) -> Vec<String> {
    let mut labels = Vec::new();
    for id in 1..=db.scalar("SELECT coalesce(max(id), 0) FROM {jobs}").await {
        if let Some(job) = db.engine().get_job(id).await.unwrap()
            && job.meta["cron"] == name
        {
            labels.push(job.args["label"].as_str().unwrap().to_string());
        }
    }
    labels
}

/// How many jobs entry `name` has inserted once a cron pass has surely run since now: the pass
/// runs every second, so after 2.5 s any pass that began before a change has ended.
async fn settled_count(db: &TestDb, name: &str) -> usize {
    // A negative check needs time to pass: a pass that read the entry before the change may
    // still insert one slot.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    labels_of(db, name).await.len()
}

conformance! {
    /// Added while a node runs, a stored entry fires each second; changed, its next jobs carry
    /// the change; paused, it inserts nothing, and resumed it goes on without catching up; removed,
    /// it stops and is no longer listed.
    async fn a_stored_entry_is_added_changed_paused_and_removed_without_a_restart(db) {
        let p = Probe::new();
        let rt = node(&db).start().await.unwrap();
        db.cron().save(every_second(&p.key, "first").named("tick")).await.unwrap();
        wait_for("two firings of the stored entry", LONG, || async {
            (labels_of(&db, "tick").await.len() >= 2).then_some(())
        })
        .await;
        let listed = db.cron().list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].entry.source, CronSource::Database);
        assert_eq!(listed[0].description, "Every second");
        assert!(listed[0].next_slot.is_some() && listed[0].entry.last_slot.is_some());
        let (last_id, _) = listed[0].entry.last_job.expect("the last slot's job");
        assert_eq!(db.engine().get_job(last_id).await.unwrap().unwrap().meta["cron"], "tick");

        // Changed: the same entry (its slots go on), new args.
        db.cron().save(every_second(&p.key, "second").named("tick")).await.unwrap();
        wait_for("a firing with the new args", LONG, || async {
            labels_of(&db, "tick").await.contains(&"second".to_string()).then_some(())
        })
        .await;
        let labels = labels_of(&db, "tick").await;
        let first_new = labels.iter().position(|l| l == "second").unwrap();
        assert!(labels[first_new..].iter().all(|l| l == "second"), "after the change only the new args: {labels:?}");

        assert!(db.cron().pause("tick").await.unwrap());
        let paused_at = settled_count(&db, "tick").await;
        assert_eq!(settled_count(&db, "tick").await, paused_at, "a paused entry inserts nothing");
        let listed = db.cron().list().await.unwrap();
        assert!(listed[0].entry.paused && listed[0].next_slot.is_none());

        assert!(db.cron().resume("tick").await.unwrap());
        wait_for("firings after the resume", LONG, || async {
            (labels_of(&db, "tick").await.len() >= paused_at + 2).then_some(())
        })
        .await;
        // Not caught up: the slots that passed while paused did not all fire at once.
        let resumed = labels_of(&db, "tick").await.len();
        assert!(resumed <= paused_at + 4, "{resumed} jobs after a resume from {paused_at}: the paused slots fired");

        assert!(db.cron().remove("tick").await.unwrap());
        let removed_at = settled_count(&db, "tick").await;
        assert_eq!(settled_count(&db, "tick").await, removed_at, "a removed entry inserts nothing");
        assert!(db.cron().list().await.unwrap().is_empty());
        assert!(!db.cron().remove("tick").await.unwrap(), "nothing left to remove");
        rt.shutdown().await.unwrap();

        // Every slot fired once.
        let mut slots = Vec::new();
        for id in 1..=db.scalar("SELECT max(id) FROM {jobs}").await {
            let job = db.engine().get_job(id).await.unwrap().unwrap();
            slots.push(job.meta["cron_slot"].as_str().unwrap().to_string());
        }
        assert_eq!(slots.iter().collect::<HashSet<_>>().len(), slots.len(), "a slot fired twice: {slots:?}");
    }
}

conformance! {
    /// The leader lists the entries of its code; they can be paused and run now, but neither
    /// changed nor removed at run time, and no stored entry can take their name.
    async fn code_entries_are_listed_and_paused_but_not_edited_at_run_time(db) {
        let p = Probe::new();
        let rt = node(&db).cron_entry(every_second(&p.key, "code").named("code-tick")).start().await.unwrap();
        let listed = wait_for("the code entry listed", LONG, || async {
            let listed = db.cron().list().await.unwrap();
            (!listed.is_empty()).then_some(listed)
        })
        .await;
        assert_eq!((listed[0].entry.name.as_str(), listed[0].entry.source), ("code-tick", CronSource::Code));
        assert_eq!(listed[0].entry.job.worker, <Record as Job>::NAME);

        let refused = db.cron().save(every_second(&p.key, "mine").named("code-tick")).await.unwrap_err();
        assert!(matches!(&refused, Error::InvalidOption(m) if m.contains("leader's code")), "{refused}");
        let refused = db.cron().remove("code-tick").await.unwrap_err();
        assert!(refused.to_string().contains("leader's code"), "{refused}");
        assert_eq!(db.cron().list().await.unwrap()[0].entry.job.args["label"], "code", "unchanged");

        wait_for("the code entry firing", LONG, || async { (!labels_of(&db, "code-tick").await.is_empty()).then_some(()) })
            .await;
        assert!(db.cron().pause("code-tick").await.unwrap());
        let paused_at = settled_count(&db, "code-tick").await;
        assert_eq!(settled_count(&db, "code-tick").await, paused_at, "a paused code entry inserts nothing");

        // Run now: one job, outside the schedule, even while paused.
        let job = db.cron().run_now("code-tick").await.unwrap();
        assert_eq!(job.job.meta["cron_run_now"], true);
        assert!(job.job.meta.get("cron_slot").is_none());
        let done = wait_for("the run-now job to complete", LONG, || async {
            let row = db.engine().get_job(job.job.id).await.unwrap().unwrap();
            (row.state == JobState::Completed).then_some(row)
        })
        .await;
        assert_eq!(done.args["label"], "code");
        let missing = db.cron().run_now("no-such-entry").await.unwrap_err();
        assert!(missing.to_string().contains("no cron entry named `no-such-entry`"), "{missing}");

        // A restart keeps the pause (it is stored) while the leader publishes its code again.
        rt.shutdown().await.unwrap();
        let rt = node(&db).cron_entry(every_second(&p.key, "code").named("code-tick")).start().await.unwrap();
        let before = labels_of(&db, "code-tick").await.len();
        assert_eq!(settled_count(&db, "code-tick").await, before, "still paused after a restart");
        assert!(db.cron().list().await.unwrap()[0].entry.paused);
        rt.shutdown().await.unwrap();

        // A leader whose code no longer has the entry withdraws it.
        let rt = node(&db).start().await.unwrap();
        wait_for("the withdrawn entry to go", LONG, || async { db.cron().list().await.unwrap().is_empty().then_some(()) })
            .await;
        rt.shutdown().await.unwrap();
    }
}

fn spec(name: &str, args: serde_json::Value) -> CronEntrySpec {
    CronEntrySpec {
        name: name.into(),
        expr: "* * * * * *".into(),
        worker: <Record as Job>::NAME.into(),
        args,
        missed: Some(MissedSlots::Skip),
        ..CronEntrySpec::default()
    }
}

conformance! {
    /// An entry given as text (the CLI's and dashboard's way) takes the job type's declared
    /// options; a malformed one is refused storing nothing; one whose args do not decode is
    /// stored, says why, and fires nothing, while its neighbour fires; fixed, it fires too.
    async fn an_entry_given_as_text_is_checked_and_a_bad_one_harms_no_other(db) {
        let p = Probe::new();
        let unknown = db.cron().save_spec(spec("early", serde_json::json!({}))).await.unwrap_err();
        assert!(unknown.to_string().contains("no leader has published"), "{unknown}");

        let rt = node(&db).start().await.unwrap();
        wait_for("the leader's job types", LONG, || async {
            let workers = db.engine().workers().await.unwrap();
            workers.iter().find(|w| w.name == <Record as Job>::NAME).cloned()
        })
        .await;
        let wrong = db.cron().save_spec(CronEntrySpec { worker: "no::Such".into(), ..spec("x", serde_json::json!({})) });
        let wrong = wrong.await.unwrap_err().to_string();
        assert!(wrong.contains("no job type named `no::Such`") && wrong.contains(<Record as Job>::NAME), "{wrong}");
        let bad_expr = CronEntrySpec { expr: "61 * * * *".into(), ..spec("x", serde_json::json!({})) };
        assert!(db.cron().save_spec(bad_expr).await.unwrap_err().to_string().contains("minutes must be 0-59"));
        let bad_zone = CronEntrySpec { timezone: Some("Mars/Olympus".into()), ..spec("x", serde_json::json!({})) };
        assert!(db.cron().save_spec(bad_zone).await.unwrap_err().to_string().contains("unknown time zone"));
        assert!(db.cron().list().await.unwrap().is_empty(), "nothing stored by a refusal");

        db.cron().save_spec(spec("broken", serde_json::json!({ "probe": 5 }))).await.unwrap();
        let good = serde_json::json!({ "probe": p.key, "label": "good", "sleep_ms": 0 });
        db.cron().save_spec(spec("good", good)).await.unwrap();
        let error = wait_for("the broken entry's error", LONG, || async {
            db.cron().list().await.unwrap().into_iter().find(|l| l.entry.name == "broken").and_then(|l| l.entry.error)
        })
        .await;
        assert!(error.contains("args do not decode"), "{error}");
        wait_for("the good entry firing beside it", LONG, || async {
            (labels_of(&db, "good").await.len() >= 2).then_some(())
        })
        .await;
        assert!(labels_of(&db, "broken").await.is_empty());
        let good_row = db.cron().list().await.unwrap().into_iter().find(|l| l.entry.name == "good").unwrap();
        assert_eq!(good_row.entry.job.queue, "default", "the declared queue");
        assert_eq!(good_row.entry.job.max_attempts, 20, "the declared attempts");

        let fixed = serde_json::json!({ "probe": p.key, "label": "fixed", "sleep_ms": 0 });
        db.cron().save_spec(spec("broken", fixed)).await.unwrap();
        wait_for("the fixed entry firing", LONG, || async { (!labels_of(&db, "broken").await.is_empty()).then_some(()) })
            .await;
        let row = db.cron().list().await.unwrap().into_iter().find(|l| l.entry.name == "broken").unwrap();
        assert_eq!(row.entry.error, None, "the error is cleared once it runs");
        rt.shutdown().await.unwrap();
    }
}

conformance! {
    /// A stored entry whose schedule changes starts afresh, as a new entry does: the slots of
    /// the new expression that passed before the change are not "missed" (with run-once, the
    /// newest would fire at once).
    async fn a_changed_schedule_starts_afresh_instead_of_firing_its_past_slots(db) {
        let p = Probe::new();
        let rt = node(&db).start().await.unwrap();
        // Once a year: the leader records its newest past slot (1 January) and fires nothing.
        let yearly = Record { probe: p.key.clone(), label: "yearly".into(), sleep_ms: 0 };
        let yearly = CronEntry::new("0 0 1 1 *", yearly).unwrap().named("nightly").missed(MissedSlots::RunOnce);
        db.cron().save(yearly).await.unwrap();
        wait_for("the first schedule's last slot", LONG, || async {
            db.cron().list().await.unwrap()[0].entry.last_slot.map(|_| ())
        })
        .await;
        let job = Record { probe: p.key.clone(), label: "after".into(), sleep_ms: 0 };
        let changed = CronEntry::new("0 3 * * *", job).unwrap().named("nightly").missed(MissedSlots::RunOnce);
        db.cron().save(changed).await.unwrap();
        settled_count(&db, "nightly").await;
        let labels = labels_of(&db, "nightly").await;
        assert!(!labels.contains(&"after".to_string()), "the new schedule fired a past slot: {labels:?}");
        let listed = db.cron().list().await.unwrap();
        assert_eq!(listed[0].entry.expr, "0 3 * * *");
        rt.shutdown().await.unwrap();
    }
}
