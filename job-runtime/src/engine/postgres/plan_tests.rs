//! The hot statements keep index plans when PostgreSQL switches their prepared statements to
//! generic plans (which it does after five runs when the estimates say so), and on a table that
//! was never analysed. A generic plan knows no `LIMIT` value, and a table without statistics
//! looks big; joining rows back to the table once made both hash-join a scan of the whole table. Needs PostgreSQL (`DATABASE_URL`, else the local default);
//! it fails, never skips, without one.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::sql::Statements;

fn base_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// The plan of `sql` prepared with `types` and run with `args` (SQL literals): generic or custom
/// as the session's `plan_cache_mode` decides.
async fn plan_of(conn: &mut PgConnection, sql: &str, types: &str, args: &str) -> String {
    sqlx::query(AssertSqlSafe(format!("PREPARE plan_probe ({types}) AS {sql}")))
        .execute(&mut *conn)
        .await
        .unwrap();
    let lines: Vec<String> =
        sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN EXECUTE plan_probe ({args})")))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    sqlx::query("DEALLOCATE plan_probe").execute(&mut *conn).await.unwrap();
    lines.join("\n")
}

/// A connection and a new, migrated schema `jobsmith_<name>_<pid>` (dropped first if an earlier
/// run left it). Fails loudly without PostgreSQL.
async fn migrated_schema(name: &str) -> (PgConnection, String) {
    let url = base_url();
    let mut conn = PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!("this test needs PostgreSQL at {url} ({e}); run `bash scripts/test.sh`, which starts one, or set DATABASE_URL")
    });
    let schema = format!("jobsmith_{name}_{}", std::process::id());
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
        .execute(&mut conn)
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    super::migrate::migrate(&pool, &schema).await.unwrap();
    pool.close().await;
    (conn, schema)
}

