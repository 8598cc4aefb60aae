//! The choice of a partitioned fetch on SQLite (ADR 24), made inside the caller's IMMEDIATE
//! transaction: which available jobs to claim, partitions in turn. Each step is a probe of the
//! partial partition index; in process, a handful of short statements cost less than one
//! statement that SQLite would have to materialise whole.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::error::{Error, Result};
use crate::types::{
    FetchRequest, PartitionRequest, RateLimit, RateLog, SequencePolicy, UNPARTITIONED_LOOKAHEAD,
    partition_share, place_of,
};

/// Per partition (`None`: jobs of no partition), its heads in run order, each with its weight.
type Heads<'a> = Vec<(Option<&'a str>, Vec<(i64, i64)>)>;

/// The ids to claim with their partitions, in the order they were chosen, and the partition
/// the choice ended at (the last job of a partition in turn order) with the heads of its turn
/// it had left.
///
/// Walks the partitions with available jobs in key order from the one after `parts.after` to
/// the last, then from the first up to the cursor, and stops once it has as many partitions
/// with room as the fetch has rows (so it costs the partitions it serves and the full ones it
/// passes, never all of them). Each open partition gives its head in run order, an equal share
/// of the rows at most; the rows are taken turn by turn. Jobs of no partition among the first
/// [`UNPARTITIONED_LOOKAHEAD`] of the queue count as one more partition. With a rate limit for
/// each partition, a partition's room is also what its window has room for (`logs`, which the
/// caller writes back once it claimed).
pub(super) async fn pick(
    conn: &mut SqliteConnection,
    p: &str,
    r: &FetchRequest<'_>,
    parts: PartitionRequest<'_>,
    mut logs: Option<&mut PartitionLogs>,
) -> Result<(Vec<(i64, Option<String>)>, Option<(String, u32)>)> {
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
    let per_partition = parts.limit.map_or(i64::MAX, i64::from);

    // The open partitions in walk order, each with its room: the walk after the cursor, then
    // from the first up to the cursor, in steps of one statement that probes the index once
    // per partition, for as many partitions as it could need (those with room, and the full
    // ones: no more than the executing partitions, unless windows are full too), until it has
    // as many open partitions as rows.
    let step = room as usize + busy.len();
    let mut open: Vec<(String, i64)> = Vec::new();
    let mut sequence_heads: HashMap<String, (i64, i64)> = HashMap::new();
    // A cursor partition with heads of its turn left (ADR 26) comes first, with that credit.
    let resumed = match (parts.after, parts.resume) {
        (Some(after), Some(credit)) if has_work(conn, p, r.queue, after).await? => Some((after, credit)),
        _ => None,
    };
    let laps = match parts.after {
        Some(after) => vec![(after, None), ("", Some(after))],
        None => vec![("", None)],
    };
    'laps: for (lap, (from, up_to)) in laps.into_iter().enumerate() {
        let mut at = from.to_string();
        loop {
            let mut keys = walk(conn, p, r.queue, &at, step).await?;
            let walked = keys.len();
            // The resumed partition before the first step of lap 1 (the walk starts after it).
            if let (0, Some((key, _)), true) = (lap, resumed, at == from) {
                keys.insert(0, key.to_string());
            }
            if let Some(logs) = logs.as_deref_mut() {
                logs.load(conn, p, r.queue, &keys).await?;
            }
            for key in keys {
                // The second lap stops where the first began (before it, if it was resumed).
                if up_to
                    .is_some_and(|up_to| key.as_str() > up_to || (resumed.is_some() && key.as_str() == up_to))
                {
                    break 'laps;
                }
                let running = busy.get(&key).copied().unwrap_or(0);
                let rate_room = logs.as_deref().map_or(i64::MAX, |logs| logs.room(&key));
                let mut free = (per_partition - running).min(rate_room);
                // A sequence gives its first unfinished job, and only if it may start (ADR 27).
                if let (Some(policy), true) = (parts.sequence, free > 0) {
                    match sequence_head(conn, p, r.queue, &key, policy).await? {
                        Some(head) => {
                            sequence_heads.insert(key.clone(), head);
                            free = 1;
                        }
                        None => free = 0,
                    }
                }
                if free > 0 {
                    open.push((key.clone(), free));
                    if open.len() as i64 >= room {
                        break 'laps;
                    }
                }
                if lap > 0 || resumed.is_none() || key.as_str() != from {
                    at = key;
                }
            }
            if walked < step {
                break;
            }
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
    // Each open partition's weight (ADR 26): how many heads it gives a turn, and how many
    // equal shares of the fetch it gets.
    let keys: Vec<&str> = open.iter().map(|(k, _)| k.as_str()).collect();
    let weights = partition_weights(conn, p, r.queue, &keys).await?;
    let weight_of = |key: &str| weights.get(key).copied().unwrap_or(1);
    let partitions = keys.iter().map(|k| weight_of(k)).sum::<u32>() + u32::from(!unkeyed.is_empty());
    let each = i64::from(partition_share(room as u32, partitions));

    // The heads of the open partitions: per partition the first of its shares in run order
    // (a correlated probe of the partition index), at most its room; one statement for all the
    // partitions that ask for as many (SQLite's LIMIT cannot read the outer row), which without
    // weights is one statement.
    let mut asking: std::collections::BTreeMap<i64, Vec<&str>> = Default::default();
    for (key, free) in open.iter().filter(|_| parts.sequence.is_none()) {
        asking.entry((each * i64::from(weight_of(key))).min(*free)).or_default().push(key.as_str());
    }
    // A sequenced queue's heads are its sequences' first jobs, found by the walk.
    let mut rows: Vec<(String, i64, i64)> =
        open.iter().filter_map(|(k, _)| sequence_heads.get(k).map(|(id, w)| (k.clone(), *id, *w))).collect();
    for (most, keys) in asking {
        rows.extend(
            sqlx::query_as::<_, (String, i64, i64)>(AssertSqlSafe(format!(
                "SELECT k.value, j.id, j.weight FROM json_each(?2) k JOIN {p}jobs j ON j.id IN (
                     SELECT id FROM {p}jobs
                     WHERE state = 'available' AND queue = ?1 AND partition_key = k.value AND attempt < max_attempts
                     ORDER BY priority, scheduled_at, id
                     LIMIT ?3)
                 ORDER BY k.key, j.priority, j.scheduled_at, j.id"
            )))
            .bind(r.queue)
            .bind(serde_json::to_string(&keys)?)
            .bind(most)
            .fetch_all(&mut *conn)
            .await?,
        );
    }
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

    // Turn by turn: every partition's first heads (as many as its weight), then the next,
    // while the jobs' weights fit the room (the first that does not ends the fetch: no
    // lighter job passes it).
    // (turn, partition, nth head, heads of the turn left after it)
    let mut order: Vec<(usize, usize, usize, u32)> = Vec::new();
    for (i, (key, ids)) in heads.iter().enumerate() {
        let weight = key.map_or(1, weight_of);
        // A credit from a weight since lowered counts as the weight now.
        let credit = resumed.filter(|(k, _)| *key == Some(*k)).map(|(_, credit)| credit.min(weight));
        order.extend((0..ids.len()).map(|n| {
            let (turn, left) = place_of(n, weight, credit);
            (turn, i, n, left)
        }));
    }
    order.sort_unstable();
    let mut picked = Vec::new();
    let mut filled = 0;
    let mut last = None;
    for (_, i, n, left) in order {
        let (key, ids) = &heads[i];
        let (id, weight) = ids[n];
        if filled + weight > room {
            break;
        }
        filled += weight;
        picked.push((id, key.map(str::to_string)));
        if let Some(key) = key {
            last = Some((key.to_string(), left));
        }
    }
    Ok((picked, last))
}

