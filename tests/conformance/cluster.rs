//! Several nodes on one database, in one process: leadership, rescue, pruning, cron, persisted
//! queue settings and global limits. Each test runs on both engines.

use std::collections::HashSet;
use std::time::Duration;

use jobsmith::prelude::*;
use jobsmith::{CronEntry, JobState, MissedSlots, Retention, RuntimeBuilder};

use super::harness::{LONG, TestDb, wait_for};
use super::jobs::{Blocks, Record};
use super::probe::Probe;
use super::runtime::record;

/// A node with short cluster timings, so tests see takeovers and rescues in about a second.
fn fast(db: &TestDb, name: &str) -> RuntimeBuilder {
    db.runtime()
        .node_name(name)
        .poll_interval(Duration::from_millis(300))
        .heartbeat_interval(Duration::from_millis(100))
        .node_ttl(Duration::from_millis(1500))
        .leader_lease(Duration::from_millis(1000))
        .rescue_interval(Duration::from_millis(200))
}

conformance! {
    async fn exactly_one_leader_and_a_clean_shutdown_hands_over_at_once(db) {
        let a = fast(&db, "node-a").queue("default", 1).start().await.unwrap();
        let b = fast(&db, "node-b").queue("default", 1).start().await.unwrap();
        let first = wait_for("a leader", LONG, || async { db.engine().leader().await.unwrap() }).await;
        assert!(a.is_leader() != b.is_leader() || !(a.is_leader() && b.is_leader()));
        wait_for("the leader to know it", LONG, || async { (a.is_leader() ^ b.is_leader()).then_some(()) }).await;
        let (leader, follower) = if first == "node-a" { (a, b) } else { (b, a) };
        assert!(leader.is_leader() && !follower.is_leader());
        let names: Vec<String> = follower.nodes().await.unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names, vec!["node-a".to_string(), "node-b".to_string()]);

        leader.shutdown().await.unwrap();
        wait_for("the follower to take over", Duration::from_secs(10), || async { follower.is_leader().then_some(()) })
            .await;
        assert_ne!(db.engine().leader().await.unwrap().as_deref(), Some(first.as_str()));
        let names: Vec<String> = follower.nodes().await.unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names.len(), 1, "the stopped node removed its row: {names:?}");
        follower.shutdown().await.unwrap();
        assert_eq!(db.engine().leader().await.unwrap(), None, "the last leader resigned");
    }
}

conformance! {
    async fn a_node_that_opts_out_never_leads(db) {
        let web = fast(&db, "web").leader_eligible(false).start().await.unwrap();
        let worker = fast(&db, "worker").queue("default", 1).start().await.unwrap();
        wait_for("the worker to lead", LONG, || async { worker.is_leader().then_some(()) }).await;
        worker.shutdown().await.unwrap();
        // With the only eligible node gone, nobody leads.
        wait_for("the lease to lapse", LONG, || async { db.engine().leader().await.unwrap().is_none().then_some(()) }).await;
        assert!(!web.is_leader());
        web.shutdown().await.unwrap();
    }
}

conformance! {
    async fn jobs_of_a_dead_node_are_rescued_and_those_of_a_live_node_never(db) {
        let p = Probe::new();
        // A job "running" on a node that no longer heartbeats, and one on a node that does.
        let orphan = db.insert(record(&p, "orphan", 0)).await.unwrap().job.id;
        db.exec(&format!(
            "UPDATE {{jobs}} SET state = 'executing', attempt = 1, attempted_by = 'crashed-node' WHERE id = {orphan}"
        ))
        .await;
        let live = fast(&db, "live").queue("slow", 1).start().await.unwrap();
        let blocking = db.insert(Blocks { probe: p.key.clone() }.on_queue("slow")).await.unwrap().job.id;
        wait_for("the live job to start", LONG, || async { (p.start_count() >= 1).then_some(()) }).await;

        let leader = fast(&db, "leader").queue("default", 2).start().await.unwrap();
        let job = db.wait_job(orphan, JobState::Completed).await;
        assert_eq!(job.attempt, 2);
        let error = job.errors[0]["error"].as_str().unwrap();
        assert!(error.contains("rescued") && error.contains("crashed-node"), "{error}");

        // Several rescue passes later the live node's job is still its own.
        tokio::time::sleep(Duration::from_millis(1500)).await; // a negative check: give rescue passes time to (not) act
        let still = db.job(blocking).await;
        assert_eq!((still.state, still.attempt, still.attempted_by.as_deref()), (JobState::Executing, 1, Some("live")));
        assert!(still.errors.is_empty());
        live.cancel_job(blocking).await.unwrap();
        live.shutdown().await.unwrap();
        leader.shutdown().await.unwrap();
    }
}

