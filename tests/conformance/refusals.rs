//! Inputs that can never succeed are refused where they enter: out-of-range options, rows that
//! could never run, settings for a queue nobody knows, an unmigrated database. Each test runs on
//! both engines.

use jobsmith::prelude::*;
use jobsmith::{JobState, Pool};

use super::harness::{Kind, TestDb};
use super::jobs::WithDefaults;

fn job() -> WithDefaults {
    WithDefaults { to: "a@example.com".into() }
}

conformance! {
    async fn max_attempts_outside_one_to_the_limit_is_refused_naming_the_range(db) {
        for bad in [0_u32, 2_147_483_648, 3_000_000_000, u32::MAX] {
            let err = db.insert(job().build_insert().max_attempts(bad)).await.unwrap_err().to_string();
            assert!(
                err.contains("max_attempts must be 1 to 2147483647") && err.contains(&format!("got {bad}")),
                "{err}"
            );
        }
        assert_eq!(db.count_all().await, 0, "nothing was inserted");
        let stored = db.insert(job().build_insert().max_attempts(2_147_483_647)).await.unwrap().job;
        assert_eq!(stored.max_attempts, 2_147_483_647, "the limit itself is stored");
    }
}

conformance! {
    async fn a_waiting_row_without_an_attempt_left_is_refused_by_the_table(db) {
        // Hand-written rows, as an operator's SQL or another tool might write them.
        let insert = |state: &str, attempt: i32, max: i32| match db.kind {
            Kind::Postgres => format!(
                "INSERT INTO {{jobs}} (worker, state, attempt, max_attempts) VALUES ('w', '{state}', {attempt}, {max})"
            ),
            Kind::Sqlite => format!(
                "INSERT INTO {{jobs}} (worker, state, attempt, max_attempts, inserted_at, scheduled_at) \
                 VALUES ('w', '{state}', {attempt}, {max}, 0, 0)"
            ),
        };
        for state in ["available", "scheduled", "retryable"] {
            let err = db.try_exec(&insert(state, 3, 3)).await.expect_err(state);
            assert!(err.contains("waiting_has_attempt_left"), "{state}: {err}");
        }
        // Running the last attempt, or finished after it, is fine.
        for state in ["executing", "completed", "discarded"] {
            db.try_exec(&insert(state, 3, 3)).await.unwrap_or_else(|e| panic!("{state}: {e}"));
        }
        // More attempts than allowed is refused in every state.
        assert!(db.try_exec(&insert("discarded", 4, 3)).await.is_err());

        // An update that would leave a waiting row without attempts is refused too.
        let id = db.insert(job()).await.unwrap().job.id;
        let err = db
            .try_exec(&format!("UPDATE {{jobs}} SET attempt = max_attempts WHERE id = {id}"))
            .await
            .expect_err("update");
        assert!(err.contains("waiting_has_attempt_left"), "{err}");
        assert_eq!(db.job(id).await.attempt, 0);
    }
}

conformance! {
    /// The migration that adds the rule first discards the rows that break it, saying why.
    async fn the_migration_discards_waiting_rows_without_an_attempt_left(db) {
        // Undo the migration, write a row it must repair, and let `migrate` apply it again.
        let (version, undo): (i32, &[&str]) = match db.kind {
            Kind::Postgres => (4, &[
                "ALTER TABLE {jobs} DROP CONSTRAINT waiting_has_attempt_left",
                "DELETE FROM jobsmith.jobsmith_migrations WHERE version = 4",
            ]),
            // The rule is a CHECK of the table since migration 5 (a rebuild of the table); the
            // row that breaks it is written with CHECK constraints ignored, on one connection.
            // Migration 5 rebuilds the table as it was then, so the later migrations that add
            // jobs columns (7: awaited, 10: weight, 11: partition key) are applied again after it.
            Kind::Sqlite => (5, &["DELETE FROM jobsmith_migrations WHERE version IN (5, 7, 10, 11)"]),
        };
        for sql in undo {
            db.exec(sql).await;
        }
        let stuck = db.insert(job()).await.unwrap().job.id;
        let fine = db.insert(job()).await.unwrap().job.id;
        let break_rule = format!("UPDATE {{jobs}} SET attempt = max_attempts WHERE id = {stuck}");
        match db.kind {
            Kind::Postgres => db.exec(&break_rule).await,
            Kind::Sqlite => db.exec_unchecked(&break_rule).await,
        }
        db.migrate().await.unwrap();

        let row = db.job(stuck).await;
        assert_eq!(row.state, JobState::Discarded);
        assert!(row.discarded_at.is_some());
        let entry = row.errors.last().expect("an error entry");
        assert_eq!(
            entry["error"],
            format!("discarded by migration {version}: attempt 7 >= max_attempts 7, it could never run")
        );
        assert_eq!(entry["attempt"], 7);
        assert!(chrono::DateTime::parse_from_rfc3339(entry["at"].as_str().unwrap()).is_ok(), "{entry}");
        assert_eq!(db.job(fine).await.state, JobState::Available, "rows with attempts left are untouched");
        let err = db.try_exec(&format!("UPDATE {{jobs}} SET attempt = max_attempts WHERE id = {fine}")).await;
        assert!(err.unwrap_err().contains("waiting_has_attempt_left"), "the rule holds again");
    }
}