/// A sequence's first job that has not finished (by id; a discarded one has not under
/// [`SequencePolicy::WaitForRetries`], the sequence's own policy or else the queue's `policy`),
/// with its weight, if it may start now (one probe of the
/// sequence index); `None` if it is running, waiting for a retry or a due time, or held.
async fn sequence_head(
    conn: &mut SqliteConnection,
    p: &str,
    queue: &str,
    key: &str,
    policy: SequencePolicy,
) -> Result<Option<(i64, i64)>> {
    let head: Option<(i64, bool, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT id, state = 'available' AND attempt < max_attempts, weight FROM {p}jobs
         WHERE queue = ?1 AND partition_key = ?2 AND partition_key IS NOT NULL
           AND state IN ('available', 'scheduled', 'retryable', 'executing', 'discarded')
           AND (state <> 'discarded'
                OR coalesce((SELECT policy = 'wait' FROM {p}sequence_policies WHERE queue = ?1 AND key = ?2), ?3))
         ORDER BY id LIMIT 1"
    )))
    .bind(queue)
    .bind(key)
    .bind(policy == SequencePolicy::WaitForRetries)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(head.and_then(|(id, ready, weight)| ready.then_some((id, weight))))
}

/// Whether `key` has available jobs in `queue` (one probe of the partition index).
async fn has_work(conn: &mut SqliteConnection, p: &str, queue: &str, key: &str) -> Result<bool> {
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT EXISTS (SELECT 1 FROM {p}jobs
                        WHERE state = 'available' AND queue = ?1 AND partition_key = ?2 AND attempt < max_attempts)"
    )))
    .bind(queue)
    .bind(key)
    .fetch_one(&mut *conn)
    .await?)
}

