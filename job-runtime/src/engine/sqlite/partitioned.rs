//! The choice of a partitioned fetch on SQLite (ADR 24), made inside the caller's IMMEDIATE
//! transaction: which available jobs to claim, partitions in turn. Each step is a probe of the
//! partial partition index; in process, a handful of short statements cost less than one
//! statement that SQLite would have to materialise whole.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::error::Result;
use crate::types::{FetchRequest, PartitionRequest, UNPARTITIONED_LOOKAHEAD, partition_share};

/// Per partition (`None`: jobs of no partition), its heads in run order, each with its weight.
type Heads<'a> = Vec<(Option<&'a str>, Vec<(i64, i64)>)>;

/// The ids to claim, in the order they were chosen, and the partition the choice ended at.
///
/// Walks the partitions with available jobs in key order from the one after `parts.after` to
/// the last, then from the first up to the cursor, and stops once it has as many partitions
/// with room as the fetch has rows (so it costs the partitions it serves and the full ones it
/// passes, never all of them). Each open partition gives its head in run order, an equal share
/// of the rows at most; the rows are taken turn by turn. Jobs of no partition among the first
/// [`UNPARTITIONED_LOOKAHEAD`] of the queue count as one more partition.
pub(super) async fn pick(
    conn: &mut SqliteConnection,
    p: &str,
    r: &FetchRequest<'_>,
    parts: PartitionRequest<'_>,
) -> Result<(Vec<i64>, Option<String>)> {
    let mut room = i64::from(r.limit);
    if let Some(global) = r.global_limit {
        let executing: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT coalesce(sum(weight), 0) FROM {p}jobs WHERE state = 'executing' AND queue = ?1"
        )))
        .bind(r.queue)
        .fetch_one(&mut *conn)
        .await?;
        room = room.min(i64::from(global) - executing).max(0);
    }
    if room == 0 {
        return Ok((Vec::new(), None));
    }
    let busy: HashMap<String, i64> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT partition_key, count(*) FROM {p}jobs
         WHERE state = 'executing' AND queue = ?1 AND partition_key IS NOT NULL GROUP BY partition_key"
    )))
    .bind(r.queue)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let per_partition = i64::from(parts.limit);

    // The open partitions in walk order, each with its room: the walk after the cursor, then
    // (when that found too few) from the first up to the cursor, each one statement that
    // probes the index once per partition, for at most the partitions it could need (those
    // with room, and the full ones, no more than the executing partitions).
    let wanted = room as usize + busy.len();
    let mut open: Vec<(String, i64)> = Vec::new();
    let mut seen = 0;
    for from in [parts.after, None] {
        if from.is_none() && parts.after.is_none() && seen > 0 {
            break;
        }
        let keys = walk(conn, p, r.queue, from.unwrap_or(""), wanted - seen).await?;
        seen += keys.len();
        for key in keys {
            // The second walk stops where the first began.
            if from.is_none() && parts.after.is_some_and(|after| key.as_str() > after) {
                break;
            }
            let running = busy.get(&key).copied().unwrap_or(0);
            if running < per_partition && (open.len() as i64) < room {
                open.push((key, per_partition - running));
            }
        }
        if open.len() as i64 >= room || seen >= wanted || parts.after.is_none() {
            break;
        }
    }

    let unkeyed: Vec<(i64, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT id, weight FROM (
             SELECT id, partition_key, weight FROM {p}jobs
             WHERE state = 'available' AND queue = ?1 AND attempt < max_attempts
             ORDER BY priority, scheduled_at, id
             LIMIT ?2)
         WHERE partition_key IS NULL"
    )))
    .bind(r.queue)
    .bind(i64::from(UNPARTITIONED_LOOKAHEAD))
    .fetch_all(&mut *conn)
    .await?;
    let partitions = open.len() as u32 + u32::from(!unkeyed.is_empty());
    let each = i64::from(partition_share(room as u32, partitions));

    // The heads of every open partition in one statement: per partition the first `each` in
    // run order (a correlated probe of the partition index), then at most its room.
    let keys: Vec<&str> = open.iter().map(|(k, _)| k.as_str()).collect();
    let rows: Vec<(String, i64, i64)> = if keys.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT k.value, j.id, j.weight FROM json_each(?2) k JOIN {p}jobs j ON j.id IN (
                 SELECT id FROM {p}jobs
                 WHERE state = 'available' AND queue = ?1 AND partition_key = k.value AND attempt < max_attempts
                 ORDER BY priority, scheduled_at, id
                 LIMIT ?3)
             ORDER BY k.key, j.priority, j.scheduled_at, j.id"
        )))
        .bind(r.queue)
        .bind(serde_json::to_string(&keys)?)
        .bind(each)
        .fetch_all(&mut *conn)
        .await?
    };
    // Jobs of no partition first in each turn, so they are never the ones a full fetch cuts;
    // then the partitions in walk order. Each head with its weight (as the fetch counts it).
    let cap = i64::from(r.weight_cap());
    let mut heads: Heads<'_> = Vec::with_capacity(open.len() + 1);
    heads
        .push((None, unkeyed.into_iter().take(each as usize).map(|(id, w)| (id, w.clamp(1, cap))).collect()));
    heads.extend(open.iter().map(|(k, _)| (Some(k.as_str()), Vec::new())));
    let place: HashMap<&str, usize> =
        open.iter().enumerate().map(|(i, (k, _))| (k.as_str(), i + 1)).collect();
    for (key, id, weight) in &rows {
        let i = place[key.as_str()];
        if (heads[i].1.len() as i64) < open[i - 1].1 {
            heads[i].1.push((*id, (*weight).clamp(1, cap)));
        }
    }

    // Turn by turn: every partition's first, then every second, while the weights fit the
    // room (the first that does not ends the fetch: no lighter job passes it).
    let mut picked = Vec::new();
    let mut filled = 0;
    let mut last = None;
    let longest = heads.iter().map(|(_, ids)| ids.len()).max().unwrap_or(0);
    'turns: for turn in 0..longest {
        for (key, ids) in &heads {
            if let Some((id, weight)) = ids.get(turn) {
                if filled + weight > room {
                    break 'turns;
                }
                filled += weight;
                picked.push(*id);
                if key.is_some() {
                    last = *key;
                }
            }
        }
    }
    Ok((picked, last.map(str::to_string)))
}

/// Up to `most` partitions with available jobs after `after` in key order, one probe of the
/// partition index each (a recursive walk that stops at `most`).
async fn walk(
    conn: &mut SqliteConnection,
    p: &str,
    queue: &str,
    after: &str,
    most: usize,
) -> Result<Vec<String>> {
    if most == 0 {
        return Ok(Vec::new());
    }
    let next = format!(
        "SELECT min(partition_key) FROM {p}jobs
         WHERE state = 'available' AND queue = ?1 AND partition_key IS NOT NULL AND partition_key > "
    );
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "WITH RECURSIVE keys(k, n) AS (
             SELECT ({next} ?2), 1
             UNION ALL
             SELECT ({next} keys.k), n + 1 FROM keys WHERE keys.k IS NOT NULL AND n < ?3
         )
         SELECT k FROM keys WHERE k IS NOT NULL"
    )))
    .bind(queue)
    .bind(after)
    .bind(most as i64)
    .fetch_all(&mut *conn)
    .await?)
}