/// The guard parameter of `ack_completed` for `ids`: attempt 1, one claim time each.
fn completions_guard(ids: &[String]) -> String {
    let entries: Vec<String> =
        ids.iter().map(|id| format!(r#""{id}": [1, "2026-01-01T00:00:00.000000Z"]"#)).collect();
    format!("{{{}}}", entries.join(", "))
}

/// The guard parameter of the general `ack` for `ids`: a retry in 1 s each.
fn retries_guard(ids: &[String]) -> String {
    let entries: Vec<String> = ids
        .iter()
        .map(|id| {
            format!(r#""{id}": ["retryable", 1000, "boom", 0, 1, "2026-01-01T00:00:00.000000Z", null]"#)
        })
        .collect();
    format!("{{{}}}", entries.join(", "))
}

/// A table of history: statistics taken when every row was finished, then rows claimed since
/// (as in any table that has run for a while between two ANALYZEs). Under a generic plan the
/// statistics say the executing rows are one, and joining 700 results back to them by a nested
/// loop rescans the input once per row; measured with 1,000,000 rows of history, 78 ms per 1,000
/// results instead of 10 (docs/benchmarks.md). The result statements must not join at all.
#[tokio::test]
async fn result_statements_do_not_join_their_input_on_a_table_of_history() {
    let (mut conn, schema) = migrated_schema("history_plans").await;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {schema}.jobs (worker, queue, args, state, attempt, attempted_by, attempted_at, completed_at)
         SELECT 'w', 'q', jsonb_build_object('n', g), 'completed', 1, 'old', now() - interval '1 hour',
                now() - interval '1 hour'
         FROM generate_series(1, 50000) g"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(AssertSqlSafe(format!("VACUUM ANALYZE {schema}.jobs"))).execute(&mut conn).await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {schema}.jobs (worker, queue, args, state, attempt, attempted_by, attempted_at)
         SELECT 'w', 'q', '{{}}', 'executing', 1, 'n', '2026-01-01T00:00:00Z' FROM generate_series(1, 700)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut conn).await.unwrap();
    let ids: Vec<String> = (50_001..50_701).map(|i: i64| i.to_string()).collect();
    let sql = Statements::new(&schema);
    let completed = plan_of(
        &mut conn,
        &sql.ack_completed,
        "bigint[], jsonb, text",
        &format!("'{{{}}}', '{}', 'n'", ids.join(","), completions_guard(&ids)),
    )
    .await;
    let general = plan_of(
        &mut conn,
        &sql.ack,
        "bigint[], jsonb, text",
        &format!("'{{{}}}', '{}', 'n'", ids.join(","), retries_guard(&ids)),
    )
    .await;
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut conn).await.unwrap();
    for (name, plan) in [("ack_completed", completed), ("ack", general)] {
        assert!(!plan.contains("Nested Loop") && !plan.contains("Join"), "{name} joins its input:\n{plan}");
        assert!(plan.contains("jobs_pkey"), "{name} does not use the primary key:\n{plan}");
    }
}

#[tokio::test]
async fn hot_statements_keep_index_plans_without_statistics_and_under_generic_planning() {
    let (mut conn, schema) = migrated_schema("plans").await;
    // A table big enough that a scan costs more than the index: waiting, due, orphaned and
    // finished rows.
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {schema}.jobs (worker, queue, args, state, scheduled_at, attempt, attempted_by, completed_at)
         SELECT 'w', 'q', jsonb_build_object('n', g),
                (ARRAY['executing', 'completed', 'scheduled', 'available', 'available', 'available',
                       'available', 'available'])[1 + g % 8]::{schema}.job_state,
                now() - interval '1 hour', CASE WHEN g % 8 = 0 THEN 1 ELSE 0 END,
                CASE WHEN g % 8 = 0 THEN 'gone' END,
                CASE WHEN g % 8 = 1 THEN now() - interval '30 days' END
         FROM generate_series(1, 80000) g"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let sql = Statements::new(&schema);
    // Recording 700 completions on a table without statistics (never analysed), with the array's
    // real length known to the planner: the case that once hash-joined the whole table.
    let ids: Vec<String> = (0..700).map(|i| (8 * i).to_string()).collect();
    let without_statistics = plan_of(
        &mut conn,
        &sql.ack_completed,
        "bigint[], jsonb, text",
        &format!("'{{{}}}', '{}', 'gone'", ids.join(","), completions_guard(&ids)),
    )
    .await;
    // The same for the general result statement (retries, failures, snoozes).
    let general_without_statistics = plan_of(
        &mut conn,
        &sql.ack,
        "bigint[], jsonb, text",
        &format!("'{{{}}}', '{}', 'gone'", ids.join(","), retries_guard(&ids)),
    )
    .await;
    sqlx::query(AssertSqlSafe(format!("ANALYZE {schema}.jobs"))).execute(&mut conn).await.unwrap();
    sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut conn).await.unwrap();

    let plans = [
        ("ack_completed without statistics", without_statistics),
        ("ack without statistics", general_without_statistics),
        (
            "ack_completed",
            plan_of(
                &mut conn,
                &sql.ack_completed,
                "bigint[], jsonb, text",
                &format!("'{{1,2}}', '{}', 'n'", completions_guard(&["1".into(), "2".into()])),
            )
            .await,
        ),
        ("fetch", plan_of(&mut conn, &sql.fetch, "text, bigint, text, int", "'q', 500, 'node', 500").await),
        (
            "fetch relaxed",
            plan_of(&mut conn, &sql.fetch_relaxed[0], "text, bigint, text, int", "'q', 500, 'node', 500")
                .await,
        ),
        (
            "fetch_after",
            plan_of(
                &mut conn,
                &sql.fetch_after,
                "text, bigint, text, smallint, timestamptz, bigint, int",
                "'q', 500, 'node', 0, now() - interval '2 hours', 0, 500",
            )
            .await,
        ),
        (
            "fetch_limited_after",
            plan_of(
                &mut conn,
                &sql.fetch_limited_after,
                "text, bigint, text, bigint, smallint, timestamptz, bigint, int",
                "'q', 500, 'node', 50, 0, now() - interval '2 hours', 0, 50",
            )
            .await,
        ),
        ("stage", plan_of(&mut conn, &sql.stage, "bigint, text", "500, 'chan'").await),
        (
            "rescue",
            plan_of(
                &mut conn,
                &sql.rescue,
                "bigint, bigint, text, text, bigint",
                "1000, 500, 'chan', 'me', 3500",
            )
            .await,
        ),
        (
            "prune",
            plan_of(&mut conn, &sql.prune, "bigint, bigint, bigint, bigint", "1000, 1000, 1000, 500").await,
        ),
    ];
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut conn).await.unwrap();
    for (name, plan) in plans {
        // The row-changing step must reach its rows through the primary key. The result
        // statements hash their own input (hundreds of rows) to join it to the rows found by key,
        // which is fine; what they must never do is scan the whole table.
        if name == "prune" {
            // Only rows older than the shortest retention are read, not all finished ones.
            assert!(plan.contains("jobs_prune_idx"), "prune reads every finished row:\n{plan}");
        }
        if name.starts_with("ack") {
            assert!(!plan.contains("Seq Scan on jobs"), "{name} scans the whole table:\n{plan}");
        } else {
            assert!(!plan.contains("Hash Join"), "{name} joins by hash:\n{plan}");
        }
        assert!(plan.contains("jobs_pkey"), "{name} does not use the primary key:\n{plan}");
    }
}