/// The stored weights of those of `keys` that have one (ADR 26).
async fn partition_weights(
    conn: &mut SqliteConnection,
    p: &str,
    queue: &str,
    keys: &[&str],
) -> Result<HashMap<String, u32>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT key, weight FROM {p}partition_weights WHERE queue = ?1 AND key IN (SELECT value FROM json_each(?2))"
    )))
    .bind(queue)
    .bind(serde_json::to_string(keys)?)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(k, w)| (k, w.clamp(1, i64::from(crate::types::MAX_PARTITION_WEIGHT)) as u32))
        .collect())
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

/// The rate logs of a queue's partitions (a rate limit for each partition, ADR 25), read as the
/// walk meets them and kept for one fetch, which holds the write lock throughout.
#[derive(Debug)]
pub(super) struct PartitionLogs {
    rate: RateLimit,
    /// The fetch's clock reading: its claims' stamp.
    now: i64,
    logs: HashMap<String, RateLog>,
}

impl PartitionLogs {
    pub(super) fn new(rate: RateLimit, now: i64) -> Self {
        PartitionLogs { rate, now, logs: HashMap::new() }
    }

    /// Reads the logs of `keys` not read yet (a partition never limited has an empty one).
    async fn load(
        &mut self,
        conn: &mut SqliteConnection,
        p: &str,
        queue: &str,
        keys: &[String],
    ) -> Result<()> {
        let missing: Vec<&str> =
            keys.iter().map(String::as_str).filter(|k| !self.logs.contains_key(*k)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let stored: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT key, starts FROM {p}rate_logs WHERE queue = ?1 AND key IN (SELECT value FROM json_each(?2))"
        )))
        .bind(queue)
        .bind(serde_json::to_string(&missing)?)
        .fetch_all(&mut *conn)
        .await?;
        let mut stored: HashMap<String, String> = stored.into_iter().collect();
        for key in missing {
            let starts = match stored.remove(key) {
                Some(text) => serde_json::from_str(&text).map_err(|e| {
                    Error::Unexpected(format!(
                        "the rate log of partition {key:?} of queue `{queue}` does not read: {e}"
                    ))
                })?,
                None => Vec::new(),
            };
            self.logs.insert(key.to_string(), RateLog::recent(starts, self.rate, self.now));
        }
        Ok(())
    }

    /// Starts `key`'s window has room for now.
    fn room(&self, key: &str) -> i64 {
        self.logs.get(key).map_or(i64::from(self.rate.limit), |log| i64::from(log.room(self.rate)))
    }

    /// Records the claims of a pass (one partition per claimed job of a partition) and stores
    /// the logs that changed.
    pub(super) async fn started(
        &mut self,
        conn: &mut SqliteConnection,
        p: &str,
        queue: &str,
        claimed: &[String],
    ) -> Result<()> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for key in claimed {
            *counts.entry(key.as_str()).or_default() += 1;
        }
        for (key, n) in counts {
            let log = self
                .logs
                .entry(key.to_string())
                .or_insert_with(|| RateLog::recent(Vec::new(), self.rate, self.now));
            log.started(n, self.now);
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {p}rate_logs (queue, key, starts) VALUES (?1, ?2, ?3)
                 ON CONFLICT (queue, key) DO UPDATE SET starts = excluded.starts"
            )))
            .bind(queue)
            .bind(key)
            .bind(serde_json::to_string(log.starts())?)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// How long until the first full window among the partitions met that still have work
    /// opens. The windows in the order they open, each probed for work until one has it: a
    /// partition this fetch emptied is full but has nothing to wake for.
    pub(super) async fn first_opens_in(
        &self,
        conn: &mut SqliteConnection,
        p: &str,
        queue: &str,
    ) -> Result<Option<std::time::Duration>> {
        let mut full: Vec<(std::time::Duration, &str)> = self
            .logs
            .iter()
            .filter_map(|(key, log)| log.full_for(self.rate, self.now).map(|d| (d, key.as_str())))
            .collect();
        full.sort_unstable();
        for (opens_in, key) in full {
            if has_work(conn, p, queue, key).await? {
                return Ok(Some(opens_in));
            }
        }
        Ok(None)
    }
}