conformance! {
    async fn settings_for_a_queue_nobody_knows_are_refused(db) {
        let rt = db.runtime().queue("default", 1).start().await.unwrap();
        let tries = [
            rt.pause_queue_everywhere("nosuch").await,
            rt.resume_queue_everywhere("nosuch").await,
            rt.scale_queue_everywhere("nosuch", 2).await,
            rt.set_global_limit("nosuch", Some(2)).await,
        ];
        for result in tries {
            let err = result.expect_err("an unknown queue").to_string();
            assert!(err.contains("queue `nosuch`") && err.contains("not run by any node"), "{err}");
        }
        let stored = db.engine().queue_settings().await.unwrap();
        assert!(stored.iter().all(|s| s.name != "nosuch"), "nothing was stored: {stored:?}");

        // Known queues: run by a node, with jobs, or with stored settings.
        rt.pause_queue_everywhere("default").await.unwrap();
        db.insert(job()).await.unwrap(); // queue `mailers`, which no node runs
        rt.scale_queue_everywhere("mailers", 3).await.unwrap();
        rt.shutdown().await.unwrap();
        // The node is gone, but `default` has stored settings.
        let web = db.runtime().start().await.unwrap();
        web.resume_queue_everywhere("default").await.unwrap();
        web.shutdown().await.unwrap();
        let stored = db.engine().queue_settings().await.unwrap();
        let names: Vec<&str> = stored.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["default", "mailers"]);
    }
}

/// Inserting into, or starting a node on, a database nobody migrated says to migrate, on both
/// engines and through every way in.
mod an_unmigrated_database_says_to_migrate {
    use super::*;

    fn check(err: jobsmith::Error, how: &str) {
        let text = err.to_string();
        assert!(
            text.contains("jobsmith's tables are missing in schema `jobsmith`")
                && text.contains("run migrations first (`db.migrate()` or `jobsmith migrate`)"),
            "{how}: {text}"
        );
    }

    async fn run(db: TestDb) {
        check(db.insert(job()).await.unwrap_err(), "Db::insert");
        let through_pool = match db.pool() {
            Pool::Postgres(pool) => job().insert(pool).await,
            Pool::Sqlite(pool) => job().insert(pool).await,
        };
        check(through_pool.unwrap_err(), "insert through the pool");
        check(db.runtime().queue("default", 1).start().await.unwrap_err(), "RuntimeBuilder::start");
        db.migrate().await.unwrap();
        assert_eq!(db.insert(job()).await.unwrap().job.state, JobState::Available);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(TestDb::empty(Kind::Postgres).await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(TestDb::empty(Kind::Sqlite).await).await
    }
}

conformance! {
    async fn timings_that_would_break_leadership_or_liveness_are_refused_at_start(db) {
        use std::time::Duration;
        // A heartbeat not under half the lease: a leader could not step down in time.
        let err = db
            .runtime()
            .heartbeat_interval(Duration::from_secs(3))
            .leader_lease(Duration::from_secs(5))
            .node_ttl(Duration::from_secs(30))
            .start()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be under half the leader_lease"), "{err}");
        // A TTL within one heartbeat plus a beat's deadline: live nodes would look dead.
        let err = db
            .runtime()
            .heartbeat_interval(Duration::from_secs(1))
            .leader_lease(Duration::from_secs(5))
            .node_ttl(Duration::from_secs(3))
            .start()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("node_ttl (3s) must be more than heartbeat_interval + leader_lease / 2 (3.5s)"), "{err}");
        // The defaults pass.
        db.runtime().start().await.unwrap().shutdown().await.unwrap();
    }
}

conformance! {
    async fn values_that_cannot_work_are_refused_at_start_not_clamped(db) {
        use std::time::Duration;
        let err = db.runtime().queue("default", 1).fetch_batch(0).start().await.unwrap_err().to_string();
        assert!(err.contains("fetch_batch must be at least 1, got 0"), "{err}");
        let err = db
            .runtime()
            .ack_batching(0, Duration::from_millis(1))
            .start()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("ack_batching's max must be at least 1"), "{err}");
        let err = db.runtime().poll_interval(Duration::ZERO).start().await.unwrap_err().to_string();
        assert!(err.contains("poll_interval must be longer than zero"), "{err}");
    }
}