conformance! {
    async fn a_rescued_job_without_attempts_left_is_discarded(db) {
        let p = Probe::new();
        let id = db.insert(record(&p, "last", 0).build_insert().max_attempts(1)).await.unwrap().job.id;
        db.exec(&format!("UPDATE {{jobs}} SET state = 'executing', attempt = 1, attempted_by = 'gone' WHERE id = {id}")).await;
        let rt = fast(&db, "n").queue("default", 1).start().await.unwrap();
        let job = db.wait_job(id, JobState::Discarded).await;
        rt.shutdown().await.unwrap();
        assert!(job.errors[0]["error"].as_str().unwrap().contains("rescued"));
        assert_eq!(p.start_count(), 0);
    }
}

conformance! {
    async fn pruning_deletes_old_finished_rows_in_batches_and_keeps_the_rest(db) {
        let jobs = (0..250).map(|i| crate::jobs::A { n: i }.build().unwrap()).collect();
        let ids: Vec<i64> = db.insert_all(jobs).await.unwrap().iter().map(|j| j.job.id).collect();
        // 200 completed long ago, 20 completed just now, 10 discarded long ago, 20 waiting.
        let old_ms = 48 * 3600 * 1000_i64;
        let (lo, mid, hi) = (ids[0], ids[199], ids[219]);
        match db.kind {
            crate::harness::Kind::Postgres => {
                db.exec(&format!("UPDATE {{jobs}} SET state = 'completed', completed_at = now() - interval '48 hours' WHERE id BETWEEN {lo} AND {mid}")).await;
                db.exec(&format!("UPDATE {{jobs}} SET state = 'completed', completed_at = now() WHERE id > {mid} AND id <= {hi}")).await;
                db.exec(&format!("UPDATE {{jobs}} SET state = 'discarded', discarded_at = now() - interval '30 days' WHERE id > {hi} AND id <= {}", hi + 10)).await;
            }
            crate::harness::Kind::Sqlite => {
                let now = chrono::Utc::now().timestamp_millis();
                db.exec(&format!("UPDATE {{jobs}} SET state = 'completed', completed_at = {} WHERE id BETWEEN {lo} AND {mid}", now - old_ms)).await;
                db.exec(&format!("UPDATE {{jobs}} SET state = 'completed', completed_at = {now} WHERE id > {mid} AND id <= {hi}")).await;
                db.exec(&format!("UPDATE {{jobs}} SET state = 'discarded', discarded_at = {} WHERE id > {hi} AND id <= {}", now - 30 * 24 * 3600 * 1000_i64, hi + 10)).await;
            }
        }
        let one_day = Duration::from_secs(24 * 3600);
        let retention = Retention { completed: one_day, cancelled: one_day, discarded: Duration::from_secs(7 * 24 * 3600) };
        // A single bounded statement deletes at most its batch.
        assert_eq!(db.engine().prune(&retention, 50).await.unwrap(), 50);
        let rt = fast(&db, "pruner").retention(retention, Duration::from_millis(200)).start().await.unwrap();
        db.wait_state_count(JobState::Completed, 20).await;
        wait_for("old discarded rows to go", LONG, || async { (db.count_state(JobState::Discarded).await == 0).then_some(()) }).await;
        rt.shutdown().await.unwrap();
        assert_eq!(db.count_state(JobState::Available).await, 20, "waiting jobs are never pruned");
        assert_eq!(db.count_all().await, 40);
    }
}