/// The gauges' frequent count (`count_unfinished`) reads the partial indexes, not the finished
/// rows, on a table that is mostly history.
#[tokio::test]
async fn counting_unfinished_jobs_reads_no_finished_rows() {
    let (mut conn, schema) = migrated_schema("unfinished").await;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {schema}.jobs (worker, queue, state, attempt, attempted_by, completed_at, scheduled_at)
         SELECT 'w', 'q', (CASE WHEN g <= 150 THEN (ARRAY['available', 'scheduled', 'executing'])[1 + g % 3]
                                ELSE 'completed' END)::{schema}.job_state,
                1, 'n', CASE WHEN g > 150 THEN now() END, now() + CASE WHEN g % 3 = 1 THEN interval '1 hour' ELSE interval '0' END
         FROM generate_series(1, 50000) g"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(AssertSqlSafe(format!("ANALYZE {schema}.jobs"))).execute(&mut conn).await.unwrap();
    let sql = Statements::new(&schema);
    let plan = plan_of(&mut conn, &sql.count_unfinished, "int", "0").await;
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut conn).await.unwrap();
    assert!(!plan.contains("Seq Scan on jobs"), "count_unfinished reads the whole table:\n{plan}");
}

/// The relaxed fetch turns `synchronous_commit` off for its own transaction only (also when it
/// takes nothing, when there is nothing to flush anyway); the durable one leaves it alone; nothing
/// leaks into the session (a pooled connection goes back to its next user unchanged).
#[tokio::test]
async fn a_relaxed_fetch_relaxes_its_own_commit_and_nothing_else() {
    let (mut conn, schema) = migrated_schema("relaxed").await;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {schema}.jobs (worker, queue, args) SELECT 'w', 'q', '{{}}' FROM generate_series(1, 4)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let sql = Statements::new(&schema);
    async fn setting(conn: &mut PgConnection) -> String {
        sqlx::query_scalar("SELECT current_setting('synchronous_commit')")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    }
    async fn fetch(conn: &mut PgConnection, sql: &str, queue: &str) -> usize {
        sqlx::query(AssertSqlSafe(sql.to_string()))
            .bind(queue)
            .bind(1i64)
            .bind("n")
            .bind(1i32)
            .fetch_all(&mut *conn)
            .await
            .unwrap()
            .len()
    }
    assert_eq!(setting(&mut conn).await, "on", "the server default this test starts from");
    let mut seen = Vec::new();
    for (statement, queue) in
        [(&sql.fetch_relaxed[0], "q"), (&sql.fetch, "q"), (&sql.fetch_relaxed[0], "empty")]
    {
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        let taken = fetch(&mut conn, statement, queue).await;
        seen.push((taken, setting(&mut conn).await));
        sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    }
    assert_eq!(
        seen,
        [(1, "off".to_string()), (1, "on".to_string()), (0, "off".to_string())],
        "relaxed with a row taken / durable / relaxed with nothing taken"
    );
    // In its own implicit transaction, as the engine runs it: the session keeps its setting.
    assert_eq!(fetch(&mut conn, &sql.fetch_relaxed[0], "q").await, 1);
    assert_eq!(setting(&mut conn).await, "on");
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut conn).await.unwrap();
}

/// A sequenced queue's partitioned fetch (as it runs: under its generic plan) finds each
/// sequence's head by the sequence index, whatever the policy filter (the queue's or the
/// sequence's own): written as an OR with the index's predicate, the probe walked the primary key
/// (ADR 27).
#[tokio::test]
async fn a_sequenced_fetch_probes_the_sequence_index_under_its_generic_plan() {
    let (mut conn, schema) = migrated_schema("plan_sequence").await;
    let sql = Statements::new(&schema);
    sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut conn).await.unwrap();
    let plan = plan_of(
        &mut conn,
        &sql.fetch_partitioned,
        "text, int, text, int, text, int, bigint, int, int, bigint, timestamptz, int, text",
        "'q', 10, 'node', NULL, NULL, NULL, 500, 10, NULL, NULL, NULL, NULL, 'continue'",
    )
    .await;
    assert!(plan.contains("jobs_sequence_idx"), "the head probe does not use the sequence index:\n{plan}");
    assert!(plan.contains("sequence_policies_pkey"), "a sequence's own policy is not probed by key:\n{plan}");
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut conn).await.unwrap();
}