conformance! {
    async fn a_seconds_cron_fires_each_slot_exactly_once_across_two_nodes(db) {
        let p = Probe::new();
        let entry = || {
            CronEntry::new("* * * * * *", Record { probe: p.key.clone(), label: "tick".into(), sleep_ms: 0 })
                .unwrap()
                .named("every-second")
                .missed(MissedSlots::RunAll { max: 100 })
        };
        let a = fast(&db, "cron-a").queue("default", 2).cron_entry(entry()).start().await.unwrap();
        let b = fast(&db, "cron-b").queue("default", 2).cron_entry(entry()).start().await.unwrap();
        wait_for("four firings", LONG, || async { (db.count_state(JobState::Completed).await >= 4).then_some(()) }).await;
        // Hand leadership over mid-stream: the other node continues the same slots.
        let (first, second) = if a.is_leader() { (a, b) } else { (b, a) };
        first.shutdown().await.unwrap();
        let before = db.count_all().await;
        wait_for("firings under the new leader", LONG, || async { (db.count_all().await >= before + 3).then_some(()) }).await;
        second.shutdown().await.unwrap();

        let mut slots = Vec::new();
        for id in 1..=db.scalar("SELECT max(id) FROM {jobs}").await {
            if let Some(job) = db.engine().get_job(id).await.unwrap() {
                slots.push(chrono::DateTime::parse_from_rfc3339(job.meta["cron_slot"].as_str().unwrap()).unwrap());
            }
        }
        slots.sort();
        let distinct: HashSet<_> = slots.iter().collect();
        assert_eq!(distinct.len(), slots.len(), "a slot fired twice: {slots:?}");
        for w in slots.windows(2) {
            assert_eq!((w[1] - w[0]).num_seconds(), 1, "a slot was skipped: {slots:?}");
        }
    }
}

conformance! {
    async fn pause_everywhere_is_persisted_for_nodes_started_later(db) {
        let p = Probe::new();
        let first = fast(&db, "first").queue("default", 2).start().await.unwrap();
        first.pause_queue_everywhere("default").await.unwrap();
        assert!(first.queues()[0].paused);
        let later = fast(&db, "later").queue("default", 2).start().await.unwrap();
        assert!(later.queues()[0].paused, "a node started later comes up paused");
        db.insert(record(&p, "waits", 0)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await; // a negative check: two polls pass without a start
        assert_eq!(p.start_count(), 0);

        later.scale_queue_everywhere("default", 7).await.unwrap();
        first.resume_queue_everywhere("default").await.unwrap();
        wait_for("the other node to resume", LONG, || async { (!later.queues()[0].paused).then_some(()) }).await;
        wait_for("the job to run", LONG, || async { (p.start_count() == 1).then_some(()) }).await;
        wait_for("the scale to reach the first node", LONG, || async { (first.queues()[0].limit == 7).then_some(()) }).await;
        first.shutdown().await.unwrap();
        later.shutdown().await.unwrap();
    }
}

conformance! {
    async fn a_global_limit_holds_across_nodes(db) {
        let p = Probe::new();
        let jobs = (0..60).map(|i| record(&p, format!("g{i}"), 40).build().unwrap()).collect();
        db.insert_all(jobs).await.unwrap();
        let a = fast(&db, "ga").queue("default", 5).global_limit("default", 3).start().await.unwrap();
        let b = fast(&db, "gb").queue("default", 5).start().await.unwrap();
        assert_eq!(b.queues()[0].global_limit, Some(3), "the limit is persisted for every node");
        db.wait_state_count(JobState::Completed, 60).await;
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
        // The probe counts per queue inside this process, across both nodes.
        let peak = p.peak.lock().unwrap()["default"];
        assert!((2..=3).contains(&peak), "peak {peak} with a global limit of 3");
    }
}

conformance! {
    /// A crashed process restarted under the same node name (containers reuse hostname and pid)
    /// takes back what its earlier run left executing instead of hiding it from rescue forever.
    async fn a_restart_under_the_same_name_takes_back_its_old_jobs(db) {
        let p = Probe::new();
        let id = db.insert(record(&p, "left-behind", 0)).await.unwrap().job.id;
        db.exec(&format!("UPDATE {{jobs}} SET state = 'executing', attempt = 1, attempted_by = 'web-1' WHERE id = {id}")).await;
        let rt = fast(&db, "web-1").node_ttl(Duration::from_secs(3600)).queue("default", 1).start().await.unwrap();
        let job = db.wait_job(id, JobState::Completed).await;
        rt.shutdown().await.unwrap();
        assert!(job.errors[0]["error"].as_str().unwrap().contains("restarted"), "{:?}", job.errors);
    }
}
